"""Crash safety: SIGKILL the process running a multi-file job, restart it, nothing lost or doubled.

The embedded default runs the ingestion workers inside the API process (Qdrant Edge
is single-process), so the worker process here is a real `citewise serve`. Its
index, database, queue and stored files are compared with a clean run of the same
files: every document ends indexed exactly once (same points per document, one
version each, nothing missing) and the job ends ``succeeded`` after a second attempt.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from citewise.core.settings import load_settings
from citewise.core.tenancy import Principal
from citewise.ingest.doctor import check_tenant
from citewise.ingest.service import Upload
from citewise.runtime import Runtime
from tests.servers import Server, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

TOPICS = [
    f"{area}{n}"
    for area in ("travel", "expenses", "security", "onboarding", "parking", "canteen")
    for n in range(1, 7)
]
"""36 files: ingestion embeds the ready files of a job together and writes them one by
one as the embedder hands them over, so the kill needs many files for a window."""


def _document(topic: str) -> bytes:
    """A small policy text of several chunks, distinct per topic."""
    paragraphs = [
        f"## {topic.title()} rule {n}\n\nThe {topic} policy, clause {n}: employees who need "
        f"{topic} support ask their manager first, then file request {topic}-{n} in the portal. "
        f"Requests about {topic} are answered within {n + 2} working days, and the {topic} "
        f"team keeps a record of every decision for {n + 5} years. Exceptions to {topic} "
        f"clause {n} need written approval from the head of {topic}."
        for n in range(1, 7)
    ]
    return (f"# {topic.title()} policy\n\n" + "\n\n".join(paragraphs) + "\n").encode()


FILES = {f"{topic}.md": _document(topic) for topic in TOPICS}


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port(), tmp_path / "server.log")
    srv.env["CITEWISE_INGEST__PARSE_PROCESSES"] = "1"  # the default: parser processes
    yield srv
    srv.stop()


def _clean_run(data_dir: Path, embedder: Any) -> dict[str, dict[int, int]]:
    """The same files ingested without interruption: the reference."""
    runtime = Runtime.open(load_settings(data_dir=data_dir), start_llm=False, embedder=embedder)
    try:
        principal = Principal(tenant_id="acme")
        uploads = [Upload(stream=io.BytesIO(body), filename=name) for name, body in FILES.items()]
        job = runtime.service.submit(principal, uploads, queue=False).job
        runtime.jobs.run(job.id)
        assert runtime.service.get_job(principal, job.id).status == "succeeded"
        return runtime.store.document_counts("acme")
    finally:
        runtime.close()


def test_a_job_killed_mid_way_resumes_and_indexes_every_document_once(
    server: Server, tmp_path: Path, embedder: Any
) -> None:
    reference = _clean_run(tmp_path / "clean", embedder)
    assert len(reference) == len(FILES) and all(len(v) == 1 for v in reference.values())
    assert sum(n for v in reference.values() for n in v.values()) > 3 * len(FILES)

    admin = server.use_key(server.create_key("acme", "admin"))
    server.start()
    response = httpx.post(
        f"{server.url}/v1/tenants/acme/documents",
        files=[("files", (name, body)) for name, body in FILES.items()],
        headers={"Idempotency-Key": "crash-test", **admin},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    deadline = time.monotonic() + 120
    while True:  # kill it in the middle: some files done, others not
        job = server.job(job_id)
        if job["status"] == "running" and 2 <= job["files_done"] < len(FILES) - 8:
            break
        assert job["status"] in ("queued", "running"), job
        assert time.monotonic() < deadline, job
        time.sleep(0.01)
    assert server.process is not None
    parsers = [  # the parser workers (and multiprocessing's resource tracker)
        child
        for child in psutil.Process(server.process.pid).children(recursive=True)
        if "multiprocessing" in " ".join(child.cmdline())
    ]
    assert any("multiprocessing.spawn" in " ".join(c.cmdline()) for c in parsers)
    server.kill()
    done_at_kill = job["files_done"]
    _, alive = psutil.wait_procs(parsers, timeout=30)
    assert not alive, "parser processes outlived the killed server"

    server.start()  # the restarted process resumes the job on its own
    deadline = time.monotonic() + 120
    while (job := server.job(job_id))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    # The client's retry of the upload gets the same job back.
    replay = httpx.post(
        f"{server.url}/v1/tenants/acme/documents",
        files=[("files", (name, body)) for name, body in FILES.items()],
        headers={"Idempotency-Key": "crash-test", **admin},
        timeout=60,
    )
    assert replay.json()["id"] == job_id
    server.stop()

    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2 and done_at_kill < len(FILES)
    assert job["files_done"] == job["files_total"] == len(FILES) and job["files_failed"] == 0
    # A file whose row was committed just before the kill is found "unchanged" on resume.
    assert {f["status"] for f in job["files"]} <= {"indexed", "unchanged"}
    assert {f["version"] for f in job["files"]} == {1}
    reference_points = sum(n for v in reference.values() for n in v.values())
    assert job["chunks_done"] == job["chunks_total"] <= reference_points

    runtime = Runtime.open(
        load_settings(data_dir=tmp_path / "data"), start_llm=False, embedder=embedder
    )
    try:
        assert runtime.store.document_counts("acme") == reference  # once each, nothing missing
        docs = runtime.service.list_documents(Principal(tenant_id="acme")).items
        assert {(d.doc_id, d.status, d.version) for d in docs} == {
            (name, "indexed", 1) for name in FILES
        }
        assert all(d.chunk_count == reference[d.doc_id][1] for d in docs)
        assert check_tenant(runtime.db, runtime.store, runtime.files, "acme").issues == []
        jobs = runtime.service.list_jobs(Principal(tenant_id="acme"))
        assert jobs.total == 1
    finally:
        runtime.close()
