"""Rate limits over the HTTP API: requests and LLM tokens, in memory and on a real Redis.

The Redis tests use ``CITEWISE_TEST_REDIS_URL`` (``.ci/run`` starts a server with
``scripts/redis_test_server.sh``): two app instances share one limit there, as
API replicas do in production. Each test limits its own fresh tenant or user, so
windows left in Redis by other runs do not matter.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from citewise.api.app import create_app
from citewise.core.settings import LimitSettings, LLMTier
from tests.auth import admin_headers, user_headers
from tests.broken_llm import BrokenLLM, make_pipeline, primary
from tests.sse import read_events

pytestmark = pytest.mark.integration

QUESTION = "How long must my password be?"


def _app(runtime, **limits: str) -> TestClient:  # type: ignore[no-untyped-def]
    settings = runtime.settings.model_copy(update={"limits": LimitSettings(**limits)})  # type: ignore[arg-type]
    return TestClient(create_app(settings, runtime=runtime))


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_ask_is_refused_past_the_credentials_request_window(demo_runtime) -> None:  # type: ignore[no-untyped-def]
    with _app(demo_runtime, key_requests="3/minute", tenant_requests="1000/minute") as client:
        client.headers.update(user_headers(demo_runtime, "demo"))
        payload = {"question": QUESTION, "use_llm": False}
        remaining = []
        for _ in range(3):
            response = client.post("/v1/ask", json=payload)
            assert response.status_code == 200
            remaining.append(response.headers["x-ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        refused = client.post("/v1/ask", json=payload)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["x-ratelimit-limit"] == "3"
        with client.stream("POST", "/v1/ask/stream", json=payload) as streamed:
            assert streamed.status_code == 429  # the stream route counts too, before streaming
        # Another key of the tenant has a window of its own.
        other = user_headers(demo_runtime, "demo")
        assert client.post("/v1/ask", json=payload, headers=other).status_code == 200


def test_every_authenticated_route_counts_against_the_tenant(demo_runtime) -> None:  # type: ignore[no-untyped-def]
    tenant = _fresh("rl")
    with _app(demo_runtime, key_requests="1000/minute", tenant_requests="3/minute") as client:
        admin = admin_headers(demo_runtime, tenant)
        created = client.post("/v1/conversations", headers=user_headers(demo_runtime, tenant))
        assert created.status_code == 201 and created.headers["x-ratelimit-remaining"] == "2"
        listed = client.get("/v1/conversations", headers=user_headers(demo_runtime, tenant))
        assert listed.status_code == 200
        assert client.get(f"/v1/tenants/{tenant}/documents", headers=admin).status_code == 200
        refused = client.get("/v1/conversations", headers=user_headers(demo_runtime, tenant))
        assert refused.status_code == 429 and "tenant" in refused.json()["error"]["message"]
        refused_upload = client.post(
            f"/v1/tenants/{tenant}/documents",
            files={"files": ("a.txt", b"hello there")},
            headers=admin,
        )
        assert refused_upload.status_code == 429
        # Health checks are not limited.
        assert client.get("/healthz").status_code == 200


@pytest.fixture(scope="module")
def broken() -> Iterator[BrokenLLM]:
    server = BrokenLLM().start()
    yield server
    server.stop()


def test_llm_tokens_are_charged_from_real_usage_and_then_refused(
    demo_runtime,  # type: ignore[no-untyped-def]
    broken: BrokenLLM,
) -> None:
    """The fault server reports 50 prompt + 9 completion tokens for each answer."""
    broken.mode = "echo"
    pipeline = make_pipeline(
        demo_runtime, [primary(broken), LLMTier(name="extractive", kind="extractive")]
    )
    runtime = dataclasses.replace(demo_runtime, pipeline=pipeline)
    with _app(runtime, key_tokens="100/minute", tenant_tokens="100000/minute") as client:
        client.headers.update(user_headers(demo_runtime, "demo"))
        payload = {"question": QUESTION}
        first = client.post("/v1/ask", json=payload)
        assert first.status_code == 200 and first.json()["tier"] == "primary"
        usage = first.json()["usage"]
        assert usage["prompt_tokens"] + usage["completion_tokens"] > 0
        # The stream charges its final answer's usage at the end: the window is now full.
        events = read_events(client, payload)
        assert events[-1][0] == "final" and events[-1][1]["usage"]
        refused = client.post("/v1/ask", json=payload)
        assert refused.status_code == 429
        assert "LLM tokens" in refused.json()["error"]["message"]
        assert refused.headers["x-ratelimit-limit"] == "100"
        # The extractive tier uses no LLM tokens, but the check comes before generating.
        assert client.post("/v1/ask", json={**payload, "use_llm": False}).status_code == 429


def test_two_app_instances_share_one_limit_in_redis(demo_runtime, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    tenant = _fresh("rl")
    limits = {"storage_uri": redis_url, "tenant_requests": "6/minute", "key_requests": "100/minute"}
    with _app(demo_runtime, **limits) as one, _app(demo_runtime, **limits) as two:
        statuses = []
        for index in range(10):
            client = one if index % 2 == 0 else two
            headers = user_headers(demo_runtime, tenant)
            statuses.append(client.get("/v1/conversations", headers=headers).status_code)
        assert statuses == [200] * 6 + [429] * 4
        other_tenant = user_headers(demo_runtime, _fresh("rl"))
        assert two.get("/v1/conversations", headers=other_tenant).status_code == 200


def test_token_windows_are_shared_in_redis_too(demo_runtime, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    from citewise.api.ratelimit import Limiter
    from citewise.core.errors import RateLimitedError
    from citewise.core.tenancy import Principal

    settings = LimitSettings(storage_uri=redis_url, tenant_tokens="1000/minute")
    one, two = Limiter(settings), Limiter(settings)
    principal = Principal(tenant_id=_fresh("rl"), credential_id=_fresh("cw"))
    one.charge_tokens(principal, {"prompt_tokens": 600, "completion_tokens": 100})
    two.charge_tokens(principal, {"prompt_tokens": 250, "completion_tokens": 50})
    with pytest.raises(RateLimitedError):
        one.check_tokens(principal)
    with pytest.raises(RateLimitedError):
        two.check_tokens(principal)
