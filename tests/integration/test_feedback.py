"""Feedback: answers served through the API are kept, rated by their user, reviewed, exported.

The API tests run over the sample set with the extractive tier (no LLM); the
store runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from citewise.answer.feedback import FeedbackStore
from citewise.api.app import create_app
from citewise.cli import app as cli
from citewise.core.db import AnswerFeedbackRecord, Database
from citewise.core.errors import NotFoundError
from citewise.core.schemas import Answer, Citation
from citewise.core.tenancy import Principal
from citewise.eval.datasets import load_dataset
from tests.auth import admin_headers, user_headers
from tests.sse import read_events

pytestmark = pytest.mark.integration

HOTEL = "What is the most the company pays per night for a hotel?"
TRIAL = "How long is the free HarborTrack trial?"


@pytest.fixture(scope="module")
def client(demo_runtime) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(create_app(demo_runtime.settings, runtime=demo_runtime)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def alice(demo_runtime) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return user_headers(demo_runtime, "demo", user="fb-alice")


def _citewise(*args: str) -> Result:
    """Run the CLI in-process, then restore the logging it configured for its captured stderr."""
    before, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        structlog.configure(**before)
        root.handlers[:] = handlers
        root.setLevel(level)


def _ask(client: TestClient, headers: dict[str, str], question: str = HOTEL) -> dict[str, Any]:
    response = client.post(
        "/v1/ask", json={"question": question, "use_llm": False}, headers=headers
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_served_answer_is_rated_with_its_question_citations_and_retrieved_ids(
    client: TestClient, alice: dict[str, str]
) -> None:
    answer = _ask(client, alice)
    assert len(answer["answer_id"]) == 32 and not answer["declined"]
    rated = client.post(
        "/v1/feedback", json={"answer_id": answer["answer_id"], "rating": "up"}, headers=alice
    )
    assert rated.status_code == 200, rated.text
    body = rated.json()
    assert body["question"] == HOTEL and body["answer"] == answer["answer"]
    assert body["rating"] == "up" and body["user_id"] == "fb-alice"
    assert [c["doc_id"] for c in body["citations"]] == [c["doc_id"] for c in answer["citations"]]
    assert "passage" not in body["citations"][0]  # the passage text is not copied again
    assert [r["doc_id"] for r in body["retrieved"]] == [p["doc_id"] for p in answer["passages"]]
    assert all(len(r["point_id"]) == 36 for r in body["retrieved"])

    again = client.post(
        "/v1/feedback",
        json={"answer_id": answer["answer_id"], "rating": "down", "comment": "too vague"},
        headers=alice,
    )
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]  # one rating per user and answer: replaced
    assert again.json()["rating"] == "down" and again.json()["comment"] == "too vague"


def test_each_serve_has_its_own_answer_id(client: TestClient, alice: dict[str, str]) -> None:
    first, second = _ask(client, alice, TRIAL), _ask(client, alice, TRIAL)
    assert first["answer_id"] != second["answer_id"]


def test_streamed_and_conversation_answers_are_kept_too(
    client: TestClient, alice: dict[str, str]
) -> None:
    events = read_events(client, {"question": TRIAL, "use_llm": False}, headers=alice)
    final = next(data for name, data, _ in events if name == "final")
    rated = client.post(
        "/v1/feedback", json={"answer_id": final["answer_id"], "rating": "up"}, headers=alice
    )
    assert rated.status_code == 200 and rated.json()["question"] == TRIAL

    conversation = client.post("/v1/conversations", json={}, headers=alice).json()
    answer = client.post(
        "/v1/ask",
        json={"question": HOTEL, "use_llm": False, "conversation_id": conversation["id"]},
        headers=alice,
    ).json()
    rated = client.post(
        "/v1/feedback", json={"answer_id": answer["answer_id"], "rating": "down"}, headers=alice
    )
    assert rated.status_code == 200 and rated.json()["conversation_id"] == conversation["id"]


def test_only_the_user_it_was_served_to_can_rate_an_answer(
    client: TestClient, alice: dict[str, str], demo_runtime: Any
) -> None:
    answer_id = _ask(client, alice)["answer_id"]
    bob = user_headers(demo_runtime, "demo", user="fb-bob")
    other_tenant = user_headers(demo_runtime, "globex", user="fb-alice")  # same user id
    admin = admin_headers(demo_runtime, "demo")
    for headers in (bob, other_tenant, admin):
        refused = client.post(
            "/v1/feedback", json={"answer_id": answer_id, "rating": "up"}, headers=headers
        )
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "not_found"
    unknown = client.post(
        "/v1/feedback", json={"answer_id": "0" * 32, "rating": "up"}, headers=alice
    )
    assert unknown.status_code == 404
    assert (
        client.post("/v1/feedback", json={"answer_id": answer_id, "rating": "up"}).status_code
        == 401
    )


@pytest.mark.parametrize(
    "body",
    [
        {"rating": "up"},
        {"answer_id": "x", "rating": "meh"},
        {"answer_id": "x", "rating": "up", "comment": "c" * 2001},
        {"answer_id": "x", "rating": "up", "tenant": "globex"},
        {"answer_id": "x" * 33, "rating": "up"},
    ],
)
def test_malformed_feedback_is_422(
    client: TestClient, alice: dict[str, str], body: dict[str, Any]
) -> None:
    refused = client.post("/v1/feedback", json=body, headers=alice)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_request"


def test_admins_review_their_tenants_feedback_and_export_it_for_evaluation(
    client: TestClient, demo_runtime: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = datetime.now(UTC)
    carol = user_headers(demo_runtime, "demo", user="fb-carol")
    good, bad = _ask(client, carol), _ask(client, carol, TRIAL)
    client.post(
        "/v1/feedback", json={"answer_id": good["answer_id"], "rating": "up"}, headers=carol
    )
    client.post(
        "/v1/feedback",
        json={"answer_id": bad["answer_id"], "rating": "down", "correction": "It lasts 30 days."},
        headers=carol,
    )
    admin = admin_headers(demo_runtime, "demo")
    page = client.get(
        "/v1/tenants/demo/feedback",
        params={"since": started.isoformat(), "limit": 1},
        headers=admin,
    ).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["next_offset"] == 1
    downs = client.get(
        "/v1/tenants/demo/feedback",
        params={"since": started.isoformat(), "rating": "down"},
        headers=admin,
    ).json()
    assert [i["answer_id"] for i in downs["items"]] == [bad["answer_id"]]
    assert client.get("/v1/tenants/demo/feedback", headers=carol).status_code == 403
    other_admin = admin_headers(demo_runtime, "globex")
    assert client.get("/v1/tenants/demo/feedback", headers=other_admin).status_code == 404

    # `citewise feedback export`, on the same database, read back by the evaluation.
    monkeypatch.setenv("CITEWISE_DATA_DIR", str(demo_runtime.settings.data_dir))
    out = tmp_path / "demo.feedback.jsonl"
    result = _citewise(
        "feedback", "export", "--tenant", "demo", "--out", str(out), "--since", started.isoformat()
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["answer_id"], r["rating"]) for r in lines] == [
        (good["answer_id"], "up"),
        (bad["answer_id"], "down"),
    ]
    assert lines[0]["retrieved"] and lines[0]["tenant_id"] == "demo"
    dataset = load_dataset(out)
    items = {item.question: item for item in dataset.items}
    assert items[HOTEL].reference == good["answer"]
    assert items[HOTEL].reference_doc_ids == sorted({c["doc_id"] for c in good["citations"]})
    assert items[TRIAL].reference == "It lasts 30 days."

    downs_only = tmp_path / "down.feedback.jsonl"
    result = _citewise(
        "feedback",
        "export",
        "--tenant",
        "demo",
        "--out",
        str(downs_only),
        "--since",
        started.isoformat(),
        "--rating",
        "down",
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["answer_id"] for line in downs_only.read_text().splitlines()] == [
        bad["answer_id"]
    ]


# --- the store, on SQLite and PostgreSQL --------------------------------------------------------


@pytest.fixture
def store(database: Database) -> FeedbackStore:
    return FeedbackStore(database)


def _answer() -> Answer:
    passage = Citation(
        number=1,
        doc_id="handbook.md",
        version=2,
        source="handbook.md",
        title="Handbook",
        section="",
        page=None,
        chunk_index=4,
        passage="Hotels: at most 190 EUR per night.",
    )
    return Answer(
        question="hotel cap?",
        answer="190 EUR per night [1].",
        declined=False,
        tier="extractive",
        citations=[passage],
        passages=[passage],
    )


def test_the_store_keeps_one_rating_per_user_and_answer(store: FeedbackStore) -> None:
    alice = Principal(tenant_id="acme", user_id="alice")
    answer = _answer()
    assert store.record_served(alice, answer)
    store.rate(alice, answer.answer_id, "up")
    store.rate(alice, answer.answer_id, "down", comment="wrong city", correction="150 EUR")
    with store.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AnswerFeedbackRecord)) == 1
    with pytest.raises(NotFoundError):
        store.rate(Principal(tenant_id="other", user_id="alice"), answer.answer_id, "up")
    (record,) = store.export("acme")
    assert record["rating"] == "down" and record["correction"] == "150 EUR"
    assert record["retrieved"][0]["chunk_index"] == 4
    assert record["citations"][0]["doc_id"] == "handbook.md"
    assert list(store.export("other")) == []
    assert not store.record_served(alice, answer)  # the same id twice: logged, not raised
