"""POST /v1/ask/stream over HTTP: meta, tokens, fallbacks and the verified final answer."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from citewise.api.app import create_app
from citewise.core.settings import LLMTier
from tests.auth import user_headers
from tests.broken_llm import BrokenLLM, grounded_sentence, make_pipeline, primary
from tests.sse import read_events

pytestmark = pytest.mark.integration

QUESTION = "How long must my password be?"


@pytest.fixture(scope="module")
def broken() -> Iterator[BrokenLLM]:
    server = BrokenLLM().start()
    yield server
    server.stop()


@pytest.fixture
def client(demo_runtime, broken: BrokenLLM) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The API over the sample set with tiers: broken server, then extractive (fresh breakers)."""
    broken.mode = "echo"
    pipeline = make_pipeline(
        demo_runtime, [primary(broken), LLMTier(name="extractive", kind="extractive")]
    )
    runtime = dataclasses.replace(demo_runtime, pipeline=pipeline)
    app = create_app(demo_runtime.settings, runtime=runtime)
    with TestClient(app, headers=user_headers(demo_runtime, "demo")) as test_client:
        yield test_client


def test_extractive_stream_matches_the_non_streaming_answer(client: TestClient) -> None:
    payload = {"question": QUESTION, "use_llm": False}
    events = read_events(client, payload)
    assert [e[0] for e in events] == ["meta", "token", "final"]
    meta, token, final = (e[1] for e in events)
    assert meta["tier"] == "extractive" and meta["tiers"] == ["extractive"]
    assert [p["number"] for p in meta["passages"]] == list(range(1, len(meta["passages"]) + 1))
    assert token["text"] == final["answer"]
    plain = client.post("/v1/ask", json=payload).json()
    for key in ("answer", "sentences", "citations", "passages", "tier", "degraded"):
        assert final[key] == plain[key], key
    assert final["passages"] == meta["passages"]  # numbers fixed before generation
    assert "ttft" in final["timings_ms"]


def test_llm_sentences_stream_verified_then_the_final(client: TestClient, broken) -> None:
    """Tokens are released a verified sentence at a time; an unsupported one is never sent."""
    broken.mode = "scripted"
    broken.reply = lambda prompt: (
        f"{grounded_sentence(prompt)} [1]. The CFO approves every password reset [1]. "
        f"{grounded_sentence(prompt)} [1]"
    )
    events = read_events(client, {"question": QUESTION})
    names = [e[0] for e in events]
    assert names[0] == "meta" and names[-1] == "final" and "fallback" not in names
    tokens = [e[1]["text"] for e in events if e[0] == "token"]
    assert len(tokens) == 2 and {e[1]["tier"] for e in events if e[0] == "token"} == {"primary"}
    assert all("CFO" not in token for token in tokens)
    final = events[-1][1]
    assert final["tier"] == "primary" and not final["degraded"]
    assert "".join(tokens).strip() == final["answer"]
    verification = final["verification"]
    assert (verification["sentences"], verification["supported"]) == (3, 2)
    assert verification["removed"] == 1 and verification["policy"] == "remove"
    offered = {p["number"] for p in events[0][1]["passages"]}
    assert {c["number"] for c in final["citations"]} <= offered
    assert 0 < final["timings_ms"]["ttft"] < final["timings_ms"]["total"]


def test_a_tier_failing_mid_stream_falls_back_and_says_so(client: TestClient, broken) -> None:
    broken.mode = "hang_mid_stream"
    events = read_events(client, {"question": QUESTION})
    names = [e[0] for e in events]
    assert names == ["meta", "token", "fallback", "token", "final"], names
    fallback = events[2][1]
    assert fallback == {
        "tier": "primary",
        "reason": "timeout",
        "next": "extractive",
        "discard": True,
    }
    assert events[2][2] - events[1][2] < 1.0 + 0.5  # the tier's timeout, then the fallback
    final = events[-1][1]
    assert final["tier"] == "extractive" and final["degraded"] and "14" in final["answer"]
    assert events[3][1] == {"tier": "extractive", "text": final["answer"]}
    assert [(a["tier"], a["reason"]) for a in final["attempts"]] == [
        ("primary", "timeout"),
        ("extractive", ""),
    ]


def test_breaker_state_is_exposed_and_an_open_breaker_skips_the_tier(
    client: TestClient, broken
) -> None:
    broken.mode = "malformed"
    for _ in range(2):
        events = read_events(client, {"question": QUESTION})
        assert [e[0] for e in events] == ["meta", "fallback", "token", "final"]
        assert events[1][1]["reason"] == "malformed" and events[1][1]["discard"] is False
    status = client.get("/v1/status/llm").json()["tiers"]
    assert [t["name"] for t in status] == ["primary", "extractive"]
    assert status[0]["breaker"]["state"] == "open" and status[0]["breaker"]["fail_max"] == 2
    assert status[0]["breaker"]["last_failure"] == "malformed"
    assert status[0]["endpoint"] == broken.base_url and status[1]["breaker"] is None
    requests = len(broken.requests)
    events = read_events(client, {"question": QUESTION})
    assert events[1][1]["reason"] == "breaker_open" and len(broken.requests) == requests
    assert events[-1][1]["degraded"]


def test_a_bad_request_gets_an_http_error_not_a_stream(client: TestClient) -> None:
    response = client.post("/v1/ask/stream", json={"question": "hello?", "tenant": "../x"})
    assert response.status_code == 422  # the tenant comes from the key, never the body
    missing = {"question": "hello?", "conversation_id": "no-such-conversation"}
    response = client.post("/v1/ask/stream", json=missing)
    assert response.status_code == 404 and "error" in response.json()
    assert "/v1/ask/stream" in client.get("/openapi.json").json()["paths"]
