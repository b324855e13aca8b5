"""Queue consumers: Huey worker threads, its scheduler, and a lease keeper.

The same `WorkerPool` runs inside the API process (the embedded default: Qdrant
Edge is single-process, so the process that owns the index does the ingestion)
and in `citewise worker` processes (with a Qdrant server, any number of them on
a shared Redis queue). Huey's own `Consumer` is not used because it installs
signal handlers, which the API server owns; the pool drives Huey's `Worker` and
`Scheduler` loops on plain threads instead.

On start the pool first recovers jobs left behind by a dead worker (see
`JobRunner.recover`), then keeps this worker's leases fresh and periodically
queues again jobs whose worker's lease ran out.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from huey.consumer import Scheduler, Worker

from citewise.ingest.jobs import JobRunner
from citewise.ingest.queue import JobQueue

log = structlog.get_logger(__name__)


class WorkerPool:
    """Consumes the job queue with ``threads`` worker threads.

    Args:
        queue: The job queue.
        runner: Runs the jobs.
        threads: Worker threads (jobs in parallel).
        exclusive: No other worker can exist (this process owns the embedded
            index): on start, every unfinished job is resumed at once.
    """

    def __init__(
        self, queue: JobQueue, runner: JobRunner, *, threads: int, exclusive: bool
    ) -> None:
        self.queue = queue
        self.runner = runner
        self.threads = threads
        self.exclusive = exclusive
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        queue.bind(self._handle)

    def _handle(self, job_id: str) -> float | None:
        return self.runner.run(job_id, should_stop=self.stopping.is_set)

    def recover(self, *, exclusive: bool) -> int:
        """Queue again the jobs whose worker is gone; returns how many."""
        resumed = self.runner.recover(exclusive=exclusive)
        for job_id, delay in resumed:
            self.queue.enqueue(job_id, delay)
        if resumed:
            log.info("jobs_recovered", count=len(resumed), exclusive=exclusive)
        return len(resumed)

    def start(self) -> None:
        """Recover orphaned jobs, then start the worker, scheduler and lease threads."""
        self.recover(exclusive=self.exclusive)
        settings = self.queue.settings
        loops: list[tuple[str, Any]] = [
            (
                f"citewise-worker-{i + 1}",
                Worker(
                    self.queue.huey,
                    self.stopping,
                    default_delay=0.05,
                    max_delay=settings.poll_interval_s,
                    backoff=1.5,
                ),
            )
            for i in range(self.threads)
        ]
        loops.append(
            ("citewise-scheduler", Scheduler(self.queue.huey, self.stopping, 1, periodic=False))
        )
        for name, loop in loops:
            thread = threading.Thread(target=self._loop, args=(loop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        keeper = threading.Thread(target=self._keep_leases, name="citewise-leases", daemon=True)
        keeper.start()
        self._threads.append(keeper)
        log.info(
            "workers_started",
            threads=self.threads,
            queue=self.queue.backend,
            worker=self.runner.worker_id,
        )

    def _loop(self, process: Any) -> None:
        process.initialize()
        while not self.stopping.is_set():
            try:
                process.loop()
            except Exception:  # keep consuming; Huey logs the details
                log.exception("queue_loop_error", thread=threading.current_thread().name)
                self.stopping.wait(1.0)
        process.shutdown()

    def _keep_leases(self) -> None:
        lease = self.queue.settings.lease_s
        interval = max(min(lease / 3, 10.0), 0.2)
        next_sweep = 0.0
        waited = 0.0
        while not self.stopping.wait(interval):
            waited += interval
            try:
                self.runner.renew_leases()
                if waited >= next_sweep:
                    next_sweep = waited + lease / 2
                    self.recover(exclusive=False)
            except Exception as exc:  # the database may be briefly away; try again
                log.warning("lease_keeper_error", error=str(exc))

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking jobs; a running job is handed back after its current file."""
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("workers_still_running", threads=alive)
        log.info("workers_stopped")
