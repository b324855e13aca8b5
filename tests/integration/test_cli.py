"""The `citewise` command line, run as a user runs it (subprocesses)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import BAD, SAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CITEWISE_DATA_DIR": str(tmp_path / "data"),
        "CITEWISE_API__PORT": str(_free_port()),  # never talk to a server a developer runs
        "HF_HUB_OFFLINE": "1",
    }


def _citewise(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "citewise.cli", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_help_lists_the_commands(env: dict[str, str]) -> None:
    result = _citewise("--help", env=env)
    assert result.returncode == 0
    for command in ("ingest", "ask", "serve"):
        assert command in result.stdout


def test_ingest_then_ask_json(env: dict[str, str]) -> None:
    files = [str(SAMPLES / "information-security-policy.pdf"), str(BAD / "program.exe")]
    ingest = _citewise("ingest", *files, "--tenant", "cli", env=env)
    assert ingest.returncode == 2, ingest.stderr  # one file failed, the other was indexed
    assert "indexed information-security-policy.pdf" in ingest.stderr
    assert "program.exe" in ingest.stderr and "1 file(s) failed" in ingest.stderr

    again = _citewise("ingest", files[0], "--tenant", "cli", env=env)
    assert again.returncode == 0 and "unchanged" in again.stderr

    ask = _citewise("ask", "How long must my password be?", "--tenant", "cli", "--json",
                    "--no-llm", env=env)  # fmt: skip
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert not answer["declined"]
    assert answer["citations"] and all(
        c["source"] == "information-security-policy.pdf" and c["page"] for c in answer["citations"]
    )


def test_bad_tenant_is_a_clear_error(env: dict[str, str]) -> None:
    result = _citewise("ask", "anything?", "--tenant", "../x", "--no-llm", env=env)
    assert result.returncode == 1
    assert "invalid tenant id" in result.stderr


def test_stopping_citewise_ui_stops_streamlit(env: dict[str, str]) -> None:
    # `citewise ui` becomes Streamlit (exec): SIGTERM from a service manager reaches the
    # server itself; a child process would keep serving after its parent was stopped.
    port = _free_port()
    command = [sys.executable, "-m", "citewise.cli", "ui", "--api-url", "http://127.0.0.1:9"]
    command += ["--port", str(port)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    process = subprocess.Popen(command, env=env, **quiet)
    health = f"http://127.0.0.1:{port}/_stcore/health"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None and time.monotonic() < deadline
        try:
            if httpx.get(health, timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    process.terminate()
    assert process.wait(timeout=30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(health, timeout=2)
