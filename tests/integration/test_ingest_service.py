"""The ingestion service end to end: HTTP uploads, background jobs, versions, deletes, doctor.

Real components throughout (Qdrant Edge, the MiniLM embedder, Huey on SQLite), and
the metadata database both SQLite and PostgreSQL (`database_url` in conftest).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from citewise.api.app import create_app
from citewise.core.db import JobRecord
from citewise.core.errors import ConflictError, NotFoundError
from citewise.core.schemas import Chunk, SparseVector
from citewise.core.settings import Settings, load_settings
from citewise.core.tenancy import Principal
from citewise.ingest.doctor import check_tenant, repair_tenant
from citewise.ingest.service import Upload
from citewise.runtime import Runtime
from tests.auth import admin_headers
from tests.conftest import BAD

pytestmark = pytest.mark.integration

CANTEEN = b"# Canteen\n\nThe canteen serves lunch from 11:30 until 14:00 on weekdays.\n"
PARKING = b"# Parking\n\nStaff park free of charge in the north garage at weekends.\n"
LIBRARY = b"The library lends laptops to visitors for up to three days.\n"


def _settings(data_dir: Path, database_url: str, **queue: Any) -> Settings:
    queue = {"retry_delay_s": 0.05, "poll_interval_s": 0.1, "lease_s": 5.0, **queue}
    return load_settings(data_dir=data_dir, database_url=database_url, queue=queue)


@pytest.fixture()
def runtime(tmp_path: Path, embedder, database_url: str) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    rt = Runtime.open(
        _settings(tmp_path / "data", database_url), start_llm=False, embedder=embedder
    )
    yield rt
    rt.close()


@pytest.fixture()
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(runtime.settings, runtime=runtime)
    with TestClient(app, headers=admin_headers(runtime, "acme")) as test_client:
        yield test_client


def wait_for_job(
    client: TestClient,
    job_id: str,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def upload(client: TestClient, tenant: str, files: list[tuple[str, bytes]], **data: Any) -> Any:
    return client.post(
        f"/v1/tenants/{tenant}/documents",
        files=[("files", (name, body)) for name, body in files],
        data=data.pop("form", {}),
        **data,
    )


def test_a_mixed_batch_is_ingested_with_a_clear_outcome_per_file(
    client: TestClient, runtime: Runtime
) -> None:
    files = [
        ("canteen.md", CANTEEN),
        ("parking.md", PARKING),
        ("program.exe", (BAD / "program.exe").read_bytes()),
        ("empty.txt", b""),
        ("canteen-copy.md", CANTEEN),
    ]
    form = {"acl_groups": "staff", "metadata": json.dumps({"owner": "facilities"})}
    response = upload(client, "acme", files, form=form)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/v1/jobs/{response.json()['id']}"
    job = wait_for_job(client, response.json()["id"])

    assert job["status"] == "partial" and job["error"] == "3 of 5 file(s) failed"
    assert (job["files_total"], job["files_done"], job["files_failed"]) == (5, 5, 3)
    assert job["chunks_total"] == job["chunks_done"] == 2
    outcome = {f["filename"]: (f["status"], f["error_code"]) for f in job["files"]}
    assert outcome == {
        "canteen.md": ("indexed", None),
        "parking.md": ("indexed", None),
        "program.exe": ("failed", "executable_file"),
        "empty.txt": ("failed", "empty_document"),
        "canteen-copy.md": ("failed", "duplicate_in_batch"),
    }
    assert all(f["error"] for f in job["files"] if f["status"] == "failed")

    indexed = client.get("/v1/tenants/acme/documents", params={"status": "indexed"}).json()
    assert [d["doc_id"] for d in indexed["items"]] == ["canteen.md", "parking.md"]
    doc = indexed["items"][0]
    assert doc["version"] == 1 and doc["chunk_count"] == 1
    assert doc["acl_groups"] == ["staff"] and doc["metadata"] == {"owner": "facilities"}
    failed = client.get("/v1/tenants/acme/documents", params={"status": "failed"}).json()
    assert {d["doc_id"]: d["error_code"] for d in failed["items"]} == {
        "canteen-copy.md": "duplicate_in_batch",
        "empty.txt": "empty_document",
        "program.exe": "executable_file",
    }
    first = client.get("/v1/tenants/acme/documents", params={"limit": 2}).json()
    assert (first["total"], len(first["items"]), first["next_offset"]) == (5, 2, 2)
    last = client.get("/v1/tenants/acme/documents", params={"limit": 2, "offset": 4}).json()
    assert len(last["items"]) == 1 and last["next_offset"] is None

    # Only the ACL group sees the passages.
    question = "When does the canteen serve lunch?"
    staff = runtime.retriever.search(question, Principal(tenant_id="acme", groups={"staff"}))
    assert staff and staff[0].chunk.doc_id == "canteen.md"
    assert runtime.retriever.search(question, Principal(tenant_id="acme")) == []
    assert runtime.store.count("acme") == 2

    jobs = client.get("/v1/tenants/acme/jobs").json()
    assert [j["id"] for j in jobs["items"]] == [job["id"]] and jobs["items"][0]["files"] is None
    audit = client.get("/v1/tenants/acme/audit").json()
    assert audit[0]["action"] == "documents.upload" and audit[0]["target"] == job["id"]


def test_an_idempotency_key_returns_the_first_job(client: TestClient, runtime: Runtime) -> None:
    headers = {"Idempotency-Key": "batch-42"}
    first = upload(client, "acme", [("canteen.md", CANTEEN)], headers=headers)
    again = upload(client, "acme", [("canteen.md", CANTEEN)], headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    globex = {**headers, **admin_headers(runtime, "globex")}
    other_tenant = upload(client, "globex", [("canteen.md", CANTEEN)], headers=globex)
    assert other_tenant.json()["id"] != first.json()["id"]
    wait_for_job(client, first.json()["id"])
    assert client.get(f"/v1/jobs/{other_tenant.json()['id']}").status_code == 404  # acme's key
    wait_for_job(client, other_tenant.json()["id"], headers=globex)
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(JobRecord)) == 2


def test_a_changed_file_becomes_a_new_version_and_the_old_file_goes(
    client: TestClient, runtime: Runtime
) -> None:
    v1 = wait_for_job(client, upload(client, "acme", [("notice.md", CANTEEN)]).json()["id"])
    old_sha = v1["files"][0]["sha256"]
    changed = CANTEEN.replace(b"11:30 until 14:00", b"12:00 until 15:00")
    v2 = wait_for_job(client, upload(client, "acme", [("notice.md", changed)]).json()["id"])
    assert (v1["files"][0]["version"], v2["files"][0]["version"]) == (1, 2)
    assert runtime.store.document_counts("acme") == {"notice.md": {2: 1}}
    assert not runtime.files.exists(old_sha) and runtime.files.exists(v2["files"][0]["sha256"])
    hits = runtime.retriever.search("When is lunch?", Principal(tenant_id="acme"))
    assert all("11:30" not in h.chunk.text for h in hits)

    same = wait_for_job(client, upload(client, "acme", [("notice.md", changed)]).json()["id"])
    assert same["status"] == "succeeded" and same["files"][0]["status"] == "unchanged"
    doc = client.get("/v1/tenants/acme/documents/notice.md").json()
    assert (doc["status"], doc["version"]) == ("indexed", 2)


def test_delete_removes_points_stored_file_and_record(client: TestClient, runtime: Runtime) -> None:
    job = wait_for_job(
        client, upload(client, "acme", [("parking.md", PARKING), ("lib.txt", LIBRARY)]).json()["id"]
    )
    sha = job["files"][0]["sha256"]
    deleted = client.delete("/v1/tenants/acme/documents/parking.md")
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert runtime.store.count("acme", doc_id="parking.md") == 0
    assert runtime.store.count("acme", doc_id="lib.txt") == 1
    assert not runtime.files.exists(sha)
    assert client.get("/v1/tenants/acme/documents/parking.md").json()["deleted_at"]
    listed = client.get("/v1/tenants/acme/documents").json()["items"]
    assert [d["doc_id"] for d in listed] == ["lib.txt"]
    tombstones = client.get("/v1/tenants/acme/documents", params={"status": "deleted"}).json()
    assert [d["doc_id"] for d in tombstones["items"]] == ["parking.md"]
    again = client.delete("/v1/tenants/acme/documents/parking.md")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    assert client.get("/v1/tenants/acme/audit").json()[0]["action"] == "documents.delete"

    back = wait_for_job(client, upload(client, "acme", [("parking.md", PARKING)]).json()["id"])
    assert back["files"][0]["status"] == "indexed" and back["files"][0]["version"] == 2


def test_reingest_writes_a_new_version_from_the_stored_file(
    client: TestClient, runtime: Runtime
) -> None:
    wait_for_job(client, upload(client, "acme", [("lib.txt", LIBRARY)]).json()["id"])
    response = client.post("/v1/tenants/acme/documents/lib.txt/reingest")
    assert response.status_code == 202 and response.json()["kind"] == "reingest"
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded" and job["files"][0]["version"] == 2
    assert runtime.store.document_counts("acme") == {"lib.txt": {2: 1}}
    missing = client.post("/v1/tenants/acme/documents/nope.txt/reingest")
    assert missing.status_code == 404


def test_unknown_jobs_and_other_tenants_jobs_are_not_found(
    client: TestClient, runtime: Runtime
) -> None:
    assert client.get("/v1/jobs/no-such-job").status_code == 404
    job = upload(client, "acme", [("lib.txt", LIBRARY)]).json()
    wait_for_job(client, job["id"])
    with pytest.raises(NotFoundError):
        runtime.service.get_job(Principal(tenant_id="globex"), job["id"])
    globex = admin_headers(runtime, "globex")
    assert client.get(f"/v1/jobs/{job['id']}", headers=globex).status_code == 404
    assert client.post(f"/v1/jobs/{job['id']}/retry", headers=globex).status_code == 404
    assert client.post(f"/v1/jobs/{job['id']}/retry").status_code == 409  # nothing failed
    assert client.get("/v1/tenants/acme/documents", params={"status": "nope"}).status_code == 422


def test_the_latest_upload_of_a_document_wins(runtime: Runtime) -> None:
    """A job that reaches a document after a later upload claimed it leaves it alone."""
    principal = Principal(tenant_id="acme")
    older = runtime.service.submit(principal, [_upload("notice.md", CANTEEN)], queue=False)
    newer = runtime.service.submit(principal, [_upload("notice.md", PARKING)], queue=False)
    runtime.jobs.run(older.job.id)
    runtime.jobs.run(newer.job.id)
    old_job = runtime.service.get_job(principal, older.job.id)
    assert old_job.files and old_job.files[0].status == "superseded"
    assert old_job.status == "succeeded"
    doc = runtime.service.get_document(principal, "notice.md")
    assert (doc.status, doc.version, doc.title) == ("indexed", 1, "Parking")


def test_a_broken_index_retries_with_backoff_then_the_job_is_dead_until_retried(
    tmp_path: Path, embedder, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path / "data", database_url, max_attempts=3)
    runtime = Runtime.open(settings, start_llm=False, embedder=embedder)
    principal = Principal(tenant_id="acme")
    try:
        job = runtime.service.submit(principal, [_upload("lib.txt", LIBRARY)], queue=False).job
        runtime.store.close()  # the index goes away: every attempt fails transiently
        runtime.start_workers(1)
        runtime.queue.enqueue(job.id)
        deadline = time.monotonic() + 30
        while runtime.service.get_job(principal, job.id).status != "dead":
            assert time.monotonic() < deadline, runtime.service.get_job(principal, job.id)
            time.sleep(0.05)
        dead = runtime.service.get_job(principal, job.id)
        assert dead.attempts == 3 and dead.error
        assert "gave up after 3 attempts" in dead.error and "vector store is closed" in dead.error
        assert dead.files and dead.files[0].error_code == "job_dead"
        doc = runtime.service.get_document(principal, "lib.txt")
        assert (doc.status, doc.error_code) == ("failed", "job_dead")
    finally:
        runtime.close()

    # The index is back: the admin retries the dead job.
    runtime = Runtime.open(settings, start_llm=False, embedder=embedder)
    try:
        retried = runtime.service.retry_job(principal, job.id)
        assert (retried.status, retried.attempts, retried.files_done) == ("queued", 0, 0)
        runtime.jobs.run(job.id)
        done = runtime.service.get_job(principal, job.id)
        assert done.status == "succeeded" and done.files and done.files[0].status == "indexed"
        assert runtime.store.count("acme") == 1
        with pytest.raises(ConflictError):
            runtime.service.retry_job(principal, job.id)
    finally:
        runtime.close()


def test_doctor_reports_and_repairs_every_kind_of_drift(runtime: Runtime) -> None:
    principal = Principal(tenant_id="acme")
    job = runtime.service.submit(
        principal,
        [
            _upload("canteen.md", CANTEEN),
            _upload("parking.md", PARKING),
            _upload("lib.txt", LIBRARY),
        ],
        queue=False,
    ).job
    runtime.jobs.run(job.id)
    assert check_tenant(runtime.db, runtime.store, runtime.files, "acme").issues == []

    runtime.store.delete_document("acme", "parking.md")  # missing points
    _raw_point(runtime, "ghost.md", version=1)  # orphan points
    _raw_point(runtime, "canteen.md", version=9)  # a stale version

    report = check_tenant(runtime.db, runtime.store, runtime.files, "acme")
    kinds = {(i.kind, i.doc_id) for i in report.issues}
    assert kinds == {
        ("missing_points", "parking.md"),
        ("orphan_points", "ghost.md"),
        ("stale_versions", "canteen.md"),
    }
    fixed = repair_tenant(runtime.service, runtime.jobs, principal, run_inline=True)
    assert fixed.healthy and len(fixed.jobs) == 1
    assert check_tenant(runtime.db, runtime.store, runtime.files, "acme").issues == []
    assert runtime.store.document_counts("acme") == {
        "canteen.md": {1: 1},
        "parking.md": {2: 1},
        "lib.txt": {1: 1},
    }
    assert runtime.service.audit_log(principal)[0].action == "doctor.fix"


def test_uploads_over_the_request_limit_get_413(runtime: Runtime) -> None:
    ingest = runtime.settings.ingest.model_copy(update={"max_request_mb": 0.01})
    settings = runtime.settings.model_copy(update={"ingest": ingest})
    app = create_app(settings, runtime=runtime)
    with TestClient(app, headers=admin_headers(runtime, "acme")) as client:
        big = [("big.txt", b"lorem ipsum " * 2000)]
        declared = upload(client, "acme", big)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "upload_too_large"

        def chunked() -> Iterator[bytes]:  # no Content-Length: cut off while streaming
            yield b"--b\r\nContent-Disposition: form-data; name=files; filename=big.txt\r\n\r\n"
            for _ in range(20):
                yield b"x" * 1024
            yield b"\r\n--b--\r\n"

        streamed = client.post(
            "/v1/tenants/acme/documents",
            content=chunked(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert streamed.status_code == 413
        small = upload(client, "acme", [("lib.txt", LIBRARY)])
        assert small.status_code == 202
        wait_for_job(client, small.json()["id"])
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(JobRecord)) == 1


def _upload(name: str, body: bytes) -> Upload:
    import io

    return Upload(stream=io.BytesIO(body), filename=name)


def _raw_point(runtime: Runtime, doc_id: str, *, version: int) -> None:
    chunk = Chunk(
        tenant_id="acme",
        doc_id=doc_id,
        version=version,
        chunk_index=0,
        text="stray passage",
        title="",
        section="",
        page=None,
        acl_groups=["*"],
        source=doc_id,
    )
    dense = runtime.embedder.embed(["stray passage"]).tolist()
    runtime.store.upsert("acme", [chunk], dense, [SparseVector(indices=[1], values=[1.0])])


def test_a_stopping_worker_hands_the_job_back_and_leases_decide_recovery(
    runtime: Runtime,
) -> None:
    from datetime import timedelta

    from citewise.core.db import utcnow
    from citewise.ingest.jobs import JobRunner

    principal = Principal(tenant_id="acme")
    job = runtime.service.submit(
        principal, [_upload("lib.txt", LIBRARY), _upload("parking.md", PARKING)], queue=False
    ).job
    assert runtime.jobs.run(job.id, should_stop=lambda: True) == 0.0  # run again at once
    handed_back = runtime.service.get_job(principal, job.id)
    assert (handed_back.status, handed_back.attempts, handed_back.files_done) == ("queued", 0, 0)

    # Another worker holds the job with a live lease: it is neither claimed nor recovered.
    other = JobRunner(
        db=runtime.db,
        files=runtime.files,
        ingestor=runtime.ingestor,
        store=runtime.store,
        settings=runtime.settings.queue,
        worker_id="elsewhere:1",
    )
    assert other._claim(job.id)
    assert runtime.jobs.run(job.id) is None
    assert runtime.service.get_job(principal, job.id).status == "running"
    assert runtime.jobs.recover(exclusive=False) == []
    # Its lease runs out (the worker died): the job is queued again and resumed.
    with runtime.db.session() as session:
        record = session.get(JobRecord, job.id)
        assert record is not None
        record.lease_expires_at = utcnow() - timedelta(seconds=1)
    assert runtime.jobs.recover(exclusive=False) == [(job.id, 0.0)]
    runtime.jobs.run(job.id)
    done = runtime.service.get_job(principal, job.id)
    assert (done.status, done.attempts, done.files_done) == ("succeeded", 2, 2)


def test_a_queued_job_whose_message_was_lost_is_queued_again(runtime: Runtime) -> None:
    """The enqueue failed, or Redis restarted without persistence: the sweep finds the job."""
    from datetime import timedelta

    from citewise.core.db import utcnow

    principal = Principal(tenant_id="acme")
    job = runtime.service.submit(principal, [_upload("lib.txt", LIBRARY)], queue=False).job
    assert runtime.jobs.recover(exclusive=False) == []  # just queued: its message may be on its way
    with runtime.db.session() as session:
        record = session.get(JobRecord, job.id)
        assert record is not None
        record.updated_at = utcnow() - timedelta(seconds=3 * runtime.settings.queue.lease_s)
    assert runtime.jobs.recover(exclusive=False) == [(job.id, 0.0)]
    assert runtime.jobs.recover(exclusive=False) == []  # touched: not again for two leases
    runtime.jobs.run(job.id)
    assert runtime.service.get_job(principal, job.id).status == "succeeded"
