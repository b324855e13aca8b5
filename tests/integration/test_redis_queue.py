"""The job queue on a real Redis server (``queue.redis_url``), consumed by `citewise worker`.

The server comes from ``CITEWISE_TEST_REDIS_URL`` (``.ci/run`` starts one with
``scripts/redis_test_server.sh``); each test uses its own queue name, which is the
prefix of its Redis keys. The worker is a separate `citewise worker` process on the
same data directory (the embedded index is single-process, so the test process
closes its runtime before a worker starts). Jobs uploaded while no worker runs wait
in Redis, also across a worker restart; retries with backoff wait in Redis's
schedule. (A worker on the embedded index also queues every unfinished job again
at start-up; the duplicate message finds the job done and is skipped.)
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from citewise.core.db import Database, JobRecord
from citewise.core.settings import Settings, load_settings
from citewise.core.tenancy import Principal
from citewise.ingest.doctor import check_tenant
from citewise.ingest.queue import JobQueue
from citewise.ingest.service import Upload
from citewise.runtime import Runtime
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(400)]

CANTEEN = b"# Canteen\n\nThe canteen serves lunch from 11:30 until 14:00 on weekdays.\n"
CANTEEN_V2 = b"# Canteen\n\nThe canteen now serves lunch from 12:00 until 15:00, every day.\n"
PARKING = b"# Parking\n\nStaff park free of charge in the north garage at weekends.\n"
LIBRARY = b"The library lends laptops to visitors for up to three days.\n"


@pytest.fixture()
def settings(tmp_path: Path, redis_url: str) -> Iterator[Settings]:
    """Settings on a Redis queue of its own; its keys are deleted afterwards."""
    queue = {
        "redis_url": redis_url,
        "name": f"citewise-test-{uuid.uuid4().hex[:12]}",
        "poll_interval_s": 0.1,
        "retry_delay_s": 0.2,
        "lease_s": 5.0,
    }
    settings = load_settings(data_dir=tmp_path / "data", queue=queue)
    yield settings
    leftover = JobQueue(settings.queue, settings.data_dir)
    leftover.huey.flush()
    leftover.close()


class Worker:
    """`citewise worker` in a child process, logging to a file."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.env = {
            **os.environ,
            "CITEWISE_DATA_DIR": str(settings.data_dir),
            "CITEWISE_QUEUE__REDIS_URL": str(settings.queue.redis_url),
            "CITEWISE_QUEUE__NAME": settings.queue.name,
            "CITEWISE_QUEUE__POLL_INTERVAL_S": "0.1",
            "CITEWISE_QUEUE__METRICS_PORT": str(free_port()),
            "CITEWISE_API__PORT": str(free_port()),  # no server answers there
            "CITEWISE_ANSWER__TIERS": json.dumps([{"name": "extractive", "kind": "extractive"}]),
            "HF_HUB_OFFLINE": "1",
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_url = f"http://127.0.0.1:{self.env['CITEWISE_QUEUE__METRICS_PORT']}"

    def start(self, timeout: float = 180.0) -> None:
        started = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "citewise.cli", "worker"],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while b"workers_started" not in self.log.read_bytes()[started:]:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; it must exit cleanly."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                assert self.process.wait(timeout=60) == 0, self.log.read_text()[-3000:]
            finally:
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait()


def _submit(settings: Settings, embedder: Any, files: dict[str, bytes]) -> str:
    """Upload files in this process (no workers here); returns the job id."""
    runtime = Runtime.open(settings, start_llm=False, embedder=embedder)
    try:
        assert runtime.queue.backend == "redis"
        uploads = [Upload(stream=io.BytesIO(body), filename=name) for name, body in files.items()]
        job = runtime.service.submit(Principal(tenant_id="acme"), uploads).job
        assert job.status == "queued"
        return job.id
    finally:
        runtime.close()


def _wait(db: Database, job_id: str, timeout: float = 120.0) -> JobRecord:
    deadline = time.monotonic() + timeout
    while True:
        with db.session() as session:
            job = session.get(JobRecord, job_id)
            assert job is not None
            session.expunge(job)
        if job.status not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, (job.status, job.error)
        time.sleep(0.2)


def _drained(queue: JobQueue, timeout: float = 30.0) -> tuple[int, int]:
    """(pending, scheduled) messages once the worker has taken every one.

    A job may hold a duplicate message (the start-up recovery queues every unfinished
    job again); it is taken, found done, and dropped shortly after the job ends.
    """
    deadline = time.monotonic() + timeout
    while (queue.pending() or queue.scheduled()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return queue.pending(), queue.scheduled()


def test_a_worker_process_runs_jobs_from_redis_and_they_wait_there_across_a_restart(
    settings: Settings, tmp_path: Path, embedder: Any
) -> None:
    queue = JobQueue(settings.queue, settings.data_dir)
    db = Database(settings.resolved_database_url)
    worker = Worker(settings, tmp_path / "worker.log")
    try:
        # Uploaded while no worker runs: the message waits in Redis.
        first = _submit(settings, embedder, {"canteen.md": CANTEEN, "parking.md": PARKING})
        assert (queue.pending(), queue.scheduled()) == (1, 0)
        assert [task.args for task in queue.huey.pending()] == [(first,)]
        worker.start()
        job = _wait(db, first)
        assert (job.status, job.attempts, job.files_done, job.files_failed) == (
            "succeeded", 1, 2, 0,
        )  # fmt: skip
        assert job.chunks_done == job.chunks_total == 2
        assert _drained(queue) == (0, 0)
        # The worker process serves its own series for Prometheus.
        metrics = httpx.get(f"{worker.metrics_url}/metrics", timeout=10).text
        assert 'citewise_ingest_jobs_finished_total{status="succeeded"} 1.0' in metrics
        worker.stop()

        # The worker is down: the next job waits in Redis until a new worker starts.
        second = _submit(settings, embedder, {"canteen.md": CANTEEN_V2, "library.txt": LIBRARY})
        time.sleep(1.0)
        assert [task.args for task in queue.huey.pending()] == [(second,)]
        with db.session() as session:
            waiting = session.get(JobRecord, second)
            assert waiting is not None and waiting.status == "queued"
        worker.start()
        job = _wait(db, second)
        # Run once: the start-up recovery's second message for it, taken after the
        # job finished, finds it done.
        assert (job.status, job.attempts, job.files_done) == ("succeeded", 1, 2)
        assert _drained(queue) == (0, 0)
        worker.stop()
    finally:
        if worker.process is not None and worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()
        queue.close()
        db.dispose()

    runtime = Runtime.open(settings, start_llm=False, embedder=embedder)
    try:
        principal = Principal(tenant_id="acme")
        # Each document once, the changed one at version 2 only (version 1's points gone).
        assert runtime.store.document_counts("acme") == {
            "canteen.md": {2: 1},
            "parking.md": {1: 1},
            "library.txt": {1: 1},
        }
        docs = {d.doc_id: d for d in runtime.service.list_documents(principal).items}
        assert {k: (d.status, d.version) for k, d in docs.items()} == {
            "canteen.md": ("indexed", 2),
            "parking.md": ("indexed", 1),
            "library.txt": ("indexed", 1),
        }
        view = runtime.service.get_job(principal, second)
        assert view.files and [(f.filename, f.status, f.version) for f in view.files] == [
            ("canteen.md", "indexed", 2),
            ("library.txt", "indexed", 1),
        ]
        assert check_tenant(runtime.db, runtime.store, runtime.files, "acme").issues == []
        hits = runtime.retriever.search("When does the canteen serve lunch?", principal)
        assert hits and "12:00" in hits[0].chunk.text
    finally:
        runtime.close()


def test_retries_wait_in_the_redis_schedule_until_the_job_is_dead(
    settings: Settings, embedder: Any
) -> None:
    """Transient failures go back to Redis with a delay (Huey's schedule), then dead-letter."""
    dead_settings = settings.model_copy(
        update={"queue": settings.queue.model_copy(update={"max_attempts": 3})}
    )
    runtime = Runtime.open(dead_settings, start_llm=False, embedder=embedder)
    principal = Principal(tenant_id="acme")
    try:
        job = runtime.service.submit(
            principal, [Upload(stream=io.BytesIO(LIBRARY), filename="library.txt")], queue=False
        ).job
        runtime.store.close()  # the index goes away: every attempt fails transiently
        runtime.start_workers(1)
        runtime.queue.enqueue(job.id)
        scheduled_seen = False
        deadline = time.monotonic() + 60
        while (view := runtime.service.get_job(principal, job.id)).status != "dead":
            scheduled_seen = scheduled_seen or runtime.queue.scheduled() > 0
            assert time.monotonic() < deadline, view
            time.sleep(0.02)
        assert scheduled_seen  # a retry waited in Redis's schedule
        assert view.attempts == 3 and view.error and "gave up after 3 attempts" in view.error
        doc = runtime.service.get_document(principal, "library.txt")
        assert (doc.status, doc.error_code) == ("failed", "job_dead")
        assert _drained(runtime.queue) == (0, 0)
    finally:
        runtime.close()
