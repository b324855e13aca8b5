"""Document administration: upload (as a job), list, get, delete, re-ingest, consistency."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Response, UploadFile

from citewise.api.deps import RuntimeDep, ServiceDep, TenantPrincipalDep, get_tenant_principal
from citewise.api.errors import MAX_OFFSET, error_responses
from citewise.api.ratelimit import request_limit
from citewise.core.errors import IngestError
from citewise.ingest.doctor import DoctorReport, check_tenant, repair_tenant
from citewise.ingest.service import Upload, check_metadata
from citewise.ingest.views import AuditView, DocumentView, JobView, Page

router = APIRouter(
    prefix="/v1/tenants/{tenant}",
    tags=["documents"],
    dependencies=[Depends(request_limit(get_tenant_principal))],
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503, 507),
)


def _json_form(value: str | None, name: str) -> Any:
    if value is None or not value.strip():
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise IngestError(f"form field {name!r} is not valid JSON: {exc.msg}") from exc


def _groups(values: list[str] | None) -> list[str]:
    """ACL groups from repeated form fields, each possibly comma-separated."""
    return [g.strip() for value in values or [] for g in value.split(",") if g.strip()]


@router.post("/documents", status_code=202, response_model=JobView)
def upload_documents(
    principal: TenantPrincipalDep,
    service: ServiceDep,
    response: Response,
    files: Annotated[list[UploadFile], File(description="One or more files (ZIPs are expanded).")],
    acl_groups: Annotated[
        list[str] | None,
        Form(description="Groups that may read the files (repeat, or comma-separate)."),
    ] = None,
    metadata: Annotated[
        str | None, Form(description="JSON object stored with every document.")
    ] = None,
    file_options: Annotated[
        str | None,
        Form(
            description="JSON list, one object per file in order, each with optional "
            "'doc_id', 'acl_groups' and 'metadata' overriding the upload's."
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Retrying with the same key returns the first job; no second is made.",
        ),
    ] = None,
) -> JobView:
    """Upload files for ingestion; returns the job (202) that ingests them in the background.

    Refused files (unsafe names, over the size limit, wrong or dangerous types,
    archives past their limits, duplicates) are in the job as failed files with
    the reason; the rest of the batch goes on.
    """
    default_meta = check_metadata(_json_form(metadata, "metadata"))
    options = _json_form(file_options, "file_options") or []
    if not isinstance(options, list) or len(options) not in (0, len(files)):
        raise IngestError("file_options must be a JSON list with one object per file")
    uploads = []
    for n, upload in enumerate(files):
        option = options[n] if options else {}
        if not isinstance(option, dict):
            raise IngestError("each entry of file_options must be a JSON object")
        groups = option.get("acl_groups")
        if groups is not None and not (
            isinstance(groups, list) and all(isinstance(g, str) for g in groups)
        ):
            raise IngestError("file_options acl_groups must be a list of strings")
        doc_id = option.get("doc_id")
        uploads.append(
            Upload(
                stream=upload.file,
                filename=upload.filename or f"upload-{n + 1}",
                doc_id=str(doc_id) if doc_id is not None else None,
                acl_groups=groups,
                metadata=check_metadata(option["metadata"]) if "metadata" in option else None,
            )
        )
    submitted = service.submit(
        principal,
        uploads,
        acl_groups=_groups(acl_groups),
        metadata=default_meta,
        idempotency_key=idempotency_key,
    )
    response.headers["Location"] = f"/v1/jobs/{submitted.job.id}"
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return submitted.job


@router.get("/documents", response_model=Page[DocumentView])
def list_documents(
    principal: TenantPrincipalDep,
    service: ServiceDep,
    status: Annotated[
        str | None, Query(description="pending, processing, indexed, failed or deleted.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[DocumentView]:
    """The tenant's documents by id (deleted ones only with ``status=deleted``)."""
    return service.list_documents(principal, status=status, limit=limit, offset=offset)


@router.get("/documents/{doc_id}", response_model=DocumentView)
def get_document(doc_id: str, principal: TenantPrincipalDep, service: ServiceDep) -> DocumentView:
    """One document: status, indexed version, chunk count, last error."""
    return service.get_document(principal, doc_id)


@router.delete("/documents/{doc_id}", response_model=DocumentView)
def delete_document(
    doc_id: str, principal: TenantPrincipalDep, service: ServiceDep
) -> DocumentView:
    """Delete a document: passages leave the index, the stored file goes, a tombstone stays."""
    return service.delete_document(principal, doc_id)


@router.post("/documents/{doc_id}/reingest", status_code=202, response_model=JobView)
def reingest_document(doc_id: str, principal: TenantPrincipalDep, service: ServiceDep) -> JobView:
    """Ingest a document again from its stored file, as a new version."""
    return service.reingest(principal, doc_id)


@router.get("/jobs", response_model=Page[JobView], tags=["jobs"])
def list_jobs(
    principal: TenantPrincipalDep,
    service: ServiceDep,
    status: Annotated[
        str | None, Query(description="queued, running, succeeded, partial, failed or dead.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[JobView]:
    """The tenant's jobs, newest first."""
    return service.list_jobs(principal, status=status, limit=limit, offset=offset)


@router.get("/audit", response_model=list[AuditView], tags=["audit"])
def audit_log(
    principal: TenantPrincipalDep,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditView]:
    """The tenant's latest administrative actions, newest first."""
    return service.audit_log(principal, limit=limit)


@router.post("/doctor", response_model=DoctorReport, tags=["documents"])
def doctor(
    principal: TenantPrincipalDep,
    runtime: RuntimeDep,
    fix: Annotated[bool, Query(description="Repair what was found.")] = False,
) -> DoctorReport:
    """Compare the database with the index: orphan, missing and miscounted points."""
    if fix:
        return repair_tenant(runtime.service, runtime.jobs, principal, run_inline=False)
    return check_tenant(runtime.db, runtime.store, runtime.files, principal.tenant_id)
