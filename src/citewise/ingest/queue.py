"""The persistent job queue: Huey, on SQLite under the data directory or on Redis.

Messages carry only a job id; the job's state lives in the metadata database, so
a message that is lost (a worker killed after dequeuing it) or delivered twice
(a recovery sweep re-enqueues it) does no harm: `JobRunner` claims a job with a
lease before working on it and skips jobs that are finished or held by a live
worker.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.exceptions import RetryTask

from citewise.core.settings import QueueSettings

log = structlog.get_logger(__name__)

TASK_NAME = "citewise.ingest_job"
JobHandler = Callable[[str], float | None]
"""Runs one job; returns a delay in seconds when the job should run again later."""


class JobQueue:
    """A Huey instance with Citewise's one task, ``ingest_job(job_id)``.

    Args:
        settings: Queue settings (``redis_url`` selects Redis over SQLite).
        data_dir: Where the SQLite queue file lives (``queue.db``).
    """

    def __init__(self, settings: QueueSettings, data_dir: Path) -> None:
        self.settings = settings
        self.huey: Huey
        if settings.redis_url:
            self.huey = RedisHuey(settings.name, url=settings.redis_url, results=False, utc=True)
            self.backend = "redis"
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            self.huey = SqliteHuey(
                settings.name,
                filename=str(data_dir / "queue.db"),
                results=False,
                utc=True,
                fsync=True,
                timeout=30,
            )
            self.backend = "sqlite"
        self._handler: JobHandler | None = None

        @self.huey.task(name=TASK_NAME)  # type: ignore[untyped-decorator]
        def ingest_job(job_id: str) -> None:
            handler = self._handler
            if handler is None:  # a consumer without a runner: put it back for later
                raise RetryTask(delay=settings.retry_delay_s)
            delay = handler(job_id)
            if delay is not None:
                raise RetryTask(delay=delay)

        self._task: Any = ingest_job

    def bind(self, handler: JobHandler) -> None:
        """Set the function that runs a job (done once by the process's runtime)."""
        self._handler = handler

    def enqueue(self, job_id: str, delay_s: float = 0.0) -> None:
        """Queue a job id, now or after ``delay_s`` seconds."""
        if delay_s > 0:
            self._task.schedule(args=(job_id,), delay=delay_s)
        else:
            self._task(job_id)
        log.debug("job_enqueued", job_id=job_id, delay_s=delay_s)

    def pending(self) -> int:
        """Messages waiting in the queue (not counting delayed ones)."""
        return int(self.huey.pending_count())

    def scheduled(self) -> int:
        """Messages waiting for their time (retries with backoff)."""
        return int(self.huey.scheduled_count())

    def close(self) -> None:
        """Close the storage's connections (SQLite's, or the Redis connection pool)."""
        close = getattr(self.huey.storage, "close", None)
        if close is not None:
            close()
        pool = getattr(self.huey.storage, "pool", None)
        if pool is not None:
            pool.disconnect()
