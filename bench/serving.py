"""A real ``citewise serve`` in a child process for the benchmarks, on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CITEWISE = Path(sys.executable).parent / "citewise"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(env: dict[str, str], timeout_s: float = 300.0) -> Iterator[tuple[str, int]]:
    """``citewise serve`` with `env` until /readyz answers; yields (base URL, pid)."""
    port = free_port()
    process = subprocess.Popen(
        [str(CITEWISE), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode()[-3000:])  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.5)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(60)
