"""Rate limits per tenant and per credential, with the `limits` library's memory storage."""

from __future__ import annotations

import time
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Header
from fastapi.testclient import TestClient

from citewise.api.errors import install_error_handlers
from citewise.api.ratelimit import (
    Limiter,
    RateLimitHeadersMiddleware,
    TokenMeter,
    request_limit,
    token_meter,
)
from citewise.core.errors import RateLimitedError, RateLimitsUnavailableError
from citewise.core.metrics import RATE_LIMIT_STORAGE_ERRORS, RATE_LIMITED
from citewise.core.settings import LimitSettings
from citewise.core.tenancy import Principal


def _limiter(**limits: str) -> Limiter:
    return Limiter(LimitSettings(**limits))  # type: ignore[arg-type]


def _refused(limit: str, scope: str) -> float:
    return RATE_LIMITED.labels(limit=limit, scope=scope)._value.get()  # type: ignore[no-any-return]


def test_a_credential_is_refused_past_its_window_and_its_tenant_is_not_charged() -> None:
    limiter = _limiter(key_requests="3/minute", tenant_requests="10/minute")
    alice = Principal(tenant_id="acme", user_id="alice", credential_id="cw_alice")
    before = _refused("requests", "key")
    windows = [limiter.hit_request(alice) for _ in range(3)]
    assert [w.remaining for w in windows] == [2, 1, 0]  # the credential's window is the tightest
    assert all(w.scope == "key" and w.limit == 3 for w in windows)
    with pytest.raises(RateLimitedError) as refused:
        limiter.hit_request(alice)
    error = refused.value
    assert error.code == "rate_limited"
    assert 1 <= error.retry_after <= 60
    assert error.headers["Retry-After"] == str(error.retry_after)
    assert error.headers["X-RateLimit-Limit"] == "3"
    assert error.headers["X-RateLimit-Remaining"] == "0"
    assert int(error.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert _refused("requests", "key") == before + 1
    # The refused request cost the tenant nothing: 3 of its 10 are used.
    bob = Principal(tenant_id="acme", user_id="bob", credential_id="cw_bob")
    assert limiter.hit_request(bob).remaining == 2  # bob's own window: 3 - 1
    tenant = limiter.strategy.get_window_stats(
        limiter.requests["tenant"], "requests", "tenant", "acme"
    )
    assert tenant.remaining == 10 - 4


def test_the_tenant_window_is_shared_by_its_credentials_and_not_by_other_tenants() -> None:
    limiter = _limiter(key_requests="100/minute", tenant_requests="4/minute")
    keys = [Principal(tenant_id="acme", credential_id=f"cw_{i}") for i in range(4)]
    for principal in keys:
        limiter.hit_request(principal)
    before = _refused("requests", "tenant")
    with pytest.raises(RateLimitedError) as refused:
        limiter.hit_request(Principal(tenant_id="acme", credential_id="cw_new"))
    assert refused.value.headers["X-RateLimit-Limit"] == "4"
    assert _refused("requests", "tenant") == before + 1
    assert limiter.hit_request(Principal(tenant_id="globex", credential_id="cw_0")).remaining == 3


def test_without_a_credential_the_user_of_the_tenant_is_the_key() -> None:
    limiter = _limiter(key_requests="1/minute", tenant_requests="100/minute")
    limiter.hit_request(Principal(tenant_id="acme", user_id="alice"))
    limiter.hit_request(Principal(tenant_id="globex", user_id="alice"))  # another tenant's alice
    with pytest.raises(RateLimitedError):
        limiter.hit_request(Principal(tenant_id="acme", user_id="alice"))


def test_tokens_are_charged_from_real_usage_and_refuse_once_exhausted() -> None:
    limiter = _limiter(key_tokens="100/minute", tenant_tokens="1000/minute")
    alice = Principal(tenant_id="acme", credential_id="cw_alice")
    limiter.check_tokens(alice)
    assert limiter.charge_tokens(alice, {"prompt_tokens": 50, "completion_tokens": 9}) == 59
    limiter.check_tokens(alice)  # 41 left
    assert limiter.charge_tokens(alice, {}) == 0
    # More than is left fills the window rather than being dropped.
    assert limiter.charge_tokens(alice, {"prompt_tokens": 60, "completion_tokens": 0}) == 60
    before = _refused("tokens", "key")
    with pytest.raises(RateLimitedError) as refused:
        limiter.check_tokens(alice)
    assert refused.value.headers["X-RateLimit-Limit"] == "100"
    assert _refused("tokens", "key") == before + 1
    tenant = limiter.strategy.get_window_stats(limiter.tokens["tenant"], "tokens", "tenant", "acme")
    assert tenant.remaining == 1000 - 59 - 60
    # One answer larger than a whole window fills it too.
    bob = Principal(tenant_id="acme", credential_id="cw_bob")
    limiter.charge_tokens(bob, {"prompt_tokens": 500})
    with pytest.raises(RateLimitedError):
        limiter.check_tokens(bob)


def test_sliding_window_counter_strategy_limits_too() -> None:
    limiter = _limiter(strategy="sliding-window-counter", key_requests="2/minute")
    alice = Principal(tenant_id="acme", credential_id="cw_alice")
    limiter.hit_request(alice)
    limiter.hit_request(alice)
    with pytest.raises(RateLimitedError):
        limiter.hit_request(alice)


def _principal(
    x_tenant: Annotated[str, Header()], x_key: Annotated[str, Header()] = ""
) -> Principal:
    return Principal(tenant_id=x_tenant, credential_id=x_key)


def _app(limiter: Limiter | None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.limiter = limiter
    app.add_middleware(RateLimitHeadersMiddleware)

    @app.get("/thing", dependencies=[Depends(request_limit(_principal))])
    def thing(tokens: Annotated[TokenMeter, Depends(token_meter(_principal))]) -> dict[str, str]:
        tokens.charge({"prompt_tokens": 30, "completion_tokens": 10})
        return {"ok": "yes"}

    return app


def test_http_429_has_the_json_error_shape_and_headers_and_successes_carry_headers() -> None:
    limiter = _limiter(
        key_requests="2/minute", tenant_requests="100/minute", key_tokens="1000/minute"
    )
    with TestClient(_app(limiter)) as client:
        headers = {"x-tenant": "acme", "x-key": "cw_alice"}
        first = client.get("/thing", headers=headers)
        assert first.status_code == 200
        assert first.headers["x-ratelimit-limit"] == "2"
        assert first.headers["x-ratelimit-remaining"] == "1"
        assert int(first.headers["x-ratelimit-reset"]) >= int(time.time())
        assert client.get("/thing", headers=headers).headers["x-ratelimit-remaining"] == "0"
        refused = client.get("/thing", headers=headers)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["x-ratelimit-remaining"] == "0"
        # Another credential of the tenant is not affected.
        assert (
            client.get("/thing", headers={"x-tenant": "acme", "x-key": "cw_bob"}).status_code == 200
        )


def test_token_windows_refuse_before_generating() -> None:
    limiter = _limiter(key_requests="100/minute", key_tokens="80/minute")
    with TestClient(_app(limiter)) as client:
        headers = {"x-tenant": "acme", "x-key": "cw_alice"}
        assert client.get("/thing", headers=headers).status_code == 200  # 40 tokens
        assert client.get("/thing", headers=headers).status_code == 200  # 80: exhausted
        refused = client.get("/thing", headers=headers)
        assert refused.status_code == 429
        assert "LLM tokens" in refused.json()["error"]["message"]
        assert refused.headers["x-ratelimit-limit"] == "80"


def test_disabled_limits_add_no_headers() -> None:
    with TestClient(_app(None)) as client:
        response = client.get("/thing", headers={"x-tenant": "acme"})
        assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers


UNREACHABLE = "redis://127.0.0.1:1/0"
"""A loopback port nothing listens on: the storage's connection is refused."""


def test_an_unreachable_storage_with_allow_lets_requests_through_uncounted() -> None:
    limiter = _limiter(storage_uri=UNREACHABLE, on_storage_error="allow")
    principal = Principal(tenant_id="acme", credential_id="cw_alice")
    errors = RATE_LIMIT_STORAGE_ERRORS.labels(outcome="allowed")
    before = errors._value.get()
    assert limiter.hit_request(principal) is None
    limiter.check_tokens(principal)
    assert limiter.charge_tokens(principal, {"prompt_tokens": 5, "completion_tokens": 2}) == 7
    assert errors._value.get() == before + 3
    assert not limiter.storage_reachable()
    with TestClient(_app(limiter)) as client:
        response = client.get("/thing", headers={"x-tenant": "acme", "x-key": "cw_alice"})
        assert response.status_code == 200
        assert "x-ratelimit-limit" not in response.headers


def test_an_unreachable_storage_with_refuse_answers_503_but_never_loses_a_charge() -> None:
    limiter = _limiter(storage_uri=UNREACHABLE, on_storage_error="refuse")
    principal = Principal(tenant_id="acme", credential_id="cw_alice")
    with pytest.raises(RateLimitsUnavailableError, match="retry shortly"):
        limiter.hit_request(principal)
    with pytest.raises(RateLimitsUnavailableError):
        limiter.check_tokens(principal)
    # The answer is already made when usage is charged: that never raises.
    assert limiter.charge_tokens(principal, {"prompt_tokens": 5}) == 5
    with TestClient(_app(limiter)) as client:
        response = client.get("/thing", headers={"x-tenant": "acme", "x-key": "cw_alice"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "rate_limits_unavailable"
        assert response.headers["retry-after"] == "5"
