"""The endpoints the UI needs: who am I, a document's source file, tenant stats, evaluation runs.

Over HTTP on a runtime of its own (real uploads through the job queue, Qdrant
Edge, the MiniLM embedder, SQLite), with real API keys. The queries behind the
source file's versions and the statistics also run on PostgreSQL (`database`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citewise.answer.stats import answer_stats
from citewise.api.app import create_app
from citewise.core.db import (
    AnswerFeedbackRecord,
    Database,
    DocumentRecord,
    JobFileRecord,
    JobRecord,
    ServedAnswerRecord,
    utcnow,
)
from citewise.core.errors import NotFoundError
from citewise.core.settings import load_settings
from citewise.core.tenancy import Principal
from citewise.eval.datasets import load_dataset
from citewise.eval.qa import default_runs_root
from citewise.eval.runs import QuestionResult, RunDir, RunRecord
from citewise.ingest.filestore import LocalFileStore
from citewise.ingest.sources import find_source
from citewise.ingest.stats import corpus_stats
from citewise.runtime import Runtime
from tests.auth import bearer, create_key

pytestmark = pytest.mark.integration

DATASET = Path(__file__).resolve().parents[2] / "samples" / "kestrel-qa.jsonl"
HANDBOOK = b"# Handbook\n\nThe cafeteria opens at 8 and the office closes at 18.\n"
SALARIES = b"# Salaries\n\nThe engineer salary band is 70000 to 90000 euros per year.\n"
SALARIES_2 = b"# Salaries\n\nThe engineer salary band is 75000 to 95000 euros per year.\n"
GLOBEX = b"# Handbook\n\nAt Globex the cafeteria opens at 7 and serves breakfast.\n"
REPORT = b"# Report\n\nThe annual report is published in May.\n"
REPORT_NAME = 'Q1 "final"; report \u00fcber.md'


def _wait(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def _upload(
    client: TestClient, tenant: str, headers: dict[str, str], name: str, body: bytes, groups: str
) -> dict[str, Any]:
    response = client.post(
        f"/v1/tenants/{tenant}/documents",
        files=[("files", (name, body))],
        data={"acl_groups": groups},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    job = _wait(client, response.json()["id"], headers)
    assert job["status"] == "succeeded", job
    return job


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[TestClient]:
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("ui-api"),
        cache={"enabled": False},
        limits={"enabled": False},
        retrieval={"rerank": {"backend": "none"}},
        answer={"tiers": [{"name": "extractive", "kind": "extractive"}]},
        queue={"poll_interval_s": 0.05},
    )
    runtime = Runtime.open(settings, start_llm=False, embedder=embedder)
    try:
        with TestClient(create_app(settings, runtime=runtime)) as test_client:
            yield test_client
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def keys(client: TestClient) -> dict[str, dict[str, str]]:
    """Headers of real keys; the acme and globex documents uploaded through the API."""
    db = client.app.state.runtime.db  # type: ignore[attr-defined]
    keys = {
        "admin": bearer(create_key(db, "acme", "admin")),
        "hr": bearer(create_key(db, "acme", "user", ["hr"], user="hanna")),
        "plain": bearer(create_key(db, "acme", "user")),
        "globex_admin": bearer(create_key(db, "globex", "admin")),
        "globex_hr": bearer(create_key(db, "globex", "user", ["hr"])),
    }
    admin = keys["admin"]
    _upload(client, "acme", admin, "handbook.md", HANDBOOK, "")
    _upload(client, "acme", admin, "salaries.md", SALARIES, "hr")
    _upload(client, "acme", admin, REPORT_NAME, REPORT, "")
    _upload(client, "globex", keys["globex_admin"], "handbook.md", GLOBEX, "")
    return keys


def _runs_root(client: TestClient) -> Path:
    return default_runs_root(client.app.state.runtime.settings.data_dir)  # type: ignore[attr-defined]


# --- /v1/me ------------------------------------------------------------------------------------


def test_me_names_the_credentials_principal(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    me = client.get("/v1/me", headers=keys["hr"])
    assert me.status_code == 200, me.text
    body = me.json()
    prefix = keys["hr"]["Authorization"].split("_")[1]
    assert body == {
        "tenant": "acme",
        "role": "user",
        "user": "hanna",
        "groups": ["hr"],
        "credential": prefix,
    }
    admin = client.get("/v1/me", headers=keys["admin"]).json()
    assert admin["role"] == "admin" and admin["tenant"] == "acme"
    refused = client.get("/v1/me")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"
    forged = client.get("/v1/me", headers=bearer("cw_nothere_xxxxxxxxxxxxxxxxxxxx"))
    assert forged.status_code == 401


# --- /v1/documents/{doc_id}/source -------------------------------------------------------------


def test_a_reader_downloads_the_uploaded_bytes(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    response = client.get("/v1/documents/salaries.md/source", headers=keys["hr"])
    assert response.status_code == 200, response.text
    assert response.content == SALARIES
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"salaries.md\"; filename*=UTF-8''salaries.md"
    )
    assert response.headers["x-citewise-version"] == "1"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-length"] == str(len(SALARIES))
    inline = client.get(
        "/v1/documents/handbook.md/source", params={"inline": "true"}, headers=keys["plain"]
    )
    assert inline.status_code == 200 and inline.content == HANDBOOK
    assert inline.headers["content-disposition"].startswith('inline; filename="handbook.md"')
    # The tenant decides which file: globex's handbook.md is globex's bytes.
    theirs = client.get("/v1/documents/handbook.md/source", headers=keys["globex_hr"])
    assert theirs.status_code == 200 and theirs.content == GLOBEX


def test_an_awkward_file_name_is_quoted_safely(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    docs = client.get("/v1/tenants/acme/documents", headers=keys["admin"]).json()["items"]
    report = next(d for d in docs if d["doc_id"] not in ("handbook.md", "salaries.md"))
    response = client.get(f"/v1/documents/{report['doc_id']}/source", headers=keys["plain"])
    assert response.status_code == 200 and response.content == REPORT
    disposition = response.headers["content-disposition"]
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and not set(fallback) & set('"\\;/')
    assert disposition.count('"') == 2 and "\n" not in disposition
    exact = disposition.split("filename*=UTF-8''", 1)[1]
    assert exact and not set(exact) & set(' ";')


@pytest.mark.parametrize(
    ("who", "doc_id"),
    [
        ("plain", "salaries.md"),  # not in the hr group: as if it did not exist
        ("globex_hr", "salaries.md"),  # another tenant's document
        ("globex_admin", "salaries.md"),
        ("hr", "nothing-here.md"),
        ("hr", "SALARIES.md"),
    ],
)
def test_unreadable_documents_are_not_found(
    client: TestClient, keys: dict[str, dict[str, str]], who: str, doc_id: str
) -> None:
    response = client.get(f"/v1/documents/{doc_id}/source", headers=keys[who])
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert SALARIES not in response.content


@pytest.mark.parametrize(
    "path",
    [
        "/v1/documents/..%2F..%2F..%2F..%2Fetc%2Fpasswd/source",
        "/v1/documents/%2e%2e%2f%2e%2e%2fetc%2fpasswd/source",
        "/v1/documents/%2e%2e/source",
        "/v1/documents/..%5C..%5Cetc%5Cpasswd/source",
        "/v1/documents/%2Fetc%2Fpasswd/source",
        "/v1/documents/salaries.md%00/source",
        "/v1/documents/salaries.md/source?version=0",
        "/v1/documents/salaries.md/source?version=x",
    ],
)
def test_path_tricks_never_reach_a_file(
    client: TestClient, keys: dict[str, dict[str, str]], path: str
) -> None:
    response = client.get(path, headers=keys["admin"])
    assert response.status_code in (404, 422), (path, response.status_code)
    assert b"root:" not in response.content and SALARIES not in response.content
    assert response.headers["content-type"] == "application/json"


def test_versions_are_served_while_their_file_is_stored(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    admin, hr = keys["admin"], keys["hr"]
    # A second document with v1's bytes keeps that file stored after salaries.md moves on.
    _upload(client, "acme", admin, "salaries-copy.md", SALARIES, "hr")
    _upload(client, "acme", admin, "salaries.md", SALARIES_2, "hr")
    current = client.get("/v1/documents/salaries.md/source", headers=hr)
    assert current.content == SALARIES_2 and current.headers["x-citewise-version"] == "2"
    old = client.get("/v1/documents/salaries.md/source", params={"version": 1}, headers=hr)
    assert old.status_code == 200, old.text
    assert old.content == SALARIES and old.headers["x-citewise-version"] == "1"
    assert client.get(
        "/v1/documents/salaries.md/source", params={"version": 1}, headers=keys["plain"]
    ).status_code == 404  # fmt: skip
    missing = client.get("/v1/documents/salaries.md/source", params={"version": 9}, headers=hr)
    assert missing.status_code == 404 and "version 9" in missing.json()["error"]["message"]
    # Handbook v1's file goes when v2 replaces it (nothing else holds it): 404, said plainly.
    _upload(client, "acme", admin, "handbook.md", HANDBOOK + b"\nUpdated.\n", "")
    gone = client.get("/v1/documents/handbook.md/source", params={"version": 1}, headers=hr)
    assert gone.status_code == 404 and "no longer stored" in gone.json()["error"]["message"]


def test_a_deleted_document_is_not_found(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    assert (
        client.get("/v1/documents/salaries-copy.md/source", headers=keys["hr"]).status_code == 200
    )
    deleted = client.delete("/v1/tenants/acme/documents/salaries-copy.md", headers=keys["admin"])
    assert deleted.status_code == 200, deleted.text
    for params in ({}, {"version": 1}):
        response = client.get(
            "/v1/documents/salaries-copy.md/source", params=params, headers=keys["hr"]
        )
        assert response.status_code == 404


def test_source_lookup_on_each_database(database: Database, tmp_path: Path) -> None:
    """`find_source` on SQLite and PostgreSQL: versions, ACL groups, tenants, stored files."""
    files = LocalFileStore(tmp_path / "files")
    sha1, size1 = files.put_file(_write(tmp_path / "v1", b"version one"))
    sha2, _ = files.put_file(_write(tmp_path / "v2", b"version two"))
    with database.session() as session:
        session.add(
            DocumentRecord(tenant_id="acme", doc_id="plan.pdf", source="dir/Plan.pdf",
                           sha256=sha2, version=2, status="indexed", chunk_count=3,
                           acl_groups=["finance"], title="Plan", meta={})
        )  # fmt: skip
        session.add(JobRecord(id="job-1", tenant_id="acme", kind="upload", status="succeeded"))
        session.flush()
        session.add(
            JobFileRecord(job_id="job-1", position=0, filename="dir/Plan-old.pdf",
                          doc_id="plan.pdf", sha256=sha1, size_bytes=size1,
                          acl_groups=["finance"], status="indexed", version=1)
        )  # fmt: skip
    finance = Principal(tenant_id="acme", groups=frozenset({"finance"}))
    current = find_source(database, files, finance, "plan.pdf")
    assert (current.version, current.sha256, current.filename) == (2, sha2, "Plan.pdf")
    assert current.media_type == "application/pdf"
    old = find_source(database, files, finance, "plan.pdf", 1)
    assert (old.version, old.sha256, old.filename) == (1, sha1, "Plan-old.pdf")
    for principal, version in (
        (Principal(tenant_id="acme", groups=frozenset({"hr"})), None),
        (Principal(tenant_id="acme", role="admin"), None),  # admins follow the ACL too
        (Principal(tenant_id="globex", groups=frozenset({"finance"})), None),
        (finance, 3),
    ):
        with pytest.raises(NotFoundError):
            find_source(database, files, principal, "plan.pdf", version)
    files.delete(sha1)
    with pytest.raises(NotFoundError, match="no longer stored"):
        find_source(database, files, finance, "plan.pdf", 1)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- /v1/tenants/{tenant}/stats ----------------------------------------------------------------


def test_stats_count_documents_jobs_answers_and_feedback(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    hr = keys["hr"]
    answered = client.post(
        "/v1/ask", json={"question": "What is the engineer salary band?", "use_llm": False},
        headers=hr,
    ).json()  # fmt: skip
    assert not answered["declined"], answered
    declined = client.post(
        "/v1/ask", json={"question": "Who won the 1954 World Cup?", "use_llm": False},
        headers=hr,
    ).json()  # fmt: skip
    assert declined["declined"], declined
    rated = client.post(
        "/v1/feedback", json={"answer_id": answered["answer_id"], "rating": "up",
                              "comment": "spot on"}, headers=hr,
    )  # fmt: skip
    assert rated.status_code == 200, rated.text

    response = client.get("/v1/tenants/acme/stats", headers=keys["admin"])
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["tenant"] == "acme"
    docs = client.get("/v1/tenants/acme/documents", headers=keys["admin"]).json()["items"]
    documents = stats["documents"]
    assert documents["total"] == len(docs)
    assert documents["by_status"]["indexed"] == sum(d["status"] == "indexed" for d in docs)
    assert set(documents["by_status"]) == {"pending", "processing", "indexed", "failed", "deleted"}
    assert documents["chunks"] == sum(d["chunk_count"] for d in docs) > 0
    assert documents["indexed_bytes"] > 0 and documents["last_ingest_at"]
    jobs = client.get("/v1/tenants/acme/jobs", headers=keys["admin"]).json()
    assert stats["jobs"]["total"] == jobs["total"]
    assert stats["jobs"]["by_status"]["succeeded"] == jobs["total"]
    assert stats["jobs"]["running"] == 0 and stats["jobs"]["queued"] == 0
    answers = stats["answers"]
    assert answers["total"] >= 2 and answers["last_7_days"] == answers["total"]
    assert answers["declined"] >= 1 and answers["last_answer_at"]
    assert stats["feedback"] == {"up": 1, "down": 0, "with_comment": 1}
    theirs = client.get("/v1/tenants/globex/stats", headers=keys["globex_admin"]).json()
    assert theirs["answers"]["total"] == 0 and theirs["documents"]["total"] == 1
    assert theirs["feedback"] == {"up": 0, "down": 0, "with_comment": 0}


def test_stats_and_eval_routes_need_the_tenants_admin(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    paths = [
        "/v1/tenants/acme/stats",
        "/v1/tenants/acme/eval/runs",
        "/v1/tenants/acme/eval/runs/20261101-100000-aaaaaa",
        "/v1/tenants/acme/eval/compare?base=a&head=b",
    ]
    for path in paths:
        assert client.get(path).status_code == 401, path
        user = client.get(path, headers=keys["hr"])
        assert user.status_code == 403 and user.json()["error"]["code"] == "forbidden", path
        other = client.get(path, headers=keys["globex_admin"])
        assert other.status_code == 404, path


def test_stats_queries_on_each_database(database: Database) -> None:
    """`corpus_stats` and `answer_stats` on SQLite and PostgreSQL (JSON flags, date windows)."""
    now = utcnow()
    with database.session() as session:
        for n, (status, chunks) in enumerate([("indexed", 4), ("indexed", 2), ("failed", 0),
                                              ("deleted", 0)]):  # fmt: skip
            session.add(
                DocumentRecord(tenant_id="acme", doc_id=f"d{n}", source=f"d{n}.md",
                               sha256=f"{n:064x}", version=1, status=status, chunk_count=chunks,
                               acl_groups=["*"], title="", meta={})
            )  # fmt: skip
        session.add(DocumentRecord(tenant_id="globex", doc_id="g", source="g.md", sha256="",
                                   version=1, status="indexed", chunk_count=9, acl_groups=["*"],
                                   title="", meta={}))  # fmt: skip
        session.add(JobRecord(id="j1", tenant_id="acme", kind="upload", status="succeeded",
                              finished_at=now - timedelta(hours=1)))  # fmt: skip
        session.add(JobRecord(id="j2", tenant_id="acme", kind="upload", status="running"))
        session.flush()
        for n, size in ((0, 100), (1, 50)):
            session.add(JobFileRecord(job_id="j1", position=n, filename=f"d{n}.md",
                                      doc_id=f"d{n}", sha256=f"{n:064x}", size_bytes=size,
                                      status="indexed", version=1))  # fmt: skip
        for n, (declined, degraded, age) in enumerate(
            [(False, False, 1), (True, False, 2), (False, True, 30), (True, True, 40)]
        ):
            session.add(
                ServedAnswerRecord(id=f"a{n}", tenant_id="acme", user_id="u", question="q?",
                                   answer={"answer": "x", "declined": declined,
                                           "degraded": degraded},
                                   retrieved=[], created_at=now - timedelta(days=age))
            )  # fmt: skip
        session.add(ServedAnswerRecord(id="g0", tenant_id="globex", user_id="u", question="q?",
                                       answer={"declined": True}, retrieved=[],
                                       created_at=now))  # fmt: skip
        session.flush()
        for n, (rating, comment) in enumerate([("up", ""), ("down", "wrong"), ("down", "")]):
            session.add(AnswerFeedbackRecord(id=f"f{n}", answer_id=f"a{n}", tenant_id="acme",
                                             user_id="u", rating=rating, comment=comment,
                                             correction=""))  # fmt: skip
    corpus = corpus_stats(database, "acme")
    assert corpus.documents.by_status == {
        "pending": 0, "processing": 0, "indexed": 2, "failed": 1, "deleted": 1
    }  # fmt: skip
    assert corpus.documents.total == 3 and corpus.documents.chunks == 6
    assert corpus.documents.indexed_bytes == 150
    assert corpus.documents.last_ingest_at == now - timedelta(hours=1)
    assert corpus.jobs.total == 2 and corpus.jobs.running == 1 and corpus.jobs.queued == 0
    answers, feedback = answer_stats(database, "acme", now=now)
    assert (answers.total, answers.last_7_days, answers.declined, answers.degraded) == (4, 2, 2, 2)
    assert (feedback.up, feedback.down, feedback.with_comment) == (1, 2, 1)
    empty = corpus_stats(database, "initech")
    assert empty.documents.total == 0 and empty.documents.last_ingest_at is None


# --- /v1/tenants/{tenant}/eval/... -------------------------------------------------------------

BASE = "20261101-100000-aaaaaa"
HEAD = "20261102-100000-bbbbbb"
THEIRS = "20261103-100000-cccccc"


def _write_run(root: Path, run_id: str, tenant: str, boost: float, started: str) -> RunRecord:
    dataset = load_dataset(DATASET)
    directory = RunDir(root / run_id)
    record = directory.start(run_id=run_id, dataset=dataset, dataset_path=DATASET, tenant=tenant,
                             config={"top_k": 6 if boost else 4, "git_revision": "abc123",
                                     "prompt_version": "p1", "use_llm": False})  # fmt: skip
    for n, item in enumerate(dataset.items[:12]):
        directory.append(
            QuestionResult(id=item.id, question=item.question, answerable=item.answerable,
                           answer=f"answer {n}", tier="extractive",
                           timings_ms={"total": 100.0 + n},
                           metrics={"rouge_l": 0.3 + 0.02 * n + boost})
        )  # fmt: skip
    record.started_at = started
    return directory.finish(record, directory.results())


@pytest.fixture(scope="module")
def runs(client: TestClient) -> dict[str, RunRecord]:
    root = _runs_root(client)
    return {
        BASE: _write_run(root, BASE, "acme", 0.0, "2026-11-01T10:00:00+00:00"),
        HEAD: _write_run(root, HEAD, "acme", 0.2, "2026-11-02T10:00:00+00:00"),
        THEIRS: _write_run(root, THEIRS, "globex", 0.1, "2026-11-03T10:00:00+00:00"),
    }


def test_eval_runs_are_listed_newest_first_per_tenant(
    client: TestClient, keys: dict[str, dict[str, str]], runs: dict[str, RunRecord]
) -> None:
    listed = client.get("/v1/tenants/acme/eval/runs", headers=keys["admin"])
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [r["run_id"] for r in body] == [HEAD, BASE]
    head = body[0]
    assert head["tenant"] == "acme" and head["dataset"] == runs[HEAD].dataset["name"]
    assert head["questions"] == 12 and head["finished"] and head["finished_at"]
    assert head["summary"]["rouge_l"] == pytest.approx(runs[HEAD].summary["rouge_l"])
    assert head["config_hash"] == runs[HEAD].config_hash
    assert (head["git_revision"], head["prompt_version"], head["use_llm"]) == (
        "abc123",
        "p1",
        False,
    )
    theirs = client.get("/v1/tenants/globex/eval/runs", headers=keys["globex_admin"]).json()
    assert [r["run_id"] for r in theirs] == [THEIRS]


def test_an_eval_run_comes_with_its_results(
    client: TestClient, keys: dict[str, dict[str, str]], runs: dict[str, RunRecord]
) -> None:
    response = client.get(f"/v1/tenants/acme/eval/runs/{BASE}", headers=keys["admin"])
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["run_id"] == BASE and run["config"]["top_k"] == 4
    assert run["summary"] == pytest.approx(runs[BASE].summary)
    assert len(run["results"]) == 12 and run["results"][0]["metrics"]["rouge_l"] == 0.3


def test_two_eval_runs_are_compared(
    client: TestClient, keys: dict[str, dict[str, str]], runs: dict[str, RunRecord]
) -> None:
    response = client.get(
        "/v1/tenants/acme/eval/compare",
        params={"base": BASE, "head": HEAD, "top": 3},
        headers=keys["admin"],
    )
    assert response.status_code == 200, response.text
    comparison = response.json()
    assert (comparison["run_a"], comparison["run_b"]) == (BASE, HEAD)
    assert comparison["paired_questions"] == 12 and comparison["dataset_match"]
    rouge = next(m for m in comparison["metrics"] if m["metric"] == "rouge_l")
    assert rouge["delta"] == pytest.approx(0.2) and rouge["verdict"] == "better"
    assert comparison["config_changes"] == {"top_k": [4, 6]}
    assert len(comparison["changed"]) == 3


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/tenants/acme/eval/runs/{THEIRS}",  # globex's run through acme's path
        "/v1/tenants/acme/eval/runs/20991231-000000-ffffff",
        "/v1/tenants/acme/eval/runs/..",
        "/v1/tenants/acme/eval/runs/..%2F..%2F..%2Fetc",
        "/v1/tenants/acme/eval/runs/%2e%2e%2f" + BASE,
        "/v1/tenants/acme/eval/runs/.hidden",
        f"/v1/tenants/acme/eval/compare?base={BASE}&head={THEIRS}",
        f"/v1/tenants/acme/eval/compare?base=..%2F{BASE}&head={HEAD}",
        f"/v1/tenants/acme/eval/compare?base=%2Ftmp&head={HEAD}",
        f"/v1/tenants/globex/eval/runs/{BASE}",
    ],
)
def test_foreign_or_malformed_runs_are_not_found(
    client: TestClient, keys: dict[str, dict[str, str]], runs: dict[str, RunRecord], path: str
) -> None:
    who = "globex_admin" if "/globex/" in path else "admin"
    response = client.get(path, headers=keys[who])
    assert response.status_code == 404, (path, response.text)
    assert response.json()["error"]["code"] == "not_found"


def test_a_run_outside_the_root_is_not_reached_through_a_link(
    client: TestClient, keys: dict[str, dict[str, str]], runs: dict[str, RunRecord], tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    _write_run(outside, "20261104-100000-dddddd", "acme", 0.0, "2026-11-04T10:00:00+00:00")
    link = _runs_root(client) / "20261104-100000-dddddd"
    link.symlink_to(outside / "20261104-100000-dddddd", target_is_directory=True)
    try:
        listed = client.get("/v1/tenants/acme/eval/runs", headers=keys["admin"]).json()
        assert [r["run_id"] for r in listed] == [HEAD, BASE]
        response = client.get(
            "/v1/tenants/acme/eval/runs/20261104-100000-dddddd", headers=keys["admin"]
        )
        assert response.status_code == 404
    finally:
        link.unlink()
