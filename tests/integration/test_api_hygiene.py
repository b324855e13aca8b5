"""API hygiene: one JSON error shape for every failure, body limits, CORS, a truthful OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from citewise.api.app import create_app
from citewise.api.deps import PrincipalDep
from tests.auth import user_headers

pytestmark = pytest.mark.integration

ORIGIN = "https://intranet.example.com"


def _app(demo_runtime: Any, **api: Any) -> FastAPI:
    settings = demo_runtime.settings.model_copy(
        update={"api": demo_runtime.settings.api.model_copy(update=api)}
    )
    return create_app(settings, runtime=demo_runtime)


@pytest.fixture(scope="module")
def app(demo_runtime) -> FastAPI:  # type: ignore[no-untyped-def]
    app = _app(demo_runtime, max_json_kb=2)

    @app.get("/v1/boom", include_in_schema=False)
    def boom(_principal: PrincipalDep) -> None:
        raise RuntimeError("secret internals: /etc/citewise/key.pem")

    return app


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def headers(demo_runtime) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return user_headers(demo_runtime, "demo")


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def test_routing_errors_use_the_error_shape(client: TestClient, headers: dict[str, str]) -> None:
    _error(client.get("/v1/nowhere", headers=headers), 404, "not_found")
    refused = client.get("/v1/ask", headers=headers)
    _error(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == "POST"


def test_validation_errors_name_each_field_without_echoing_it(
    client: TestClient, headers: dict[str, str]
) -> None:
    error = _error(
        client.post("/v1/ask", json={"question": "", "tenant": "globex"}, headers=headers),
        422,
        "invalid_request",
    )
    assert {tuple(d["loc"]) for d in error["details"]} == {
        ("body", "question"),
        ("body", "tenant"),
    }
    assert "globex" not in str(error)
    bad_json = client.post(
        "/v1/ask",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    _error(bad_json, 422, "invalid_request")
    _error(
        client.get("/v1/conversations", params={"offset": 10**30}, headers=headers),
        422,
        "invalid_request",
    )


def test_credential_errors_use_the_error_shape(client: TestClient) -> None:
    _error(client.post("/v1/ask", json={"question": "hi"}), 401, "unauthenticated")


def test_an_unexpected_exception_is_a_generic_500_with_the_request_id(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.get("/v1/boom", headers={**headers, "X-Request-ID": "req-boom-1"})
    error = _error(response, 500, "internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "X-Request-ID" in error["message"]
    assert response.headers["x-request-id"] == "req-boom-1"


def test_json_bodies_have_a_smaller_limit_than_uploads(
    client: TestClient, headers: dict[str, str]
) -> None:
    big = {"question": "x" * 1900, "history": [{"role": "user", "content": "y" * 1000}]}
    _error(client.post("/v1/ask", json=big, headers=headers), 413, "request_too_large")
    # A multipart body of the same size passes the body limit (to the credential check).
    upload = client.post("/v1/tenants/demo/documents", files={"files": ("a.txt", b"z" * 4000)})
    _error(upload, 401, "unauthenticated")


def test_without_configured_origins_there_are_no_cors_headers(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.get("/v1/status/llm", headers={**headers, "Origin": ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/v1/ask", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    _error(preflight, 405, "method_not_allowed")


def test_configured_origins_get_cors_and_others_do_not(demo_runtime) -> None:  # type: ignore[no-untyped-def]
    with TestClient(_app(demo_runtime, cors_origins=[ORIGIN])) as cors:
        allowed = cors.options(
            "/v1/ask",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        denied = cors.options(
            "/v1/ask",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert denied.status_code == 400
        assert "access-control-allow-origin" not in denied.headers
        # An error response still carries CORS headers, so the browser shows it to the page.
        refused = cors.post("/v1/ask", json={"question": "hi"}, headers={"Origin": ORIGIN})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in refused.headers["access-control-expose-headers"].lower()


def test_the_openapi_document_lists_the_error_responses(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ask = spec["paths"]["/v1/ask"]["post"]["responses"]
    assert {"401", "422", "429"} <= set(ask)
    assert ask["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    keys = spec["paths"]["/v1/tenants/{tenant}/keys"]["post"]["responses"]
    assert {"401", "403", "404", "422", "429"} <= set(keys)
    feedback = spec["paths"]["/v1/feedback"]["post"]["responses"]
    assert {"401", "404", "422"} <= set(feedback)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
