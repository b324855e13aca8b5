"""Ingestion jobs: progress with per-file outcomes, and retries of failed or dead jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from citewise.api.deps import JobPrincipalDep, ServiceDep, get_job_principal
from citewise.api.errors import error_responses
from citewise.api.ratelimit import request_limit
from citewise.ingest.views import JobView

router = APIRouter(
    prefix="/v1/jobs",
    tags=["jobs"],
    dependencies=[Depends(request_limit(get_job_principal))],
    responses=error_responses(401, 403, 404, 409, 422, 429),
)


@router.get("/{job_id}", response_model=JobView)
def get_job(job_id: str, principal: JobPrincipalDep, service: ServiceDep) -> JobView:
    """A job's status and progress (files and chunks done / total), with each file's outcome."""
    return service.get_job(principal, job_id)


@router.post("/{job_id}/retry", status_code=202, response_model=JobView)
def retry_job(job_id: str, principal: JobPrincipalDep, service: ServiceDep) -> JobView:
    """Queue the failed files of a failed, partial or dead job again (409 otherwise)."""
    return service.retry_job(principal, job_id)
