"""The admin CLI as a user runs it: through a running server, and on its own without one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BAD, SAMPLES
from tests.servers import Server, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

PDF = SAMPLES / "information-security-policy.pdf"


def _citewise(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "citewise.cli", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cli-server")
    srv = Server(root / "data", free_port(), root / "server.log")
    srv.start()
    yield srv
    srv.stop()


def test_ingest_follows_the_server_job_and_admin_commands_use_the_api(server: Server) -> None:
    env = server.env
    ingest = _citewise("ingest", str(PDF), str(BAD / "program.exe"), "--tenant", "cli", env=env)
    assert ingest.returncode == 2, ingest.stderr
    assert "job " in ingest.stderr and "indexed information-security-policy.pdf" in ingest.stderr
    assert "failed program.exe" in ingest.stderr and "1 file(s) failed" in ingest.stderr

    docs = json.loads(_citewise("documents", "list", "--tenant", "cli", "--json", env=env).stdout)
    assert {d["doc_id"]: d["status"] for d in docs["items"]} == {
        "information-security-policy.pdf": "indexed",
        "program.exe": "failed",
    }
    jobs = json.loads(_citewise("jobs", "list", "--tenant", "cli", "--json", env=env).stdout)
    job_id = jobs["items"][0]["id"]
    assert jobs["total"] == 1 and jobs["items"][0]["status"] == "partial"
    show = _citewise("jobs", "show", job_id, env=env)
    assert show.returncode == 0 and "partial" in show.stderr and "Windows program" in show.stderr
    retry = _citewise("jobs", "retry", job_id, env=env)
    assert retry.returncode == 1 and "nothing to retry" in retry.stderr

    reingest = _citewise(
        "documents", "reingest", "information-security-policy.pdf", "--tenant", "cli", env=env
    )
    assert reingest.returncode == 0, reingest.stderr
    assert "indexed information-security-policy.pdf (v2" in reingest.stderr

    doctor = _citewise("doctor", "--tenant", "cli", env=env)
    assert doctor.returncode == 0 and "0 issue(s)" in doctor.stderr, doctor.stderr
    worker = _citewise("worker", env=env)
    assert worker.returncode == 1 and "owned by the running Citewise server" in worker.stderr

    delete = _citewise(
        "documents", "delete", "information-security-policy.pdf", "--tenant", "cli", env=env
    )
    assert delete.returncode == 0, delete.stderr
    docs = json.loads(
        _citewise(
            "documents", "list", "--tenant", "cli", "--status", "deleted", "--json", env=env
        ).stdout
    )
    assert [d["doc_id"] for d in docs["items"]] == ["information-security-policy.pdf"]


def test_without_a_server_the_commands_work_on_the_data_directory(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CITEWISE_DATA_DIR": str(tmp_path / "data"),
        "CITEWISE_API__PORT": str(free_port()),
        "HF_HUB_OFFLINE": "1",
    }
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "canteen.md").write_text("# Canteen\n\nLunch is served from noon until two.\n")
    ingest = _citewise("ingest", str(notes), "--tenant", "solo", env=env)
    assert ingest.returncode == 0 and "indexed canteen.md" in ingest.stderr, ingest.stderr
    jobs = json.loads(_citewise("jobs", "list", "--tenant", "solo", "--json", env=env).stdout)
    assert jobs["items"][0]["status"] == "succeeded"
    doctor = _citewise("doctor", "--tenant", "solo", "--fix", "--json", env=env)
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["issues"] == []
