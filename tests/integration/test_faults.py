"""Fault drills on a real `citewise serve`: Redis down, database down, disk full.

Each test gets its own PostgreSQL cluster or Redis server on loopback (the scripts the
suite uses, with their ``pause`` and ``resume`` commands), breaks it while the API runs,
and checks what a client sees and that the API recovers without a restart. The
observed behaviour is written up in docs/operations.md ("Failure behaviour"). LLM
endpoint down and a worker killed during ingestion are drilled in test_llm_faults.py
and test_crash_safety.py.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.servers import Server, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

DOCUMENTS = "/v1/tenants/acme/documents"
MD = b"# Parking\n\nVisitors park on level two of the garage and register at reception.\n"


@dataclass
class Service:
    """A private server started by one of the test scripts, which can be paused."""

    script: Path
    folder: str
    url: str

    def pause(self) -> None:
        subprocess.run(["bash", str(self.script), "pause", self.folder], check=True, timeout=60)

    def resume(self) -> None:
        subprocess.run(["bash", str(self.script), "resume", self.folder], check=True, timeout=60)


def _private(script: str, folder_var: str, url_var: str) -> Iterator[Service]:
    path = ROOT / "scripts" / script
    result = subprocess.run(
        ["bash", str(path), "start"], capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        pytest.fail(f"{script} could not start a server:\n{result.stderr[-2000:]}")
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in result.stdout.splitlines()
        if line.startswith("export ")
    )
    service = Service(path, exports[folder_var], exports[url_var])
    yield service
    subprocess.run(["bash", str(path), "stop", service.folder], timeout=60)


@pytest.fixture()
def postgres() -> Iterator[Service]:
    yield from _private("pg_test_cluster.sh", "PG_TEST_DIR", "CITEWISE_TEST_POSTGRES_URL")


@pytest.fixture()
def redis() -> Iterator[Service]:
    yield from _private("redis_test_server.sh", "REDIS_TEST_DIR", "CITEWISE_TEST_REDIS_URL")


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port(), tmp_path / "server.log")
    yield srv
    srv.stop()


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def _upload(srv: Server, *files: tuple[str, bytes]) -> httpx.Response:
    parts = [("files", (name, body, "text/plain")) for name, body in files]
    return httpx.post(f"{srv.url}{DOCUMENTS}", headers=srv.headers, files=parts, timeout=60)


def _assert_unavailable(srv: Server, code: str, check: str, within_s: float) -> None:
    """A 503 with `code`, a retry hint and Retry-After, answered quickly; still alive,
    and out of rotation with `/readyz` naming what is down."""
    response, seconds = _timed_get(srv, DOCUMENTS)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == code and "retry" in error["message"]
    assert response.headers["Retry-After"] == "5"
    assert seconds < within_s  # refused at once, not after a hang
    assert httpx.get(f"{srv.url}/healthz", timeout=5).status_code == 200
    ready = httpx.get(f"{srv.url}/readyz", timeout=15)
    assert ready.status_code == 503 and ready.json()["checks"][check] == "down"


def _timed_get(srv: Server, path: str) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = httpx.get(f"{srv.url}{path}", headers=srv.headers, timeout=30)
    return response, time.monotonic() - start


def test_database_down_gives_clear_503s_and_the_api_recovers_without_restart(
    server: Server, postgres: Service
) -> None:
    server.env["CITEWISE_DATABASE_URL"] = postgres.url
    server.use_key(server.create_key("acme"))
    server.start()
    assert _timed_get(server, DOCUMENTS)[0].status_code == 200

    postgres.pause()
    _assert_unavailable(server, "database_unavailable", "database", within_s=10)

    postgres.resume()
    # The pool pings before use: the first request after recovery works, no restart.
    assert _timed_get(server, DOCUMENTS)[0].status_code == 200
    ready = httpx.get(f"{server.url}/readyz", timeout=15)
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    assert server.process is not None and server.process.poll() is None


def _limits_on(server: Server, redis: Service, on_error: str) -> None:
    server.env.update(
        {
            "CITEWISE_LIMITS__STORAGE_URI": redis.url,
            "CITEWISE_LIMITS__ON_STORAGE_ERROR": on_error,
            "CITEWISE_QUEUE__REDIS_URL": redis.url,
            "CITEWISE_QUEUE__LEASE_S": "2",
        }
    )
    server.use_key(server.create_key("acme"))
    server.start()


def test_redis_down_with_fail_open_limits_serves_unlimited_and_queues_after_recovery(
    server: Server, redis: Service
) -> None:
    _limits_on(server, redis, "allow")
    response = _timed_get(server, DOCUMENTS)[0]
    assert response.status_code == 200 and "X-RateLimit-Limit" in response.headers

    redis.pause()
    response, seconds = _timed_get(server, DOCUMENTS)
    assert response.status_code == 200, response.text
    assert "X-RateLimit-Limit" not in response.headers  # nothing was counted
    assert seconds < 5
    ready = httpx.get(f"{server.url}/readyz", timeout=15)
    assert ready.status_code == 200 and ready.json()["checks"]["limits"] == "down"
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'citewise_rate_limit_storage_errors_total{outcome="allowed"}' in metrics
    # An upload while the queue's Redis is down: recorded, and queued once Redis is back.
    upload = _upload(server, ("parking.md", MD))
    assert upload.status_code == 202, upload.text
    job_id = upload.json()["id"]

    redis.resume()
    _eventually(lambda: "X-RateLimit-Limit" in _timed_get(server, DOCUMENTS)[0].headers)
    _eventually(lambda: server.job(job_id)["status"] == "succeeded", timeout=60)


def test_redis_down_with_fail_closed_limits_refuses_with_503_until_it_is_back(
    server: Server, redis: Service
) -> None:
    _limits_on(server, redis, "refuse")
    assert _timed_get(server, DOCUMENTS)[0].status_code == 200

    redis.pause()
    _assert_unavailable(server, "rate_limits_unavailable", "limits", within_s=5)

    redis.resume()
    response = _timed_get(server, DOCUMENTS)[0]
    assert response.status_code == 200 and "X-RateLimit-Limit" in response.headers


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """The file store's folder on a 1 MiB tmpfs (needs root, as .ci/run has)."""
    files = tmp_path / "data" / "files"
    files.mkdir(parents=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(files)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here: {mount.stderr.strip()}")
    yield files
    subprocess.run(["umount", "-l", str(files)], check=False)


def test_a_full_disk_while_storing_an_upload_gives_507_and_keeps_nothing(
    server: Server, small_disk: Path
) -> None:
    server.use_key(server.create_key("acme"))
    server.start()
    big = b"".join(b"line %07d of a long plain-text export\n" % n for n in range(40_000))
    assert len(big) > 1024 * 1024
    response = _upload(server, ("parking.md", MD), ("export.txt", big))
    assert response.status_code == 507, response.text
    error = response.json()["error"]
    assert error["code"] == "storage_full" and "nothing of this upload was kept" in error["message"]
    # Nothing half-written: no stored file (the small one stored first is released too),
    # no partial temporary file, no job, no document.
    assert [p for p in small_disk.rglob("*") if p.is_file()] == []
    for listing in ("/v1/tenants/acme/jobs", DOCUMENTS):
        assert _timed_get(server, listing)[0].json()["items"] == []

    # With room again (a smaller upload), the same server takes it: no restart.
    response = _upload(server, ("parking.md", MD))
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    _eventually(lambda: server.job(job_id)["status"] == "succeeded", timeout=60)
