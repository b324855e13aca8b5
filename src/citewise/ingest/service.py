"""The ingestion service: uploads become jobs; documents are listed, deleted, re-ingested.

Everything an admin does goes through here (the HTTP routes and the CLI are thin):

- `IngestService.submit` checks each uploaded file (`citewise.ingest.intake`:
  names, sizes, types from content, archives within limits, duplicates), stores
  the accepted ones content-addressed, and records one job with a row per file
  (refused files included, with their reason) in one transaction, then queues
  the job. An ``Idempotency-Key`` already used by the tenant returns the first
  job instead of creating another.
- Documents: list (paged, by status), get, delete (points, stored file, tombstone),
  re-ingest (a job that forces a new version from the stored file).
- Jobs: get (with per-file outcomes), list, retry (the failed files of a finished
  or dead job, from their stored files).
- Every change is written to the audit log with the acting principal.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from citewise.core.db import (
    DOCUMENT_STATUSES,
    JOB_STATUSES,
    AuditRecord,
    Database,
    DocumentRecord,
    JobFileRecord,
    JobRecord,
    utcnow,
)
from citewise.core.errors import (
    CitewiseError,
    ConflictError,
    DuplicateInBatchError,
    IngestError,
    NotFoundError,
    StorageFullError,
    StoredFileMissingError,
)
from citewise.core.settings import Settings
from citewise.core.tenancy import Principal, validate_tenant_id
from citewise.ingest.filestore import FileStore, is_disk_full
from citewise.ingest.jobs import document_lock, find_document, finished_status, release_file
from citewise.ingest.pipeline import doc_id_for
from citewise.ingest.views import AuditView, DocumentView, JobView, Page
from citewise.retrieval.store.base import VectorStore

log = structlog.get_logger(__name__)

MAX_GROUPS = 64
MAX_GROUP_CHARS = 128
MAX_METADATA_CHARS = 16_384
_COPY_BLOCK = 1 << 20


@dataclass
class Upload:
    """One uploaded file and its options.

    Attributes:
        stream: The bytes (read once), or a local file to read them from.
        filename: The client's file name (untrusted; sanitized by intake).
        doc_id: Explicit document id (the CLI sends ids relative to the folder);
            default: derived from the file name.
        acl_groups: Groups that may read it (None: the upload's default).
        metadata: Metadata kept on the document (None: the upload's default).
    """

    stream: BinaryIO | Path
    filename: str
    doc_id: str | None = None
    acl_groups: list[str] | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Item:
    filename: str
    path: Path | None
    error_code: str | None
    error: str | None


@dataclass
class _Planned:
    filename: str
    doc_id: str | None
    sha256: str | None = None
    size: int = 0
    acl_groups: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class Submitted:
    """A submitted (or replayed) job."""

    job: JobView
    replayed: bool


def _intake(path: Path, filename: str, settings: Settings, work_dir: Path) -> list[_Item]:
    """Check one upload through `citewise.ingest.intake` (or its minimal stand-in)."""
    try:
        from citewise.ingest import intake
    except ImportError:  # pragma: no cover - intake ships with this package
        return [_Item(Path(filename.replace("\\", "/")).name or "upload", path, None, None)]
    items = intake.expand_upload(path, filename, settings.ingest, work_dir=work_dir)
    return [_Item(i.filename, i.path, i.error_code, i.error) for i in items]


def _duplicates(items: list[tuple[_Item, Upload]]) -> list[tuple[_Item, Upload]]:
    """Refuse repeated content within the batch (intake's rule, kept per upload)."""
    try:
        from citewise.ingest.intake import IntakeItem, duplicates_in_batch
    except ImportError:  # pragma: no cover
        return items
    checked = duplicates_in_batch(
        [IntakeItem(i.filename, i.path, i.error_code, i.error) for i, _ in items]
    )
    return [
        (_Item(c.filename, c.path, c.error_code, c.error), upload)
        for c, (_, upload) in zip(checked, items, strict=True)
    ]


def doc_id_from_name(name: str) -> str:
    """Document id of an uploaded file: its safe name (archive members keep their path)."""
    return doc_id_for(Path(name), Path("."))


def check_metadata(metadata: object) -> dict[str, Any]:
    """Validated document metadata: a JSON object of bounded size."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise IngestError("metadata must be a JSON object")
    if len(json.dumps(metadata, default=str)) > MAX_METADATA_CHARS:
        raise IngestError(f"metadata is over {MAX_METADATA_CHARS} characters of JSON")
    return metadata


def check_groups(groups: Sequence[str]) -> list[str]:
    """Validated ACL group names (no blanks, commas or control characters)."""
    if len(groups) > MAX_GROUPS:
        raise IngestError(f"at most {MAX_GROUPS} ACL groups per file")
    clean = sorted({g.strip() for g in groups if g.strip()})
    for group in clean:
        if len(group) > MAX_GROUP_CHARS or "," in group or not group.isprintable():
            raise IngestError(f"invalid ACL group {group[:40]!r}")
    return clean


class IngestService:
    """Uploads, documents and jobs of every tenant.

    Args:
        settings: Application settings.
        db: Metadata database.
        files: Where uploaded files are stored.
        store: The vector index (for deletes).
        enqueue: Puts a job id on the queue (``enqueue(job_id, delay_s)``).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        files: FileStore,
        store: VectorStore,
        enqueue: Callable[[str, float], None],
    ) -> None:
        self.settings = settings
        self.db = db
        self.files = files
        self.store = store
        self.enqueue = enqueue
        self.tmp_dir = settings.data_dir / "tmp"

    def clean_stale_uploads(self, older_than_s: float = 3600.0) -> int:
        """Remove upload work folders left by a crash (older than ``older_than_s``)."""
        if not self.tmp_dir.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        stale = [p for p in self.tmp_dir.iterdir() if p.stat().st_mtime < cutoff]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        return len(stale)

    # -- uploads -----------------------------------------------------------------------

    def submit(
        self,
        principal: Principal,
        uploads: Sequence[Upload],
        *,
        acl_groups: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        queue: bool = True,
    ) -> Submitted:
        """Check, store and record an upload as one job, and queue it.

        Args:
            principal: Who uploads, for which tenant.
            uploads: The files (each with optional doc id, groups, metadata).
            acl_groups: Default groups of every file.
            metadata: Default metadata of every file.
            idempotency_key: A key the client reuses when it retries the request.
            queue: Put the job on the queue (False: the caller runs it itself).

        Returns:
            The job (with its files); ``replayed`` when the key was already used.
        """
        tenant = principal.tenant_id
        if idempotency_key is not None:
            idempotency_key = idempotency_key.strip()[:255] or None
            existing = self._job_by_key(tenant, idempotency_key)
            if existing is not None:
                return Submitted(existing, replayed=True)
        if not uploads:
            raise IngestError("no files in the upload")
        if len(uploads) > self.settings.ingest.max_files_per_request:
            raise IngestError(
                f"{len(uploads)} files in one upload; at most "
                f"{self.settings.ingest.max_files_per_request} are accepted"
            )
        default_groups = check_groups(acl_groups)
        stored: list[str] = []
        with self._full_disk_refused(stored):
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            work_dir = Path(tempfile.mkdtemp(prefix="upload-", dir=self.tmp_dir))
        try:
            with self._full_disk_refused(stored):
                planned, sources = self._plan(
                    uploads, work_dir, default_groups, metadata or {}, stored
                )
            job_id = str(uuid.uuid4())
            try:
                view = self._record_job(principal, job_id, "upload", planned, idempotency_key)
            except IntegrityError:
                # The same key was used by a request that committed first.
                existing = self._job_by_key(tenant, idempotency_key)
                if existing is None:
                    raise
                return Submitted(existing, replayed=True)
            # A concurrent delete may have released a shared file before our rows existed.
            for plan in planned:
                source = sources.get(plan.sha256 or "")
                if plan.sha256 and source is not None and not self.files.exists(plan.sha256):
                    with source.open("rb") as handle:
                        self.files.put(handle)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        if queue and view.status == "queued":
            self._enqueue(view.id)
        return Submitted(view, replayed=False)

    @contextmanager
    def _full_disk_refused(self, stored: list[str]) -> Iterator[None]:
        """Turn a full disk into `StorageFullError`, releasing what this request stored.

        Files are content-addressed and may be shared, so each is deleted only when no
        document or unfinished job refers to it (`release_file`).
        """
        try:
            yield
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            for sha256 in stored:
                release_file(self.db, self.files, sha256)
            log.error("upload_storage_full", error=str(exc), released=len(stored))
            raise StorageFullError(
                "the server's storage is full: nothing of this upload was kept; "
                "try again later, or ask an administrator to free space"
            ) from exc

    def _plan(
        self,
        uploads: Sequence[Upload],
        work_dir: Path,
        default_groups: list[str],
        default_meta: dict[str, Any],
        stored: list[str],
    ) -> tuple[list[_Planned], dict[str, Path]]:
        """Intake every upload, store the accepted files, derive document ids.

        The hash of every file put in the store is appended to ``stored`` as it goes,
        so a failure part way can release them.
        """
        limit = int(self.settings.ingest.max_file_mb * 1024 * 1024)
        items: list[tuple[_Item, Upload]] = []
        for n, upload in enumerate(uploads):
            path = work_dir / f"{n:05d}.upload"
            _copy_capped(upload.stream, path, limit + 1)  # intake refuses what is over
            for item in _intake(path, upload.filename, self.settings, work_dir):
                items.append((item, upload))
        planned: list[_Planned] = []
        sources: dict[str, Path] = {}
        seen_ids: dict[str, str] = {}
        for item, upload in _duplicates(items):
            groups = check_groups(upload.acl_groups) if upload.acl_groups is not None else None
            plan = _Planned(
                filename=item.filename,
                doc_id=None,
                acl_groups=groups if groups is not None else default_groups,
                metadata=upload.metadata if upload.metadata is not None else default_meta,
                error=item.error,
                error_code=item.error_code,
            )
            try:
                own = upload.doc_id is not None and "/" not in item.filename
                plan.doc_id = (
                    doc_id_for(Path(upload.doc_id or ""), Path("."))
                    if own
                    else doc_id_from_name(item.filename)
                )
            except CitewiseError:
                plan.doc_id = None
            if plan.error_code is None and plan.doc_id is not None and plan.doc_id in seen_ids:
                error = DuplicateInBatchError(
                    f"'{item.filename}' has the same document id as '{seen_ids[plan.doc_id]}' "
                    "earlier in this upload; rename one of them"
                )
                plan.error, plan.error_code = str(error), error.code
            if plan.error_code is None and plan.doc_id is None:
                plan.error, plan.error_code = "no document id can be derived", "unsafe_filename"
            if plan.error_code is None and item.path is not None:
                with item.path.open("rb") as handle:
                    plan.sha256, plan.size = self.files.put(handle)
                stored.append(plan.sha256)
                sources[plan.sha256] = item.path
                assert plan.doc_id is not None
                seen_ids[plan.doc_id] = item.filename
            planned.append(plan)
        return planned, sources

    def _record_job(
        self,
        principal: Principal,
        job_id: str,
        kind: str,
        planned: list[_Planned],
        idempotency_key: str | None,
        *,
        force: bool = False,
    ) -> JobView:
        tenant = principal.tenant_id
        refused = sum(p.error_code is not None for p in planned)
        with self.db.session() as session:
            job = JobRecord(
                id=job_id,
                tenant_id=tenant,
                kind=kind,
                status="queued",
                actor=principal.user_id,
                idempotency_key=idempotency_key,
                files_total=len(planned),
                files_done=refused,
                files_failed=refused,
                chunks_total=0,
                chunks_done=0,
                attempts=0,
            )
            if refused == len(planned):
                job.status = finished_status(len(planned), refused)
                job.error = f"{refused} of {len(planned)} file(s) failed"
                job.finished_at = utcnow()
            session.add(job)
            session.flush()  # the idempotency key's uniqueness is checked here
            rows = []
            for position, plan in enumerate(planned):
                row = JobFileRecord(
                    job_id=job_id,
                    position=position,
                    filename=plan.filename[:1024],
                    doc_id=plan.doc_id,
                    sha256=plan.sha256,
                    size_bytes=plan.size,
                    acl_groups=plan.acl_groups,
                    meta=plan.metadata,
                    force=force,
                    status="failed" if plan.error_code else "queued",
                    chunks_total=0,
                    chunks_done=0,
                    error=plan.error,
                    error_code=plan.error_code,
                )
                session.add(row)
                rows.append(row)
                if plan.doc_id is not None:
                    self._claim_document(session, tenant, job_id, plan)
            self._audit(
                session,
                principal,
                f"documents.{kind}",
                job_id,
                {
                    "files": len(planned),
                    "refused": refused,
                    "doc_ids": [p.doc_id for p in planned if p.doc_id][:100],
                },
            )
            session.flush()
            view = JobView.of(job, rows)
        log.info("job_submitted", job_id=job_id, tenant=tenant, files=len(planned), refused=refused)
        return view

    @staticmethod
    def _claim_document(session: Session, tenant: str, job_id: str, plan: _Planned) -> None:
        """Point the document at this job: the latest upload is the one that counts."""
        assert plan.doc_id is not None
        doc = find_document(session, tenant, plan.doc_id)
        if doc is None:
            doc = DocumentRecord(
                tenant_id=tenant,
                doc_id=plan.doc_id,
                source=plan.filename[:255],
                sha256="",
                version=0,
                chunk_count=0,
                acl_groups=[],
                title="",
                meta={},
            )
            session.add(doc)
        doc.job_id = job_id
        if plan.error_code is None:
            doc.status = "pending"
            doc.file_sha256 = plan.sha256
            doc.error = doc.error_code = None
        else:
            doc.status = "failed"
            doc.error, doc.error_code = plan.error, plan.error_code

    def _enqueue(self, job_id: str) -> None:
        try:
            self.enqueue(job_id, 0.0)
        except Exception as exc:  # the job is recorded; the next recovery sweep queues it
            log.error("enqueue_failed", job_id=job_id, error=str(exc))

    def _job_by_key(self, tenant: str, key: str | None) -> JobView | None:
        if key is None:
            return None
        with self.db.session() as session:
            job = session.scalars(
                select(JobRecord).where(
                    JobRecord.tenant_id == tenant, JobRecord.idempotency_key == key
                )
            ).one_or_none()
            return None if job is None else self._job_view(session, job)

    # -- jobs ----------------------------------------------------------------------------

    @staticmethod
    def _job_view(session: Session, job: JobRecord) -> JobView:
        rows = session.scalars(
            select(JobFileRecord)
            .where(JobFileRecord.job_id == job.id)
            .order_by(JobFileRecord.position)
        ).all()
        return JobView.of(job, list(rows))

    def job_tenant(self, job_id: str) -> str:
        """The tenant a job belongs to (raises `NotFoundError`)."""
        with self.db.session() as session:
            job = session.get(JobRecord, job_id)
            if job is None:
                raise NotFoundError(f"no job {job_id!r}")
            return job.tenant_id

    def get_job(self, principal: Principal, job_id: str) -> JobView:
        """One job with its files' outcomes."""
        with self.db.session() as session:
            job = session.get(JobRecord, job_id)
            if job is None or job.tenant_id != principal.tenant_id:
                raise NotFoundError(f"no job {job_id!r} for tenant {principal.tenant_id!r}")
            return self._job_view(session, job)

    def list_jobs(
        self, principal: Principal, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> Page[JobView]:
        """A tenant's jobs, newest first."""
        if status is not None and status not in JOB_STATUSES:
            raise IngestError(f"unknown job status {status!r}; one of {', '.join(JOB_STATUSES)}")
        conditions = [JobRecord.tenant_id == principal.tenant_id]
        if status is not None:
            conditions.append(JobRecord.status == status)
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(JobRecord).where(*conditions))
            jobs = session.scalars(
                select(JobRecord)
                .where(*conditions)
                .order_by(JobRecord.created_at.desc(), JobRecord.id)
                .limit(limit)
                .offset(offset)
            ).all()
            items = [JobView.of(j) for j in jobs]
        return Page[JobView].of(items, total=int(total or 0), limit=limit, offset=offset)

    def retry_job(self, principal: Principal, job_id: str) -> JobView:
        """Run a finished job's failed files again, from their stored copies."""
        with self.db.session() as session:
            job = session.get(JobRecord, job_id, with_for_update=True)
            if job is None or job.tenant_id != principal.tenant_id:
                raise NotFoundError(f"no job {job_id!r} for tenant {principal.tenant_id!r}")
            if job.status not in ("failed", "partial", "dead"):
                raise ConflictError(
                    f"job {job_id} is {job.status}; only failed, partial or dead jobs are retried"
                )
            rows = session.scalars(
                select(JobFileRecord).where(
                    JobFileRecord.job_id == job_id, JobFileRecord.status == "failed"
                )
            ).all()
            retried = 0
            for row in rows:
                if row.sha256 is None or row.doc_id is None or not self.files.exists(row.sha256):
                    continue
                row.status, row.error, row.error_code = "queued", None, None
                job.chunks_total -= row.chunks_total
                job.chunks_done -= row.chunks_done
                row.chunks_total = row.chunks_done = 0
                job.files_done -= 1
                job.files_failed -= 1
                retried += 1
                doc = find_document(session, job.tenant_id, row.doc_id)
                if doc is not None:
                    doc.job_id, doc.status = job_id, "pending"
                    doc.file_sha256 = row.sha256
                    doc.error = doc.error_code = None
            if not retried:
                raise ConflictError(
                    "nothing to retry: the failed files were refused at upload or their stored "
                    "copies are gone; upload them again"
                )
            job.status = "queued"
            job.attempts = 0
            job.error = None
            job.finished_at = None
            job.next_attempt_at = None
            self._audit(session, principal, "jobs.retry", job_id, {"files": retried})
            session.flush()
            view = self._job_view(session, job)
        self._enqueue(job_id)
        return view

    # -- documents -----------------------------------------------------------------------

    def list_documents(
        self, principal: Principal, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> Page[DocumentView]:
        """A tenant's documents by id; deleted ones only when asked for by status."""
        if status is not None and status not in DOCUMENT_STATUSES:
            raise IngestError(
                f"unknown document status {status!r}; one of {', '.join(DOCUMENT_STATUSES)}"
            )
        conditions = [DocumentRecord.tenant_id == principal.tenant_id]
        conditions.append(
            DocumentRecord.status == status
            if status is not None
            else DocumentRecord.status != "deleted"
        )
        with self.db.session() as session:
            total = session.scalar(
                select(func.count()).select_from(DocumentRecord).where(*conditions)
            )
            docs = session.scalars(
                select(DocumentRecord)
                .where(*conditions)
                .order_by(DocumentRecord.doc_id)
                .limit(limit)
                .offset(offset)
            ).all()
            items = [DocumentView.of(d) for d in docs]
        return Page[DocumentView].of(items, total=int(total or 0), limit=limit, offset=offset)

    def get_document(self, principal: Principal, doc_id: str) -> DocumentView:
        """One document (a deleted one shows as its tombstone)."""
        with self.db.session() as session:
            doc = find_document(session, principal.tenant_id, doc_id)
            if doc is None:
                raise NotFoundError(f"no document {doc_id!r} for tenant {principal.tenant_id!r}")
            return DocumentView.of(doc)

    def delete_document(self, principal: Principal, doc_id: str) -> DocumentView:
        """Delete a document completely: its points, its stored files, its record's content.

        The record stays as a ``deleted`` tombstone (audit trail; a later upload of
        the same id becomes a new version). Jobs still holding a file of it skip it.
        """
        tenant = principal.tenant_id
        with document_lock(tenant, doc_id):
            with self.db.session() as session:
                doc = find_document(session, tenant, doc_id)
                if doc is None or doc.status == "deleted":
                    raise NotFoundError(f"no document {doc_id!r} for tenant {tenant!r}")
            self.store.delete_document(tenant, doc_id)
            with self.db.session() as session:
                doc = find_document(session, tenant, doc_id)
                assert doc is not None
                shas = {doc.sha256, doc.file_sha256 or ""} - {""}
                details = {"version": doc.version, "chunks": doc.chunk_count, "sha256": doc.sha256}
                doc.status = "deleted"
                doc.chunk_count = 0
                doc.job_id = None
                doc.file_sha256 = None
                doc.error = doc.error_code = None
                doc.deleted_at = utcnow()
                self._audit(session, principal, "documents.delete", doc_id, details)
                session.flush()
                view = DocumentView.of(doc)
        for sha in shas:
            release_file(self.db, self.files, sha)
        log.info("document_deleted", tenant=tenant, doc_id=doc_id)
        return view

    def reingest(self, principal: Principal, doc_id: str, *, queue: bool = True) -> JobView:
        """Queue a job that ingests a document again from its stored file, as a new version."""
        tenant = principal.tenant_id
        with self.db.session() as session:
            doc = find_document(session, tenant, doc_id)
            if doc is None or doc.status == "deleted":
                raise NotFoundError(f"no document {doc_id!r} for tenant {tenant!r}")
            sha = doc.file_sha256 or doc.sha256
            plan = _Planned(
                filename=doc.source,
                doc_id=doc_id,
                sha256=sha,
                acl_groups=list(doc.acl_groups or []),
                metadata=dict(doc.meta or {}),
            )
        if not sha or not self.files.exists(sha):
            raise StoredFileMissingError(
                f"no stored file for document {doc_id!r}; upload it again instead"
            )
        view = self._record_job(principal, str(uuid.uuid4()), "reingest", [plan], None, force=True)
        if queue:
            self._enqueue(view.id)
        return view

    def audit_log(self, principal: Principal, *, limit: int = 100) -> list[AuditView]:
        """The tenant's latest audit entries, newest first."""
        with self.db.session() as session:
            rows = session.scalars(
                select(AuditRecord)
                .where(AuditRecord.tenant_id == principal.tenant_id)
                .order_by(AuditRecord.at.desc(), AuditRecord.id.desc())
                .limit(limit)
            ).all()
            return [AuditView.of(r) for r in rows]

    def record_audit(
        self, principal: Principal, action: str, target: str, details: dict[str, Any]
    ) -> None:
        """Write one audit entry in its own transaction."""
        with self.db.session() as session:
            self._audit(session, principal, action, target, details)

    @staticmethod
    def _audit(
        session: Session, principal: Principal, action: str, target: str, details: dict[str, Any]
    ) -> None:
        validate_tenant_id(principal.tenant_id)
        session.add(
            AuditRecord(
                tenant_id=principal.tenant_id,
                actor=principal.user_id,
                action=action,
                target=target[:255],
                details=details,
                at=utcnow(),
            )
        )


def _copy_capped(stream: BinaryIO | Path, path: Path, cap: int) -> int:
    """Copy at most ``cap`` bytes of a stream (or file) to a file; returns the bytes written."""
    if isinstance(stream, Path):
        with stream.open("rb") as handle:
            return _copy_capped(handle, path, cap)
    written = 0
    with path.open("wb") as out:
        while written < cap:
            block = stream.read(min(_COPY_BLOCK, cap - written))
            if not block:
                break
            out.write(block)
            written += len(block)
    return written
