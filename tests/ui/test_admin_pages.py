"""The admin pages (upload, documents, API keys, statistics), run by AppTest against the live API.

The three shared sample documents are only read here; re-ingest, delete and
upload work on documents these tests upload themselves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from citewise.ui import progress
from citewise.ui.client import ApiError, CitewiseClient
from tests.ui.conftest import SAMPLE_FILES, TENANT, LiveApi, open_view, shown_text

UI = Path(__file__).resolve().parents[2] / "src" / "citewise" / "ui"
RUN_S = 180
ADMIN_PAGES = ("upload", "documents", "keys", "stats")
OWN = "ui-admin-"

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture()
def admin(live_api: LiveApi) -> Iterator[CitewiseClient]:
    with live_api.client(live_api.admin_key) as client:
        yield client


@pytest.fixture(autouse=True)
def own_documents(live_api: LiveApi) -> Iterator[None]:
    """Delete what a test uploaded (``ui-admin-*``), leaving the shared samples as they were."""
    yield
    with live_api.client(live_api.admin_key) as client:
        for doc in client.documents(TENANT)["items"]:
            if str(doc["doc_id"]).startswith(OWN):
                client.delete_document(TENANT, doc["doc_id"])


def table(at: AppTest, n: int = 0) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = at.dataframe[n].value.to_dict("records")
    return rows


def upload_and_wait(client: CitewiseClient, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    job = client.upload(TENANT, files)
    deadline = time.monotonic() + 300
    while not progress.is_finished(job) and time.monotonic() < deadline:
        time.sleep(0.5)
        job = client.job(job["id"])
    assert progress.is_finished(job), job
    return job


def note(name: str, text: str) -> tuple[str, bytes]:
    return name, f"# {name}\n\n{text}\n".encode()


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_a_user_key_is_told_the_page_is_for_administrators(live_api: LiveApi, name: str) -> None:
    with live_api.client(live_api.user_key) as user:
        at = open_view(name, user)
    assert not at.exception
    assert len(at.warning) == 1
    assert at.warning[0].value.startswith("This page is for administrators.")
    assert not at.dataframe and not at.button


def test_the_documents_table_lists_the_samples_and_search_filters_it(
    admin: CitewiseClient,
) -> None:
    at = open_view("documents", admin)
    assert not at.exception
    listed = {row["Document"]: row for row in table(at)}
    assert set(SAMPLE_FILES) <= set(listed)
    policy = listed["information-security-policy.pdf"]
    assert policy["Status"] == "indexed" and policy["Version"] >= 1 and policy["Passages"] > 0
    assert policy["Readable by"] == "everyone"

    at.text_input(key="documents_query").input("security policy").run()
    assert [row["Document"] for row in table(at)] == ["information-security-policy.pdf"]
    at.text_input(key="documents_query").input("no such document anywhere").run()
    assert not at.dataframe
    assert "No document matches" in shown_text(at)

    at.text_input(key="documents_query").input("").run()
    at.selectbox(key="documents_status").select("failed").run()
    assert not any(row["Document"] in SAMPLE_FILES for row in (table(at) if at.dataframe else []))


def test_a_document_is_reingested_downloaded_and_deleted(admin: CitewiseClient) -> None:
    doc_id = "ui-admin-reingest.md"
    upload_and_wait(admin, [note(doc_id, "The canteen on level 3 serves lunch from 11:30.")])
    before = next(d for d in admin.documents(TENANT)["items"] if d["doc_id"] == doc_id)

    at = open_view("documents", admin)
    at.selectbox(key="documents_choice").select(doc_id).run()
    assert not at.exception
    at.button(key="get_source").click().run()
    assert at.session_state["documents_source"][0] == doc_id
    assert b"canteen on level 3" in at.session_state["documents_source"][1]

    at.button(key="reingest").click().run()
    assert not at.exception
    assert "All 1 file processed" in shown_text(at)
    after = next(d for d in admin.documents(TENANT)["items"] if d["doc_id"] == doc_id)
    assert after["version"] == before["version"] + 1

    at.button(key="delete").click().run()
    assert "cannot be undone" in shown_text(at)
    at.button(key="delete_cancel").click().run()
    assert doc_id in {d["doc_id"] for d in admin.documents(TENANT)["items"]}
    at.button(key="delete").click().run()
    at.button(key="delete_confirm").click().run()
    assert not at.exception
    assert doc_id not in {d["doc_id"] for d in admin.documents(TENANT)["items"]}
    deleted = admin.documents(TENANT, status="deleted")["items"]
    assert doc_id in {d["doc_id"] for d in deleted}
    assert doc_id not in {row["Document"] for row in table(at)}


def test_a_key_is_created_with_its_secret_shown_once_and_then_revoked(
    live_api: LiveApi, admin: CitewiseClient
) -> None:
    at = open_view("keys", admin)
    assert not at.exception
    own = admin.me()["credential"]
    assert any(row["Prefix"] == own and "(this session)" in row["Name"] for row in table(at))

    at.text_input[0].input("ui test key")
    at.radio[0].set_value("user")
    at.text_input[1].input("hr, finance, hr")
    next(b for b in at.button if b.label == "Create key").click().run()
    assert not at.exception
    created = at.session_state["keys_created"]
    secret = created["key"]
    assert secret.startswith("cw_") and [c.value for c in at.code] == [secret]
    assert "will not be shown again" in shown_text(at)
    listed = {k["prefix"]: k for k in admin.keys(TENANT)}
    assert sorted(listed[created["prefix"]]["groups"]) == ["finance", "hr"]
    with live_api.client(secret) as new:
        assert new.me()["role"] == "user"

    at.button(key="keys_created_done").click().run()
    assert not at.code and secret not in shown_text(at)

    at.selectbox(key="keys_revoke_choice").select(created["prefix"]).run()
    at.button(key="keys_revoke").click().run()
    assert not at.exception
    revoked_key = next(k for k in admin.keys(TENANT) if k["prefix"] == created["prefix"])
    assert revoked_key["revoked_at"]
    with live_api.client(secret) as revoked, pytest.raises(ApiError) as refused:
        revoked.me()
    assert refused.value.status == 401
    # Revoked keys are hidden until asked for.
    assert created["prefix"] not in {row["Prefix"] for row in table(at)}
    at.toggle(key="keys_show_revoked").set_value(True).run()
    assert created["prefix"] in {row["Prefix"] for row in table(at)}


def test_upload_progress_is_followed_to_the_end_with_refusals(admin: CitewiseClient) -> None:
    job = admin.upload(
        TENANT,
        [
            note("ui-admin-progress.md", "Parking permits are issued by facilities."),
            ("ui-admin-tool.exe", b"MZ\x90\x00" + b"\x00" * 64),
        ],
    )
    refused = progress.refused_positions(job)
    assert refused == {1}
    seen: list[dict[str, Any]] = []
    last = progress.watch(lambda: admin.job(job["id"]), seen.append, first=job, limit_s=300)
    assert progress.is_finished(last) and last["status"] == "partial"
    assert seen[0] is job and seen[-1] is last
    rows = progress.file_rows(last, refused)
    assert [(r["File"], r["Status"]) for r in rows] == [
        ("ui-admin-progress.md", "Indexed"),
        ("ui-admin-tool.exe", "Refused"),
    ]
    assert rows[1]["Problem"].endswith(".") and rows[0]["Passages"].startswith("1 / 1")
    level, sentence = progress.summary(last, refused)
    assert level == "warning" and "1 indexed" in sentence and "1 refused" in sentence


def test_the_upload_page_shows_a_job_live_until_it_ends(admin: CitewiseClient) -> None:
    at = AppTest.from_file(str(UI / "views" / "upload.py"), default_timeout=RUN_S)
    at.session_state["client"] = admin
    at.session_state["me"] = admin.me()
    at.session_state["upload_job"] = admin.upload(
        TENANT, [note("ui-admin-live.md", "Bicycles may be parked in the courtyard.")]
    )
    at.run()
    assert not at.exception
    assert progress.is_finished(at.session_state["upload_job"])
    assert "All 1 file processed (1 indexed)" in shown_text(at)
    assert table(at)[0]["File"] == "ui-admin-live.md"
    jobs = table(at, 1)
    assert jobs[0]["Job"] == at.session_state["upload_job"]["id"]
    assert jobs[0]["Status"] == "succeeded"


def test_the_upload_page_without_files_asks_for_them(admin: CitewiseClient) -> None:
    at = open_view("upload", admin)
    assert not at.exception
    next(b for b in at.button if b.label == "Upload").click().run()
    assert [w.value for w in at.warning] == ["Choose one or more files first."]
    assert at.dataframe or "No jobs yet" in shown_text(at)  # the tenant's latest jobs


def test_statistics_show_the_tenants_real_counts(admin: CitewiseClient) -> None:
    answer = admin.ask("How many hours is a full-time working week?")
    admin.feedback(answer["answer_id"], "up", "clear")
    at = open_view("stats", admin)
    assert not at.exception
    stats = admin.stats(TENANT)
    shown = {m.label: m.value for m in at.metric}
    documents = stats["documents"]
    assert shown["Documents indexed"] == str(documents["by_status"]["indexed"])
    assert int(shown["Documents indexed"]) >= len(SAMPLE_FILES)
    assert shown["Passages"] == str(documents["chunks"]) and documents["chunks"] > 0
    assert shown["Answers served"] == str(stats["answers"]["total"]) != "0"
    up, down = stats["feedback"]["up"], stats["feedback"]["down"]
    assert up >= 1 and shown["Thumbs up / down"] == f"{up} / {down}"
    assert [s.value for s in at.subheader] == ["Documents by status", "Jobs by status"]
