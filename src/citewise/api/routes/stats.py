"""Per-tenant statistics for administrators: documents, jobs, answers and feedback."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from citewise.answer.stats import AnswerStats, FeedbackStats, answer_stats
from citewise.api.deps import RuntimeDep, TenantPrincipalDep, get_tenant_principal
from citewise.api.errors import error_responses
from citewise.api.ratelimit import request_limit
from citewise.core.db import utcnow
from citewise.ingest.stats import DocumentStats, JobStats, corpus_stats

router = APIRouter(
    prefix="/v1/tenants/{tenant}",
    tags=["stats"],
    dependencies=[Depends(request_limit(get_tenant_principal))],
    responses=error_responses(401, 403, 404, 422, 429),
)


class TenantStats(BaseModel):
    """A tenant in figures."""

    tenant: str
    generated_at: datetime = Field(description="When these figures were counted (UTC).")
    documents: DocumentStats
    jobs: JobStats
    answers: AnswerStats
    feedback: FeedbackStats


@router.get("/stats", response_model=TenantStats)
def tenant_stats(principal: TenantPrincipalDep, runtime: RuntimeDep) -> TenantStats:
    """Documents by status, chunks, stored bytes, jobs, answers served and their ratings."""
    now = utcnow()
    corpus = corpus_stats(runtime.db, principal.tenant_id)
    answers, feedback = answer_stats(runtime.db, principal.tenant_id, now=now)
    return TenantStats(
        tenant=principal.tenant_id,
        generated_at=now,
        documents=corpus.documents,
        jobs=corpus.jobs,
        answers=answers,
        feedback=feedback,
    )
