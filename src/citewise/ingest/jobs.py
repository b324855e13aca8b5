"""Running ingestion jobs: claim with a lease, ingest file by file, finish, or retry later.

A job's state is in the database, never only in a worker's memory:

- `JobRunner.run` claims the job (``queued`` -> ``running``, with this worker's id
  and a lease) and ingests its files in order, in three overlapping stages: a
  thread parses, chunks and BM25-encodes the next files (`Ingestor.prepare_file`),
  a second embeds the ready ones together, and the job's thread writes them one by
  one (`Ingestor.commit_file`: sha256 dedup, new version's points written before
  the old version's are deleted). Each file's outcome is committed as soon as it is
  known, so a job resumed after a crash goes on with the files not yet done; a
  file interrupted half-way is ingested again under the same version and point ids.
- Permanent errors (`IngestError`, anything unexpected) fail the file, recorded on
  the file and its document; the job goes on.
- Transient errors (`VectorIndexError`, the database's `OperationalError`) put the
  job back to ``queued`` with a delay that grows by ``retry_backoff``; after
  ``max_attempts`` claims it is ``dead`` with the reason. Crashes count as attempts,
  so a file that kills its worker every time ends the job instead of looping.
- `JobRunner.recover` finds jobs whose worker is gone (lease expired, or any
  ``running`` job when this process owns the embedded index alone) and queues
  them again.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from citewise.core.db import (
    FILE_TERMINAL,
    JOB_TERMINAL,
    Database,
    DocumentRecord,
    JobFileRecord,
    JobRecord,
    utcnow,
)
from citewise.core.errors import CitewiseError, StoredFileMissingError, VectorIndexError
from citewise.core.metrics import JOB_OUTCOMES
from citewise.core.settings import QueueSettings
from citewise.ingest.filestore import FileStore
from citewise.ingest.pipeline import FileOutcome, Ingestor, PreparedFile, ProgressSink
from citewise.ingest.prefetch import Prefetcher
from citewise.retrieval.store.base import VectorStore

log = structlog.get_logger(__name__)

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (VectorIndexError, OperationalError)
"""Errors worth retrying the job for: the index or the database is briefly unavailable."""

EMBED_BATCH = 256
"""Most chunks of small files embedded in one call (the embedder takes what is ready)."""
PREFETCH_CHUNKS = 512
"""How many chunks of prepared files may wait for the embedder."""

_STRIPES = 64
_doc_locks = [threading.Lock() for _ in range(_STRIPES)]


@contextmanager
def document_lock(tenant_id: str, doc_id: str) -> Iterator[None]:
    """Serialise work on one document within this process (ingest, delete)."""
    lock = _doc_locks[zlib.crc32(f"{tenant_id}/{doc_id}".encode()) % _STRIPES]
    with lock:
        yield


def new_worker_id() -> str:
    """A worker identity unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def find_document(session: Session, tenant_id: str, doc_id: str) -> DocumentRecord | None:
    """The document row of (tenant, doc_id), if any."""
    stmt = select(DocumentRecord).where(
        DocumentRecord.tenant_id == tenant_id, DocumentRecord.doc_id == doc_id
    )
    return session.scalars(stmt).one_or_none()


@dataclass(frozen=True)
class _FileTask:
    file_id: int
    position: int
    tenant_id: str
    doc_id: str
    filename: str
    sha256: str
    acl_groups: list[str]
    force: bool
    previous_sha: str


@dataclass(frozen=True)
class _Prepared:
    """A job file after its first half (`Ingestor.prepare_file`), or what stopped it."""

    task: _FileTask
    result: PreparedFile | FileOutcome | Exception

    @property
    def chunks(self) -> int:
        return len(self.result.drafts) if isinstance(self.result, PreparedFile) else 0


class _JobProgress:
    """Counts a file's chunks into its row and its job's (a `ProgressSink`)."""

    def __init__(
        self, runner: JobRunner, job_id: str, file_id: int, extra: ProgressSink | None
    ) -> None:
        self.runner = runner
        self.job_id = job_id
        self.file_id = file_id
        self.extra = extra

    def _add(self, column: str, count: int) -> None:
        with self.runner.db.session() as session:
            session.execute(
                update(JobFileRecord)
                .where(JobFileRecord.id == self.file_id)
                .values({column: getattr(JobFileRecord, column) + count})
            )
            session.execute(
                update(JobRecord)
                .where(JobRecord.id == self.job_id)
                .values(
                    {
                        column: getattr(JobRecord, column) + count,
                        "lease_expires_at": self.runner.lease_until(),
                    }
                )
            )

    def chunks_planned(self, count: int) -> None:
        """The file was split into `count` chunks."""
        self._add("chunks_total", count)
        if self.extra is not None:
            self.extra.chunks_planned(count)

    def chunks_done(self, count: int) -> None:
        """`count` more chunks were embedded and written."""
        self._add("chunks_done", count)
        if self.extra is not None:
            self.extra.chunks_done(count)


FileCallback = Callable[[str, FileOutcome], None]


class JobRunner:
    """Runs ingestion jobs against this process's ingestor and index.

    Args:
        db: Metadata database.
        files: Where uploaded files are stored.
        ingestor: The ingestion pipeline.
        store: The vector index (optimized after each job).
        settings: Retry, backoff and lease settings.
        worker_id: This worker's identity (default: host, pid and a random suffix).
    """

    def __init__(
        self,
        *,
        db: Database,
        files: FileStore,
        ingestor: Ingestor,
        store: VectorStore,
        settings: QueueSettings,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.files = files
        self.ingestor = ingestor
        self.store = store
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()

    def lease_until(self) -> datetime:
        """When a lease taken or renewed now expires."""
        return utcnow() + timedelta(seconds=self.settings.lease_s)

    def retry_delay(self, attempts: int) -> float:
        """Backoff before the next attempt after ``attempts`` failed ones."""
        return float(
            self.settings.retry_delay_s * self.settings.retry_backoff ** max(attempts - 1, 0)
        )

    # -- running ------------------------------------------------------------------------

    def run(
        self,
        job_id: str,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        progress: ProgressSink | None = None,
        on_file: FileCallback | None = None,
    ) -> float | None:
        """Claim and run a job to its end, or until `should_stop` says so.

        Args:
            job_id: The job.
            should_stop: Checked between files; when true the job is handed back
                (``queued``) for a later run.
            progress: Also receives chunk progress (a CLI progress bar).
            on_file: Called with each file's name and outcome.

        Returns:
            Seconds after which the job should run again (a transient error, or a
            stop), or None when there is nothing more to do now.
        """
        if not self._claim(job_id):
            return None
        log.info("job_started", job_id=job_id, worker=self.worker_id)
        try:
            if not self._run_files(job_id, should_stop, progress, on_file):
                self._hand_back(job_id)
                return 0.0
            self._finish(job_id)
        except TRANSIENT_ERRORS as exc:
            return self._transient(job_id, exc)
        return None

    def _run_files(
        self,
        job_id: str,
        should_stop: Callable[[], bool],
        progress: ProgressSink | None,
        on_file: FileCallback | None,
    ) -> bool:
        """Ingest the job's files in order; False when stopped before the end.

        Three stages overlap: a thread parses, chunks and BM25-encodes the next
        files (`Ingestor.prepare_file`), a second embeds the files that are ready
        together (up to `EMBED_BATCH` chunks; a larger file is left to embed alone,
        batch by batch as it is written), and this thread writes them one by one.
        """
        prepared = Prefetcher(
            self._prepare_files(job_id, should_stop),
            weight=lambda item: item.chunks,
            max_weight=PREFETCH_CHUNKS,
            name=f"citewise-prepare-{job_id[:8]}",
        )
        embedded = Prefetcher(
            self._embedded(prepared),
            weight=lambda pair: pair[0].chunks,
            max_weight=EMBED_BATCH,
            name=f"citewise-embed-{job_id[:8]}",
        )
        # Left in reverse: preparing stops first, which ends the embedding thread's wait.
        with embedded, prepared:
            while batch := embedded.batch(1):
                for item, dense in batch:
                    if should_stop():
                        return False
                    outcome = self._ingest(job_id, item, dense, progress)
                    if on_file is not None and outcome is not None:
                        on_file(item.task.filename, outcome)
        return not should_stop()

    def _embedded(
        self, prepared: Prefetcher[_Prepared]
    ) -> Iterator[tuple[_Prepared, np.ndarray | None]]:
        """The prepared files with their vectors, in order (runs on the embedding thread)."""
        while batch := prepared.batch(EMBED_BATCH):
            yield from zip(batch, self._embed(batch), strict=True)

    def _prepare_files(self, job_id: str, should_stop: Callable[[], bool]) -> Iterator[_Prepared]:
        """The job's files to ingest, in order, each prepared (runs on the prefetch thread)."""
        after = -1
        while not should_stop():
            task = self._next_file(job_id, after=after)
            if task is None:
                return
            after = task.position
            if task.doc_id:  # otherwise _next_file has settled it
                yield _Prepared(task, self._prepare(task))

    def _prepare(self, task: _FileTask) -> PreparedFile | FileOutcome | Exception:
        try:
            with self.files.local_path(task.sha256) as path:
                return self.ingestor.prepare_file(
                    path,
                    tenant_id=task.tenant_id,
                    doc_id=task.doc_id,
                    acl_groups=task.acl_groups,
                    filename=task.filename,
                    force=task.force,
                )
        except Exception as exc:  # recorded (or retried) in order by the job's thread
            return exc

    def _embed(self, batch: list[_Prepared]) -> list[np.ndarray | None]:
        """Vectors of the batch's prepared files, in one call; None where a file embeds itself."""
        files = [i.result for i in batch if isinstance(i.result, PreparedFile)]
        if not files or sum(len(f.drafts) for f in files) > EMBED_BATCH:
            return [None] * len(batch)
        try:
            dense = self.ingestor.embedder.embed([t for f in files for t in f.texts])
        except Exception as exc:  # each file tries again alone and fails alone
            log.warning("batch_embedding_failed", files=len(files), error=repr(exc))
            return [None] * len(batch)
        vectors: list[np.ndarray | None] = []
        start = 0
        for item in batch:
            vectors.append(dense[start : start + item.chunks] if item.chunks else None)
            start += item.chunks
        return vectors

    def _claim(self, job_id: str) -> bool:
        now = utcnow()
        with self.db.session() as session:
            job = session.get(JobRecord, job_id, with_for_update=True)
            if job is None or job.status in JOB_TERMINAL:
                return False
            held = (
                job.status == "running"
                and job.worker_id not in (None, self.worker_id)
                and job.lease_expires_at is not None
                and job.lease_expires_at > now
            )
            if held:
                return False
            if job.attempts >= self.settings.max_attempts:
                self._bury(
                    session,
                    job,
                    f"gave up after {job.attempts} attempts; the worker stopped or crashed "
                    f"while running it (last error: {job.error or 'none recorded'})",
                )
                return False
            job.status = "running"
            job.worker_id = self.worker_id
            job.lease_expires_at = self.lease_until()
            job.next_attempt_at = None
            job.attempts += 1
            job.started_at = job.started_at or now
        return True

    def _next_file(self, job_id: str, *, after: int = -1) -> _FileTask | None:
        """The next file after position `after` to ingest, marked processing; None at the end."""
        with self.db.session() as session:
            job = session.get(JobRecord, job_id)
            assert job is not None
            row = session.scalars(
                select(JobFileRecord)
                .where(
                    JobFileRecord.job_id == job_id,
                    JobFileRecord.position > after,
                    JobFileRecord.status.in_(("queued", "processing")),
                )
                .order_by(JobFileRecord.position)
                .limit(1)
            ).one_or_none()
            if row is None:
                return None
            # A file interrupted earlier starts over: forget its chunk counts.
            job.chunks_total -= row.chunks_total
            job.chunks_done -= row.chunks_done
            row.chunks_total = row.chunks_done = 0
            job.lease_expires_at = self.lease_until()
            doc = find_document(session, job.tenant_id, row.doc_id) if row.doc_id else None
            if row.doc_id is None or row.sha256 is None:
                self._file_done(session, job, row, "failed", error="nothing to ingest")
                return _FileTask(
                    row.id, row.position, job.tenant_id, "", row.filename, "", [], False, ""
                )
            if doc is None or doc.job_id != job_id or doc.status == "deleted":
                self._file_done(
                    session,
                    job,
                    row,
                    "superseded",
                    error="a later upload, re-ingestion or delete of this document replaced it",
                )
                return _FileTask(
                    row.id, row.position, job.tenant_id, "", row.filename, "", [], False, ""
                )
            row.status = "processing"
            doc.status = "processing"
            return _FileTask(
                file_id=row.id,
                position=row.position,
                tenant_id=job.tenant_id,
                doc_id=row.doc_id,
                filename=row.filename,
                sha256=row.sha256,
                acl_groups=list(row.acl_groups or []),
                force=row.force,
                previous_sha=doc.sha256,
            )

    def _ingest(
        self,
        job_id: str,
        item: _Prepared,
        dense: np.ndarray | None,
        progress: ProgressSink | None,
    ) -> FileOutcome | None:
        """Write one prepared file (or its failure) and commit its outcome, in job order."""
        task = item.task
        sink = _JobProgress(self, job_id, task.file_id, progress)
        with document_lock(task.tenant_id, task.doc_id):
            with self.db.session() as session:  # a delete may have come first
                doc = find_document(session, task.tenant_id, task.doc_id)
                row = session.get(JobFileRecord, task.file_id)
                job = session.get(JobRecord, job_id)
                assert row is not None and job is not None
                if doc is None or doc.job_id != job_id or doc.status == "deleted":
                    self._file_done(
                        session, job, row, "superseded", error="the document was deleted"
                    )
                    return None
            try:
                outcome = self._outcome(task, item.result, dense, sink)
            except TRANSIENT_ERRORS:
                with self.db.session() as session:
                    session.execute(
                        update(JobFileRecord)
                        .where(JobFileRecord.id == task.file_id)
                        .values(status="queued")
                    )
                raise
            with self.db.session() as session:
                job = session.get(JobRecord, job_id)
                row = session.get(JobFileRecord, task.file_id)
                doc = find_document(session, task.tenant_id, task.doc_id)
                assert job is not None and row is not None
                row.version = outcome.version or None
                self._file_done(
                    session, job, row, outcome.status, outcome.error, outcome.error_code
                )
                if doc is not None and outcome.status in ("indexed", "unchanged"):
                    doc.status = "indexed"
                    doc.error = doc.error_code = None
                    doc.meta = dict(row.meta or {})
        if outcome.status == "indexed" and task.previous_sha and task.previous_sha != task.sha256:
            release_file(self.db, self.files, task.previous_sha)
        return outcome

    def _outcome(
        self,
        task: _FileTask,
        result: PreparedFile | FileOutcome | Exception,
        dense: np.ndarray | None,
        sink: ProgressSink,
    ) -> FileOutcome:
        """Commit a prepared file, or turn what stopped it into its outcome."""
        try:
            if isinstance(result, PreparedFile):
                return self.ingestor.commit_file(result, dense, progress=sink, raise_transient=True)
            if isinstance(result, FileOutcome):
                return result
            raise result
        except StoredFileMissingError as exc:
            return self._failure(task, exc.code, str(exc))
        except TRANSIENT_ERRORS:
            raise
        except CitewiseError as exc:  # refused or unparseable: recorded by the ingestor
            return self.ingestor.fail_file(task.tenant_id, task.doc_id, task.filename, exc)
        except Exception as exc:  # a bug or an unexpected library error: this file only
            log.exception("ingest_crashed", doc_id=task.doc_id, error=repr(exc))
            return self._failure(
                task, "internal_error", f"{task.filename}: unexpected error: {exc!r}"
            )

    def _failure(self, task: _FileTask, code: str, message: str) -> FileOutcome:
        with self.db.session() as session:
            doc = find_document(session, task.tenant_id, task.doc_id)
            if doc is not None:
                doc.status, doc.error, doc.error_code = "failed", message, code
        return FileOutcome(
            source=task.filename,
            doc_id=task.doc_id,
            status="failed",
            error=message,
            error_code=code,
        )

    @staticmethod
    def _file_done(
        session: Session,
        job: JobRecord,
        row: JobFileRecord,
        status: str,
        error: str | None = None,
        code: str | None = None,
    ) -> None:
        row.status = status
        row.error = error
        row.error_code = code if status == "failed" else None
        job.files_done += 1
        if status == "failed":
            job.files_failed += 1

    def _finish(self, job_id: str) -> None:
        with self.db.session() as session:
            job = session.get(JobRecord, job_id)
            assert job is not None
            counts = dict(
                session.execute(
                    select(JobFileRecord.status, func.count())
                    .where(JobFileRecord.job_id == job_id)
                    .group_by(JobFileRecord.status)
                ).all()
            )
            failed = counts.get("failed", 0)
            total = sum(counts.values())
            job.status = finished_status(total, failed)
            job.error = f"{failed} of {total} file(s) failed" if failed else None
            job.finished_at = utcnow()
            job.worker_id = None
            job.lease_expires_at = None
            tenant = job.tenant_id
            status = job.status
        log.info("job_finished", job_id=job_id, status=status, failed=failed, files=total)
        JOB_OUTCOMES.labels(status=status).inc()
        try:
            self.store.optimize(tenant)
        except CitewiseError as exc:  # searchable anyway; a later job optimizes again
            log.warning("optimize_failed", tenant=tenant, error=str(exc))

    def _hand_back(self, job_id: str) -> None:
        """Return a job to the queue without counting the interrupted attempt."""
        with self.db.session() as session:
            job = session.get(JobRecord, job_id)
            if job is not None and job.status == "running" and job.worker_id == self.worker_id:
                job.status = "queued"
                job.worker_id = None
                job.lease_expires_at = None
                job.attempts = max(job.attempts - 1, 0)
        log.info("job_handed_back", job_id=job_id)

    def _transient(self, job_id: str, exc: Exception) -> float | None:
        reason = f"{type(exc).__name__}: {exc}"
        with self.db.session() as session:
            job = session.get(JobRecord, job_id)
            if job is None:
                return None
            if job.attempts >= self.settings.max_attempts:
                self._bury(session, job, f"gave up after {job.attempts} attempts: {reason}")
                log.error("job_dead", job_id=job_id, error=reason)
                return None
            delay = self.retry_delay(job.attempts)
            job.status = "queued"
            job.worker_id = None
            job.lease_expires_at = None
            job.next_attempt_at = utcnow() + timedelta(seconds=delay)
            job.error = f"attempt {job.attempts} failed, retrying in {delay:g} s: {reason}"
        log.warning("job_retry", job_id=job_id, delay_s=delay, error=reason)
        return delay

    def _bury(self, session: Session, job: JobRecord, reason: str) -> None:
        """Mark a job dead; its unfinished files and their documents fail with the reason."""
        job.status = "dead"
        JOB_OUTCOMES.labels(status="dead").inc()
        job.error = reason
        job.finished_at = utcnow()
        job.worker_id = None
        job.lease_expires_at = None
        rows = session.scalars(
            select(JobFileRecord).where(
                JobFileRecord.job_id == job.id, JobFileRecord.status.not_in(FILE_TERMINAL)
            )
        ).all()
        for row in rows:
            self._file_done(session, job, row, "failed", reason, "job_dead")
            doc = find_document(session, job.tenant_id, row.doc_id) if row.doc_id else None
            if doc is not None and doc.job_id == job.id:
                doc.status, doc.error, doc.error_code = "failed", reason, "job_dead"

    # -- leases and recovery ------------------------------------------------------------

    def renew_leases(self) -> int:
        """Extend the lease of every job this worker is running; returns how many."""
        with self.db.session() as session:
            result = session.execute(
                update(JobRecord)
                .where(JobRecord.worker_id == self.worker_id, JobRecord.status == "running")
                .values(lease_expires_at=self.lease_until())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def recover(self, *, exclusive: bool) -> list[tuple[str, float]]:
        """Jobs to queue again: those whose worker is gone, and those whose message is lost.

        A ``queued`` job untouched for two leases (and not waiting for a retry) may
        have lost its message: the enqueue failed, or Redis restarted without
        persistence. It is queued again and touched, so a job waiting behind a long
        queue gets at most one more message per two leases; a message for a job that
        is done or running elsewhere is skipped.

        Args:
            exclusive: This process is the only possible worker (it owns the embedded
                index and has not started its workers yet): every ``running`` job is
                orphaned, and every ``queued`` one may have lost its message.

        Returns:
            (job id, delay in seconds) of each job to enqueue.
        """
        now = utcnow()
        with self.db.session() as session:
            stale = select(JobRecord).where(JobRecord.status == "running")
            if not exclusive:
                stale = stale.where(
                    (JobRecord.lease_expires_at.is_(None)) | (JobRecord.lease_expires_at < now)
                )
            orphans = session.scalars(stale).all()
            for job in orphans:
                log.warning("job_resumed", job_id=job.id, worker=job.worker_id)
                job.status = "queued"
                job.worker_id = None
                job.lease_expires_at = None
            jobs = list(orphans)
            queued = select(JobRecord).where(
                JobRecord.status == "queued", JobRecord.id.not_in([j.id for j in orphans])
            )
            if not exclusive:
                quiet = now - timedelta(seconds=2 * self.settings.lease_s)
                queued = queued.where(
                    JobRecord.updated_at < quiet,
                    JobRecord.next_attempt_at.is_(None) | (JobRecord.next_attempt_at < quiet),
                )
            lost = session.scalars(queued).all()
            for job in lost:
                if not exclusive:
                    log.warning("job_requeued", job_id=job.id, reason="message may be lost")
                job.updated_at = now
            jobs += lost
            return [
                (
                    job.id,
                    max((job.next_attempt_at - now).total_seconds(), 0.0)
                    if job.next_attempt_at
                    else 0.0,
                )
                for job in jobs
            ]


def finished_status(total: int, failed: int) -> str:
    """Final status of a job with ``failed`` of ``total`` files failed."""
    if failed == 0:
        return "succeeded"
    return "failed" if failed == total else "partial"


def release_file(db: Database, files: FileStore, sha256: str) -> bool:
    """Delete a stored file that no live document or unfinished job refers to.

    Returns:
        Whether the file was deleted.
    """
    if not sha256:
        return False
    with db.session() as session:
        by_document = session.scalars(
            select(DocumentRecord.id)
            .where(
                DocumentRecord.status != "deleted",
                (DocumentRecord.sha256 == sha256) | (DocumentRecord.file_sha256 == sha256),
            )
            .limit(1)
        ).first()
        by_job = session.scalars(
            select(JobFileRecord.id)
            .join(JobRecord, JobRecord.id == JobFileRecord.job_id)
            .where(JobFileRecord.sha256 == sha256, JobRecord.status.not_in(JOB_TERMINAL))
            .limit(1)
        ).first()
        if by_document is not None or by_job is not None:
            return False
    deleted = files.delete(sha256)
    if deleted:
        log.info("stored_file_deleted", sha256=sha256)
    return deleted
