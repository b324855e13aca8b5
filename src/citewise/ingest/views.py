"""What the ingestion service returns: documents, jobs, their files, pages of them.

The same models are the HTTP API's response bodies and what the CLI prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from citewise.core.db import AuditRecord, DocumentRecord, JobFileRecord, JobRecord
from citewise.core.schemas import Page

__all__ = ["AuditView", "DocumentView", "JobFileView", "JobView", "Page"]


class DocumentView(BaseModel):
    """A document of a tenant; version, sha256 and chunk count are the indexed version's."""

    tenant: str
    doc_id: str
    filename: str
    status: str = Field(description="pending | processing | indexed | failed | deleted")
    version: int = Field(description="Indexed version (0: none yet).")
    sha256: str = Field(description="Content hash of the indexed version ('' if none).")
    chunk_count: int
    acl_groups: list[str]
    metadata: dict[str, Any]
    title: str
    error: str | None
    error_code: str | None
    job_id: str | None = Field(description="The job that handles the latest upload.")
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @classmethod
    def of(cls, record: DocumentRecord) -> DocumentView:
        """View of a database row."""
        return cls(
            tenant=record.tenant_id,
            doc_id=record.doc_id,
            filename=record.source,
            status=record.status,
            version=record.version,
            sha256=record.sha256,
            chunk_count=record.chunk_count,
            acl_groups=list(record.acl_groups or []),
            metadata=dict(record.meta or {}),
            title=record.title,
            error=record.error,
            error_code=record.error_code,
            job_id=record.job_id,
            created_at=record.created_at,
            updated_at=record.updated_at,
            deleted_at=record.deleted_at,
        )


class JobFileView(BaseModel):
    """One file of a job and what happened to it."""

    position: int
    filename: str
    doc_id: str | None
    status: str = Field(
        description="queued | processing | indexed | unchanged | failed | superseded"
    )
    version: int | None
    chunks_total: int
    chunks_done: int
    size_bytes: int
    sha256: str | None
    error: str | None
    error_code: str | None

    @classmethod
    def of(cls, record: JobFileRecord) -> JobFileView:
        """View of a database row."""
        return cls(
            position=record.position,
            filename=record.filename,
            doc_id=record.doc_id,
            status=record.status,
            version=record.version,
            chunks_total=record.chunks_total,
            chunks_done=record.chunks_done,
            size_bytes=record.size_bytes,
            sha256=record.sha256,
            error=record.error,
            error_code=record.error_code,
        )


class JobView(BaseModel):
    """An ingestion job with its progress (and its files, when asked for one job)."""

    id: str
    tenant: str
    kind: str
    status: str = Field(description="queued | running | succeeded | partial | failed | dead")
    files_total: int
    files_done: int
    files_failed: int
    chunks_total: int
    chunks_done: int
    attempts: int
    error: str | None = Field(description="Why the job failed, is dead, or is waiting to retry.")
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    files: list[JobFileView] | None = None

    @classmethod
    def of(cls, record: JobRecord, files: list[JobFileRecord] | None = None) -> JobView:
        """View of a database row (with its files when given)."""
        return cls(
            id=record.id,
            tenant=record.tenant_id,
            kind=record.kind,
            status=record.status,
            files_total=record.files_total,
            files_done=record.files_done,
            files_failed=record.files_failed,
            chunks_total=record.chunks_total,
            chunks_done=record.chunks_done,
            attempts=record.attempts,
            error=record.error,
            idempotency_key=record.idempotency_key,
            created_at=record.created_at,
            updated_at=record.updated_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            next_attempt_at=record.next_attempt_at,
            files=None if files is None else [JobFileView.of(f) for f in files],
        )


class AuditView(BaseModel):
    """One audit log entry."""

    tenant: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    at: datetime

    @classmethod
    def of(cls, record: AuditRecord) -> AuditView:
        """View of a database row."""
        return cls(
            tenant=record.tenant_id,
            actor=record.actor,
            action=record.action,
            target=record.target,
            details=dict(record.details or {}),
            at=record.at,
        )
