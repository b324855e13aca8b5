"""Conversations: stored chat sessions, follow-ups rewritten from stored history, isolation.

The store runs on SQLite and PostgreSQL; the API tests run over the sample set
with the extractive tier (no LLM).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from citewise.answer.conversations import ConversationalQA, ConversationStore
from citewise.api.app import create_app
from citewise.core.db import Database, MessageRecord
from citewise.core.errors import NotFoundError
from citewise.core.tenancy import Principal
from tests.auth import user_headers
from tests.sse import read_events

pytestmark = pytest.mark.integration

HOTEL = "What is the most the company pays per night for a hotel?"
FOLLOW_UP = "What about its rate in Nordhaven?"
TRIAL = "How long is the free HarborTrack trial?"
CARRIERS = "How many carriers does it integrate with?"


@pytest.fixture
def store(database: Database) -> ConversationStore:
    return ConversationStore(database)


def _messages(store: ConversationStore) -> int:
    with store.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(MessageRecord)) or 0)


# --- the store, on SQLite and PostgreSQL --------------------------------------------------------


def test_a_follow_up_is_rewritten_from_the_stored_history(store, demo_runtime) -> None:  # type: ignore[no-untyped-def]
    alice = Principal(tenant_id="demo", user_id="alice")
    qa = ConversationalQA(demo_runtime.pipeline, store, history_turns=6)
    conversation = store.create(alice)
    first = qa.ask(HOTEL, alice, conversation.id, use_llm=False)
    second = qa.ask(FOLLOW_UP, alice, conversation.id, use_llm=False)

    assert first.search_query == HOTEL
    assert second.search_query == f"{HOTEL} {FOLLOW_UP}"  # the rule rewrite, before retrieval
    assert not second.declined and "190" in second.answer
    detail = store.get(alice, conversation.id)
    assert detail.title == HOTEL  # an untitled conversation is named by its first question
    assert [(m.role, m.content) for m in detail.messages] == [
        ("user", HOTEL),
        ("assistant", first.answer),
        ("user", FOLLOW_UP),
        ("assistant", second.answer),
    ]
    asked, answered = detail.messages[2:]
    assert asked.search_query == second.search_query and asked.citations == []
    assert answered.citations == second.citations  # every field, the same [n]
    assert {c.source for c in answered.citations} == {"travel-and-expense-policy.docx"}
    assert answered.sentences == second.sentences
    assert answered.verification == second.verification
    assert (answered.tier, answered.degraded, answered.declined) == ("extractive", False, False)
    assert detail.updated_at > detail.created_at
    # The rewriter sees the latest turns only, oldest first.
    history = store.history(alice, conversation.id, turns=2)
    assert [(t.role, t.content) for t in history] == [
        ("user", FOLLOW_UP),
        ("assistant", second.answer),
    ]
    assert store.history(alice, conversation.id, turns=0) == []


def test_conversations_are_private_to_their_user_and_tenant(store) -> None:  # type: ignore[no-untyped-def]
    alice = Principal(tenant_id="demo", user_id="alice")
    bob = Principal(tenant_id="demo", user_id="bob")
    alice_elsewhere = Principal(tenant_id="other", user_id="alice")
    mine = store.create(alice, "Travel")
    theirs = store.create(bob, "Security")
    store.create(alice_elsewhere, "Elsewhere")

    assert [c.id for c in store.list_conversations(alice).items] == [mine.id]
    assert [c.title for c in store.list_conversations(bob).items] == ["Security"]
    assert [c.title for c in store.list_conversations(alice_elsewhere).items] == ["Elsewhere"]
    for stranger in (bob, alice_elsewhere):
        with pytest.raises(NotFoundError):
            store.get(stranger, mine.id)
        with pytest.raises(NotFoundError):
            store.history(stranger, mine.id, turns=6)
        with pytest.raises(NotFoundError):
            store.delete(stranger, mine.id)
    assert store.get(alice, mine.id).title == "Travel"
    with pytest.raises(NotFoundError):
        store.get(alice, theirs.id)

    store.delete(bob, theirs.id)
    with pytest.raises(NotFoundError):
        store.get(bob, theirs.id)
    assert store.list_conversations(bob).total == 0
    assert store.list_conversations(alice).total == 1


def test_delete_removes_the_messages(store, demo_runtime) -> None:  # type: ignore[no-untyped-def]
    alice = Principal(tenant_id="demo", user_id="alice")
    qa = ConversationalQA(demo_runtime.pipeline, store, history_turns=6)
    kept, deleted = store.create(alice), store.create(alice)
    qa.ask(TRIAL, alice, kept.id, use_llm=False)
    qa.ask(TRIAL, alice, deleted.id, use_llm=False)
    assert _messages(store) == 4
    store.delete(alice, deleted.id)
    assert _messages(store) == 2 and len(store.get(alice, kept.id).messages) == 2


def test_listing_pages_most_recently_active_first(store, demo_runtime) -> None:  # type: ignore[no-untyped-def]
    alice = Principal(tenant_id="demo", user_id="alice")
    ids = [store.create(alice, f"c{n}").id for n in range(3)]
    page = store.list_conversations(alice, limit=2)
    assert [c.id for c in page.items] == [ids[2], ids[1]]
    assert (page.total, page.next_offset) == (3, 2)
    last = store.list_conversations(alice, limit=2, offset=2)
    assert [c.id for c in last.items] == [ids[0]] and last.next_offset is None
    # A new message brings a conversation to the top.
    ConversationalQA(demo_runtime.pipeline, store, history_turns=6).ask(
        TRIAL, alice, ids[0], use_llm=False
    )
    assert store.list_conversations(alice, limit=1).items[0].id == ids[0]


# --- the HTTP API (SQLite of the demo runtime) --------------------------------------------------


@pytest.fixture(scope="module")
def client(demo_runtime) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(create_app(demo_runtime.settings, runtime=demo_runtime)) as test_client:
        yield test_client


_KEYS: dict[tuple[str, str], dict[str, str]] = {}


def _who(client: TestClient, tenant: str, user: str) -> dict[str, str]:
    """Headers of a user key of `tenant` acting as `user` (one key per pair)."""
    if (tenant, user) not in _KEYS:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        _KEYS[tenant, user] = user_headers(runtime, tenant, user=user)
    return _KEYS[tenant, user]


def _create(client: TestClient, tenant: str, user: str, title: str = "") -> dict[str, Any]:
    body = {"title": title} if title else None  # the body is optional
    response = client.post("/v1/conversations", headers=_who(client, tenant, user), json=body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/conversations/{response.json()['id']}"
    return dict(response.json())


def _ask(client: TestClient, user: str, conversation_id: str, question: str) -> Any:
    body = {"question": question, "conversation_id": conversation_id, "use_llm": False}
    return client.post("/v1/ask", json=body, headers=_who(client, "demo", user))


def test_api_multi_turn_conversation(client: TestClient) -> None:
    carol = _who(client, "demo", "api-carol")
    conversation = _create(client, "demo", "api-carol")
    assert conversation["title"] == ""
    first = _ask(client, "api-carol", conversation["id"], TRIAL)
    second = _ask(client, "api-carol", conversation["id"], CARRIERS)
    assert first.status_code == second.status_code == 200
    answer = second.json()
    assert answer["search_query"] == f"{TRIAL} {CARRIERS}"
    assert "186" in answer["answer"]

    detail = client.get(f"/v1/conversations/{conversation['id']}", headers=carol).json()
    assert detail["title"] == TRIAL
    roles = [(m["role"], m["content"]) for m in detail["messages"]]
    assert roles == [
        ("user", TRIAL),
        ("assistant", first.json()["answer"]),
        ("user", CARRIERS),
        ("assistant", answer["answer"]),
    ]
    asked, answered = detail["messages"][2:]
    assert asked["search_query"] == answer["search_query"]
    assert answered["citations"] == answer["citations"]  # the JSON served, field for field
    assert answered["sentences"] == answer["sentences"]
    assert answered["verification"] == answer["verification"]
    assert answered["tier"] == answer["tier"] == "extractive"
    assert answered["degraded"] is False and answered["declined"] is False

    listing = client.get("/v1/conversations", headers=carol)
    assert [c["id"] for c in listing.json()["items"]] == [conversation["id"]]


def test_api_isolation_and_delete(client: TestClient) -> None:
    mine = _create(client, "demo", "api-dave", "Mine")
    _create(client, "demo", "api-erin", "Erin's")
    url = f"/v1/conversations/{mine['id']}"
    for tenant, user in (("demo", "api-erin"), ("other", "api-dave")):
        who = _who(client, tenant, user)
        assert client.get(url, headers=who).status_code == 404
        assert client.delete(url, headers=who).status_code == 404
        assert client.get("/v1/conversations", headers=who).json()["items"] != [mine]
    refused = _ask(client, "api-erin", mine["id"], TRIAL)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    owner = _who(client, "demo", "api-dave")
    assert client.get(url, headers=owner).json()["messages"] == []  # nothing appended
    listing = client.get("/v1/conversations", headers=owner).json()
    assert [c["title"] for c in listing["items"]] == ["Mine"] and listing["total"] == 1

    assert client.delete(url, headers=owner).status_code == 204
    assert client.get(url, headers=owner).status_code == 404
    assert client.get("/v1/conversations", headers=owner).json()["total"] == 0


def test_api_refuses_bad_conversation_requests(client: TestClient) -> None:
    assert client.get("/v1/conversations").status_code == 401  # no credentials
    frank = _who(client, "demo", "api-frank")
    smuggled = client.get("/v1/conversations", params={"tenant": "other"}, headers=frank)
    assert smuggled.status_code == 200  # query parameters name no one: still frank's own list
    conversation = _create(client, "demo", "api-frank")
    both = {
        "question": CARRIERS,
        "conversation_id": conversation["id"],
        "history": [{"role": "user", "content": TRIAL}],
    }
    assert client.post("/v1/ask", json=both, headers=frank).status_code == 422
    missing = {**both, "history": [], "conversation_id": "no-such-conversation"}
    assert client.post("/v1/ask/stream", json=missing, headers=frank).status_code == 404
    smuggled_body = {"title": "x", "tenant": "other", "user": "api-dave"}
    assert client.post("/v1/conversations", json=smuggled_body, headers=frank).status_code == 422


def test_stream_stores_the_citations_of_its_final_event(client: TestClient) -> None:
    gina = _who(client, "demo", "api-gina")
    conversation = _create(client, "demo", "api-gina")
    assert _ask(client, "api-gina", conversation["id"], HOTEL).status_code == 200
    payload = {"question": FOLLOW_UP, "conversation_id": conversation["id"], "use_llm": False}
    events = read_events(client, payload, headers=gina)
    assert [e[0] for e in events] == ["meta", "token", "final"]
    meta, final = events[0][1], events[-1][1]
    assert meta["search_query"] == final["search_query"] == f"{HOTEL} {FOLLOW_UP}"
    assert final["citations"] and "190" in final["answer"]

    detail = client.get(f"/v1/conversations/{conversation['id']}", headers=gina).json()
    asked, answered = detail["messages"][2:]
    assert asked["content"] == FOLLOW_UP and asked["search_query"] == final["search_query"]
    assert answered["content"] == final["answer"]
    assert answered["citations"] == final["citations"]
    offered = {p["number"] for p in meta["passages"]}
    assert {c["number"] for c in answered["citations"]} <= offered
