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
    refused = _citewise("documents", "list", "--tenant", "cli", env=server.env)
    assert refused.returncode == 1 and "CITEWISE_API_KEY" in refused.stderr  # no key: 401
    env = {**server.env, "CITEWISE_API_KEY": server.create_key("cli", "admin")}
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


def test_keys_are_made_listed_and_revoked_beside_a_running_server(server: Server) -> None:
    user_key = server.create_key("cli2", "user", "hr,finance")
    admin_env = {**server.env, "CITEWISE_API_KEY": server.create_key("cli2", "admin")}
    ask = _citewise("--api-key", user_key, "ask", "What is this?", "--tenant", "cli2",
                    "--no-llm", "--json", env=server.env)  # fmt: skip
    assert ask.returncode == 0, ask.stderr
    forbidden = _citewise("--api-key", user_key, "jobs", "list", "--tenant", "cli2",
                          env=server.env)  # fmt: skip
    assert forbidden.returncode == 1 and "admin" in forbidden.stderr  # 403: a user key
    listed = json.loads(
        _citewise("keys", "list", "--tenant", "cli2", "--json", env=server.env).stdout
    )
    roles = {(k["role"], ",".join(k["groups"])) for k in listed}
    assert roles == {("user", "finance,hr"), ("admin", "")}
    assert all("key" not in k and "key_sha256" not in k for k in listed)
    prefix = user_key.split("_")[1]
    revoke = _citewise("keys", "revoke", prefix, "--tenant", "cli2", env=server.env)
    assert revoke.returncode == 0, revoke.stderr
    again = _citewise("--api-key", user_key, "ask", "What is this?", "--tenant", "cli2",
                      "--no-llm", env=server.env)  # fmt: skip
    assert again.returncode == 1 and "HTTP 401" in again.stderr
    jobs = _citewise("jobs", "list", "--tenant", "cli2", "--json", env=admin_env)
    assert jobs.returncode == 0 and json.loads(jobs.stdout)["total"] == 0


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
