"""A tenant's corpus in figures: documents by status, chunks, bytes, jobs, last ingestion."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from citewise.core.db import (
    DOCUMENT_STATUSES,
    JOB_STATUSES,
    Database,
    DocumentRecord,
    JobFileRecord,
    JobRecord,
)


class DocumentStats(BaseModel):
    """The tenant's documents."""

    total: int = Field(description="Documents that are not deleted.")
    by_status: dict[str, int] = Field(
        description="Count per status (pending, processing, indexed, failed, deleted); "
        "every status is present."
    )
    chunks: int = Field(description="Chunks (index points) of the documents not deleted.")
    indexed_bytes: int = Field(description="Size of the stored files of the indexed versions.")
    last_ingest_at: datetime | None = Field(
        description="When the latest job that indexed something finished (None: never)."
    )


class JobStats(BaseModel):
    """The tenant's ingestion jobs."""

    total: int
    by_status: dict[str, int] = Field(
        description="Count per status (queued, running, succeeded, partial, failed, dead); "
        "every status is present."
    )
    running: int = Field(description="Jobs running now.")
    queued: int = Field(description="Jobs waiting for a worker.")


class CorpusStats(BaseModel):
    """Documents and jobs of one tenant."""

    documents: DocumentStats
    jobs: JobStats


def corpus_stats(db: Database, tenant_id: str) -> CorpusStats:
    """Count a tenant's documents, chunks, stored bytes and jobs (a few aggregate queries)."""
    with db.session() as session:
        doc_rows = session.execute(
            select(
                DocumentRecord.status,
                func.count(),
                func.coalesce(func.sum(DocumentRecord.chunk_count), 0),
            )
            .where(DocumentRecord.tenant_id == tenant_id)
            .group_by(DocumentRecord.status)
        ).all()
        job_rows = session.execute(
            select(JobRecord.status, func.count())
            .where(JobRecord.tenant_id == tenant_id)
            .group_by(JobRecord.status)
        ).all()
        # One size per indexed document: its indexed file as recorded by a job.
        sizes = (
            select(func.max(JobFileRecord.size_bytes).label("size"))
            .join(JobRecord, JobRecord.id == JobFileRecord.job_id)
            .join(
                DocumentRecord,
                (DocumentRecord.tenant_id == JobRecord.tenant_id)
                & (DocumentRecord.doc_id == JobFileRecord.doc_id)
                & (DocumentRecord.sha256 == JobFileRecord.sha256),
            )
            .where(JobRecord.tenant_id == tenant_id, DocumentRecord.status == "indexed")
            .group_by(DocumentRecord.id)
            .subquery()
        )
        indexed_bytes = session.scalar(select(func.coalesce(func.sum(sizes.c.size), 0)))
        last_ingest = session.scalar(
            select(func.max(JobRecord.finished_at)).where(
                JobRecord.tenant_id == tenant_id, JobRecord.status.in_(("succeeded", "partial"))
            )
        )
    docs = {status: 0 for status in DOCUMENT_STATUSES}
    chunks = 0
    for status, count, chunk_count in doc_rows:
        docs[status] = docs.get(status, 0) + int(count)
        if status != "deleted":
            chunks += int(chunk_count)
    jobs = {status: 0 for status in JOB_STATUSES}
    for status, count in job_rows:
        jobs[status] = jobs.get(status, 0) + int(count)
    return CorpusStats(
        documents=DocumentStats(
            total=sum(n for status, n in docs.items() if status != "deleted"),
            by_status=docs,
            chunks=chunks,
            indexed_bytes=int(indexed_bytes or 0),
            last_ingest_at=last_ingest,
        ),
        jobs=JobStats(
            total=sum(jobs.values()),
            by_status=jobs,
            running=jobs.get("running", 0),
            queued=jobs.get("queued", 0),
        ),
    )
