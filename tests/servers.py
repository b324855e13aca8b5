"""A real `citewise serve` in a child process, for tests that need a server (or to kill one)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`citewise serve` in a child process, logging to a file."""

    def __init__(self, data_dir: Path, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "CITEWISE_DATA_DIR": str(data_dir),
            "CITEWISE_API__PORT": str(port),
            "CITEWISE_ANSWER__TIERS": json.dumps([{"name": "extractive", "kind": "extractive"}]),
            "CITEWISE_QUEUE__POLL_INTERVAL_S": "0.1",
            "HF_HUB_OFFLINE": "1",
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.headers: dict[str, str] = {}
        """Sent by `job` (set with `use_key`)."""

    def create_key(self, tenant: str, role: str = "admin", groups: str = "") -> str:
        """A new API key, made by ``citewise keys create`` on this server's database."""
        result = subprocess.run(
            [sys.executable, "-m", "citewise.cli", "keys", "create", "--tenant", tenant,
             "--role", role, "--groups", groups],
            env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def use_key(self, key: str) -> dict[str, str]:
        """Send `key` from now on (in `job`); returns its headers."""
        self.headers = {"Authorization": f"Bearer {key}"}
        return self.headers

    def start(self, timeout: float = 120.0) -> None:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "citewise.cli", "serve"],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def job(self, job_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/v1/jobs/{job_id}", headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result
