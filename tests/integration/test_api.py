"""The HTTP API over the real runtime (sample set, extractive tier)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from citewise.api.app import create_app
from tests.auth import user_headers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(demo_runtime):  # type: ignore[no-untyped-def]
    app = create_app(demo_runtime.settings, runtime=demo_runtime)
    with TestClient(app, headers=user_headers(demo_runtime, "demo")) as test_client:
        yield test_client


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_ask_returns_a_cited_answer(client: TestClient) -> None:
    response = client.post(
        "/v1/ask",
        json={"question": "How long must my password be?", "use_llm": False},
    )
    assert response.status_code == 200
    body = response.json()
    assert not body["declined"] and "14" in body["answer"]
    citation = body["citations"][0]
    assert citation["source"] == "information-security-policy.pdf" and citation["page"] == 3
    assert set(body["timings_ms"]) >= {"retrieve", "rank", "total"}
    assert body["tier"] == "extractive"


def test_ask_declines_without_support(client: TestClient) -> None:
    body = client.post(
        "/v1/ask",
        json={"question": "What is the CEO's annual salary?", "use_llm": False},
    ).json()
    assert body["declined"] and body["citations"] == []


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"question": ""}, 422),
        ({"question": "x" * 2001}, 422),
        ({"question": "hello?", "tenant": "demo"}, 422),  # the key says the tenant
        ({"question": "hello?", "groups": ["hr"]}, 422),
        ({"answer": "hello?"}, 422),
    ],
)
def test_bad_requests_get_clear_errors(client: TestClient, payload: dict, status: int) -> None:
    response = client.post("/v1/ask", json=payload)
    assert response.status_code == status
    body = response.json()
    assert "error" in body or "detail" in body


def test_openapi_documents_the_ask_route(client: TestClient) -> None:
    assert "/v1/ask" in client.get("/openapi.json").json()["paths"]
