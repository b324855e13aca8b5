"""Consistency of the metadata database and the vector index, checked and repaired.

For each document the database says which version is indexed and with how many
chunks; the index says which points exist per document and version. `check_tenant`
reports every difference:

- ``orphan_points``: points of a document the database does not have, or that is
  deleted or was never indexed;
- ``stale_versions``: points of a version other than the indexed one (left by a
  crash between writing a new version and retiring the old one);
- ``missing_points``: an indexed document with no points at all;
- ``count_mismatch``: the indexed version has a different number of points;
- ``missing_file``: an indexed document whose stored file is gone (it cannot be
  re-ingested; its points are still served).

`repair_tenant` deletes orphan and stale points, and re-ingests documents with
missing or miscounted points from their stored files (a job, forced to a new
version). Documents a job is working on (``pending``/``processing``) are skipped.
"""

from __future__ import annotations

from typing import Literal

import structlog
from pydantic import BaseModel, Field
from sqlalchemy import select

from citewise.core.db import Database, DocumentRecord
from citewise.core.errors import CitewiseError
from citewise.core.tenancy import Principal, validate_tenant_id
from citewise.ingest.filestore import FileStore
from citewise.ingest.jobs import JobRunner, document_lock, find_document
from citewise.ingest.service import IngestService
from citewise.retrieval.store.base import VectorStore

log = structlog.get_logger(__name__)

IssueKind = Literal[
    "orphan_points", "stale_versions", "missing_points", "count_mismatch", "missing_file"
]
IN_FLIGHT = ("pending", "processing")


class DoctorIssue(BaseModel):
    """One difference between database and index."""

    kind: IssueKind
    doc_id: str
    expected: int = Field(description="Points the database expects.")
    found: int = Field(description="Points found in the index.")
    detail: str
    repaired: bool = False
    action: str | None = None


class DoctorReport(BaseModel):
    """What `citewise doctor` found (and did) for a tenant."""

    tenant: str
    documents: int = Field(description="Documents in the database (not deleted).")
    points: int = Field(description="Points of the tenant in the index.")
    in_flight: list[str] = Field(description="Documents skipped because a job is on them.")
    issues: list[DoctorIssue]
    repaired: bool = False
    jobs: list[str] = Field(default_factory=list, description="Re-ingestion jobs started.")

    @property
    def healthy(self) -> bool:
        """No issue left unrepaired."""
        return all(issue.repaired for issue in self.issues)


def _expected(doc: DocumentRecord) -> tuple[int, int]:
    """(version, points) the index should hold for a document."""
    if doc.status == "deleted" or doc.version < 1 or doc.chunk_count < 1:
        return 0, 0
    return doc.version, doc.chunk_count


def check_tenant(db: Database, store: VectorStore, files: FileStore, tenant: str) -> DoctorReport:
    """Compare a tenant's documents with its points; changes nothing."""
    validate_tenant_id(tenant)
    counts = store.document_counts(tenant)
    with db.session() as session:
        docs = {
            d.doc_id: d
            for d in session.scalars(
                select(DocumentRecord).where(DocumentRecord.tenant_id == tenant)
            )
        }
    issues: list[DoctorIssue] = []
    in_flight: list[str] = []
    for doc_id in sorted(set(docs) | set(counts)):
        found = counts.get(doc_id, {})
        doc = docs.get(doc_id)
        if doc is not None and doc.status in IN_FLIGHT:
            in_flight.append(doc_id)
            continue
        version, expected = (0, 0) if doc is None else _expected(doc)
        total = sum(found.values())
        if not expected:
            if total:
                why = "no such document" if doc is None else f"document is {doc.status}"
                issues.append(
                    DoctorIssue(
                        kind="orphan_points",
                        doc_id=doc_id,
                        expected=0,
                        found=total,
                        detail=f"{total} point(s) in the index but {why}",
                    )
                )
            continue
        assert doc is not None
        stale = {v: n for v, n in found.items() if v != version}
        if stale:
            issues.append(
                DoctorIssue(
                    kind="stale_versions",
                    doc_id=doc_id,
                    expected=0,
                    found=sum(stale.values()),
                    detail=f"points of version(s) {sorted(stale)} beside indexed version {version}",
                )
            )
        current = found.get(version, 0)
        if current == 0:
            issues.append(
                DoctorIssue(
                    kind="missing_points",
                    doc_id=doc_id,
                    expected=expected,
                    found=0,
                    detail=f"version {version} should have {expected} point(s); none found",
                )
            )
        elif current != expected:
            issues.append(
                DoctorIssue(
                    kind="count_mismatch",
                    doc_id=doc_id,
                    expected=expected,
                    found=current,
                    detail=f"version {version} has {current} point(s); the database says "
                    f"{expected}",
                )
            )
        stored = doc.file_sha256 or doc.sha256
        if stored and not files.exists(stored):
            issues.append(
                DoctorIssue(
                    kind="missing_file",
                    doc_id=doc_id,
                    expected=1,
                    found=0,
                    detail="the stored file is gone; upload the document again to be able to "
                    "re-ingest it",
                )
            )
    live = sum(1 for d in docs.values() if d.status != "deleted")
    points = sum(sum(v.values()) for v in counts.values())
    return DoctorReport(
        tenant=tenant, documents=live, points=points, in_flight=in_flight, issues=issues
    )


def repair_tenant(
    service: IngestService, runner: JobRunner, principal: Principal, *, run_inline: bool
) -> DoctorReport:
    """Check a tenant and repair what can be repaired.

    Args:
        service: The ingestion service (its database, index and files are used).
        runner: Runs re-ingestion jobs when ``run_inline``.
        principal: Who repairs (audited), and the tenant.
        run_inline: Run re-ingestion jobs here and now (no worker running), instead of
            queueing them.
    """
    tenant = principal.tenant_id
    report = check_tenant(service.db, service.store, service.files, tenant)
    reingest: set[str] = set()
    for issue in report.issues:
        if issue.kind == "missing_file":
            continue
        if issue.kind in ("missing_points", "count_mismatch"):
            reingest.add(issue.doc_id)
            continue
        with document_lock(tenant, issue.doc_id):
            with service.db.session() as session:
                doc = find_document(session, tenant, issue.doc_id)
                if doc is not None and doc.status in IN_FLIGHT:
                    continue
                version, expected = (0, 0) if doc is None else _expected(doc)
            if issue.kind == "orphan_points" and not expected:
                service.store.delete_document(tenant, issue.doc_id)
                issue.action = "deleted the points"
            elif issue.kind == "stale_versions" and expected:
                service.store.delete_document(tenant, issue.doc_id, except_version=version)
                issue.action = f"deleted the points of other versions than {version}"
            else:
                continue
            issue.repaired = True
    for doc_id in sorted(reingest):
        try:
            job = service.reingest(principal, doc_id, queue=not run_inline)
        except CitewiseError as exc:
            for issue in report.issues:
                if issue.doc_id == doc_id and issue.kind in ("missing_points", "count_mismatch"):
                    issue.action = f"cannot re-ingest: {exc}"
            continue
        report.jobs.append(job.id)
        if run_inline:
            runner.run(job.id)
        for issue in report.issues:
            if issue.doc_id == doc_id and issue.kind in ("missing_points", "count_mismatch"):
                issue.repaired = True
                issue.action = f"re-ingested from the stored file (job {job.id})"
    report.repaired = True
    service.record_audit(
        principal,
        "doctor.fix",
        tenant,
        {
            "issues": len(report.issues),
            "repaired": sum(i.repaired for i in report.issues),
            "jobs": report.jobs,
        },
    )
    log.info("doctor_repaired", tenant=tenant, issues=len(report.issues), jobs=len(report.jobs))
    return report
