"""Every route needs the right credential and role: API keys and OIDC tokens over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citewise.api.app import create_app
from citewise.core.settings import AuthSettings, load_settings
from citewise.runtime import Runtime
from tests.auth import bearer, create_key
from tests.jwt_issuer import AUDIENCE, ISSUER, Issuer, tampered, unsigned

pytestmark = pytest.mark.integration

OPEN = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}
ADMIN_PREFIXES = ("/v1/tenants/", "/v1/jobs")
QUESTION = "How long must my password be?"


@pytest.fixture(scope="module")
def client(demo_runtime, issuer: Issuer) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    auth = AuthSettings(oidc_jwks_url=issuer.jwks_url, oidc_issuer=ISSUER, oidc_audience=AUDIENCE)
    settings = demo_runtime.settings.model_copy(update={"auth": auth})
    with TestClient(create_app(settings, runtime=demo_runtime)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def keys(demo_runtime) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "admin": create_key(demo_runtime.db, "demo", "admin"),
        "user": create_key(demo_runtime.db, "demo", "user"),
        "other_admin": create_key(demo_runtime.db, "globex", "admin"),
    }


def _routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path with parameters filled) of every route in the OpenAPI document."""
    found = []
    for template, operations in client.get("/openapi.json").json()["paths"].items():
        if template in OPEN:
            continue
        path = template.replace("{tenant}", "demo")
        path = re.sub(r"\{[a-z_]+\}", "x", path)
        found.extend((method.upper(), path) for method in sorted(operations))
    return found


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    body: dict[str, Any] | None = {"question": QUESTION, "use_llm": False}
    if path.endswith("/keys"):
        body = {"role": "user"}
    if method in ("GET", "DELETE"):
        body = None
    return client.request(method, path, json=body, headers=headers)


def test_every_route_but_the_probes_needs_credentials(client: TestClient) -> None:
    routes = _routes(client)
    assert len(routes) >= 18, routes
    for method, path in routes:
        response = _call(client, method, path, {})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "unauthenticated"
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_admin_routes_refuse_a_user_key_and_user_routes_take_both(
    client: TestClient, keys: dict[str, str]
) -> None:
    for method, path in _routes(client):
        response = _call(client, method, path, bearer(keys["user"]))
        if path.startswith(ADMIN_PREFIXES):
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "forbidden"
        else:
            assert response.status_code not in (401, 403), (method, path, response.text)
    for headers in (bearer(keys["user"]), bearer(keys["admin"])):
        assert client.post("/v1/ask", json={"question": QUESTION, "use_llm": False},
                           headers=headers).status_code == 200  # fmt: skip
    assert (
        client.get("/v1/tenants/demo/documents", headers=bearer(keys["admin"])).status_code == 200
    )
    assert client.get("/v1/status/llm", headers=bearer(keys["user"])).status_code == 200


def test_another_tenants_paths_are_not_found_whatever_the_role(
    client: TestClient, keys: dict[str, str]
) -> None:
    for method, path in _routes(client):
        if not path.startswith("/v1/tenants/demo"):
            continue
        for tenant in ("acme", "Demo", "demo%20", "globex"):
            other = path.replace("/v1/tenants/demo", f"/v1/tenants/{tenant}", 1)
            response = _call(client, method, other, bearer(keys["admin"]))
            assert response.status_code == 404, (method, other, response.text)
        response = _call(client, method, path, bearer(keys["other_admin"]))
        assert response.status_code == 404, (method, path, response.text)


def test_keys_api_shows_the_secret_once_and_revocation_is_immediate(
    client: TestClient, keys: dict[str, str]
) -> None:
    admin = bearer(keys["admin"])
    body = {"name": "support bot", "role": "user", "groups": ["hr"], "user": "bot-1"}
    created = client.post("/v1/tenants/demo/keys", json=body, headers=admin)
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    new = created.json()
    assert new["key"].startswith(f"cw_{new['prefix']}_") and new["groups"] == ["hr"]
    listed = client.get("/v1/tenants/demo/keys", headers=admin).json()
    assert new["prefix"] in {k["prefix"] for k in listed}
    assert all("key" not in k and "key_sha256" not in k for k in listed)
    assert new["key"] not in str(listed)
    ask = {"question": QUESTION, "use_llm": False}
    assert client.post("/v1/ask", json=ask, headers=bearer(new["key"])).status_code == 200
    assert client.post("/v1/ask", json=ask, headers={"X-API-Key": new["key"]}).status_code == 200
    other = client.delete(f"/v1/tenants/globex/keys/{new['prefix']}", headers=admin)
    assert other.status_code == 404
    revoked = client.delete(f"/v1/tenants/demo/keys/{new['prefix']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    refused = client.post("/v1/ask", json=ask, headers=bearer(new["key"]))
    assert refused.status_code == 401 and refused.json()["error"]["message"] == "invalid API key"
    audit = client.get("/v1/tenants/demo/audit", headers=admin).json()
    actions = [(a["action"], a["target"]) for a in audit[:2]]
    assert actions == [("keys.revoke", new["prefix"]), ("keys.create", new["prefix"])]
    smuggled = {"role": "user", "tenant": "globex"}
    assert client.post("/v1/tenants/demo/keys", json=smuggled, headers=admin).status_code == 422
    assert (
        client.post("/v1/tenants/demo/keys", json={"role": "owner"}, headers=admin).status_code
        == 422
    )


@pytest.mark.parametrize(
    "headers",
    [
        [("Authorization", "Basic dXNlcjpwYXNz")],
        [("Authorization", "Bearer")],
        [("Authorization", "Bearer cw_nope")],
        [("Authorization", "Bearer a b")],
        [("X-API-Key", "not-a-key")],
    ],
)
def test_malformed_credentials_are_refused(
    client: TestClient, headers: list[tuple[str, str]]
) -> None:
    response = client.post("/v1/ask", json={"question": QUESTION}, headers=headers)
    assert response.status_code == 401


def test_two_credentials_are_refused_even_when_both_are_valid(
    client: TestClient, keys: dict[str, str]
) -> None:
    ask = {"question": QUESTION, "use_llm": False}
    both = [("Authorization", f"Bearer {keys['user']}"), ("X-API-Key", keys["other_admin"])]
    twice = [("Authorization", f"Bearer {keys['user']}")] * 2
    for headers in (both, twice, [("X-API-Key", keys["user"])] * 2):
        assert client.post("/v1/ask", json=ask, headers=headers).status_code == 401


def test_oidc_tokens_carry_tenant_groups_and_role(client: TestClient, issuer: Issuer) -> None:
    ask = {"question": QUESTION, "use_llm": False}
    user = issuer.token(tenant="demo", groups=[])
    answer = client.post("/v1/ask", json=ask, headers=bearer(user))
    assert answer.status_code == 200 and "14" in answer.json()["answer"]
    docs = "/v1/tenants/demo/documents"
    assert client.get(docs, headers=bearer(user)).status_code == 403
    admin = issuer.token("ES256", tenant="demo", role="admin")
    assert client.get(docs, headers=bearer(admin)).status_code == 200
    assert client.get("/v1/tenants/acme/documents", headers=bearer(admin)).status_code == 404
    for forged in (
        tampered(admin, tenant="acme"),
        unsigned(issuer.claims(tenant="demo", role="admin")),
        issuer.token(tenant="demo", aud="someone-else"),
        issuer.token(tenant="demo", exp=1),
    ):
        response = client.get(docs, headers=bearer(forged))
        assert response.status_code == 401 and "www-authenticate" in response.headers


def test_without_oidc_a_token_is_refused(demo_runtime, issuer: Issuer) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(demo_runtime.settings, runtime=demo_runtime)) as plain:
        token = issuer.token(tenant="demo")
        response = plain.post("/v1/ask", json={"question": QUESTION}, headers=bearer(token))
        assert response.status_code == 401


def test_odd_ids_are_client_errors_on_every_database(  # type: ignore[no-untyped-def]
    database_url: str, embedder, tmp_path: Path
) -> None:
    """NUL characters (which PostgreSQL cannot store) in ids, paths and bodies are 4xx, not 5xx."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        answer={"tiers": [{"name": "extractive", "kind": "extractive"}]},
    )
    runtime = Runtime.open(settings, start_llm=False, embedder=embedder)
    try:
        with TestClient(create_app(settings, runtime=runtime)) as client:
            admin = bearer(create_key(runtime.db, "acme", "admin"))
            user = bearer(create_key(runtime.db, "acme", "user"))
            calls = [
                ("GET", "/v1/tenants/acme/documents/x%00", admin, None),
                ("DELETE", "/v1/tenants/acme/documents/x%00", admin, None),
                ("POST", "/v1/tenants/acme/documents/x%00/reingest", admin, None),
                ("GET", "/v1/jobs/x%00", admin, None),
                ("POST", "/v1/jobs/x%00/retry", admin, None),
                ("DELETE", "/v1/tenants/acme/keys/x%00", admin, None),
                ("GET", "/v1/tenants/acme%00/documents", admin, None),
                ("POST", "/v1/tenants/acme/keys", admin, {"role": "user", "name": "a\x00b"}),
                ("GET", "/v1/conversations/x%00", user, None),
                ("DELETE", "/v1/conversations/x%00", user, None),
                ("POST", "/v1/ask", user, {"question": "hi", "conversation_id": "x\x00"}),
            ]
            for method, path, headers, body in calls:
                response = client.request(method, path, headers=headers, json=body)
                assert 400 <= response.status_code < 500, (method, path, response.text)
                assert "error" in response.json()
            titled = client.post("/v1/conversations", headers=user, json={"title": "a\x00b"})
            assert titled.status_code < 500, titled.text  # SQLite stores it, PostgreSQL cannot
    finally:
        runtime.close()
