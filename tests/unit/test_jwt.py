"""OIDC/JWT verification against a real JWKS over loopback HTTP (RSA and EC keys)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest

from citewise.auth.jwt import JWTVerifier
from citewise.core.errors import AuthenticationError, ConfigError
from citewise.core.settings import AuthSettings
from tests.jwt_issuer import AUDIENCE, ISSUER, Issuer, hs256_with_public_key, tampered, unsigned


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """This module's own provider: its JWKS fetch count is asserted, so no other module
    may fetch from it (the session-wide ``issuer`` of conftest serves the rest)."""
    idp = Issuer()
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def verifier(issuer: Issuer) -> JWTVerifier:
    return JWTVerifier(
        AuthSettings(
            oidc_jwks_url=issuer.jwks_url,
            oidc_issuer=ISSUER,
            oidc_audience=AUDIENCE,
            leeway_s=5,
        )
    )


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_valid_token_gives_its_claims_as_principal(
    verifier: JWTVerifier, issuer: Issuer, alg: str
) -> None:
    principal = verifier.verify(issuer.token(alg, groups=["hr", "finance"], role="admin"))
    assert principal.tenant_id == "acme" and principal.user_id == "user-1"
    assert principal.groups == frozenset({"hr", "finance"}) and principal.is_admin
    assert principal.credential_id == f"jwt:{ISSUER}:user-1"
    assert verifier.verify(issuer.token(alg)).role == "user"  # no role claim: user


def test_jwks_keys_are_fetched_once_and_cached(verifier: JWTVerifier, issuer: Issuer) -> None:
    for _ in range(5):
        verifier.verify(issuer.token())
    assert issuer.fetches <= 2


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "expired"),
        ("wrong_audience", "wrong audience"),
        ("wrong_issuer", "wrong issuer"),
        ("no_exp", "missing 'exp'"),
        ("no_aud", "missing 'aud'"),
        ("alg_none", "algorithm not allowed"),
        ("hs256_public_key", "algorithm not allowed"),
        ("wrong_key", "bad signature"),
        ("unknown_kid", "unknown signing key"),
        ("tenant_tampered", "bad signature"),
        ("groups_tampered", "bad signature"),
        ("missing_tenant", "no 'tenant' claim"),
        ("bad_tenant", "bad 'tenant' claim"),
        ("groups_not_a_list", "'groups' must be a list"),
        ("not_yet_valid", "not yet valid"),
        ("garbage", "malformed"),
        ("ec_alg_on_rsa_kid", "algorithm does not match"),
    ],
)
def test_forged_or_invalid_tokens_are_refused(
    verifier: JWTVerifier, issuer: Issuer, case: str, reason: str
) -> None:
    now = int(time.time())
    token = {
        "expired": lambda: issuer.token(exp=now - 60, iat=now - 400),
        "wrong_audience": lambda: issuer.token(aud="another-api"),
        "wrong_issuer": lambda: issuer.token(iss="https://evil.test"),
        "no_exp": lambda: jwt.encode(
            {k: v for k, v in issuer.claims().items() if k != "exp"},
            issuer.rsa,
            algorithm="RS256",
            headers={"kid": "rsa-1"},
        ),
        "no_aud": lambda: jwt.encode(
            {k: v for k, v in issuer.claims().items() if k != "aud"},
            issuer.rsa,
            algorithm="RS256",
            headers={"kid": "rsa-1"},
        ),
        "alg_none": lambda: unsigned(issuer.claims(role="admin")),
        "hs256_public_key": lambda: hs256_with_public_key(
            issuer.claims(role="admin"), issuer.rsa_public_pem()
        ),
        "wrong_key": lambda: jwt.encode(
            issuer.claims(), issuer.rogue, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        "unknown_kid": lambda: jwt.encode(
            issuer.claims(), issuer.rogue, algorithm="RS256", headers={"kid": "rogue-9"}
        ),
        "tenant_tampered": lambda: tampered(issuer.token(), tenant="globex"),
        "groups_tampered": lambda: tampered(issuer.token(), groups=["hr", "finance"]),
        "missing_tenant": lambda: issuer.token(tenant=None),
        "bad_tenant": lambda: issuer.token(tenant="../globex"),
        "groups_not_a_list": lambda: issuer.token(groups="hr,finance"),
        "not_yet_valid": lambda: issuer.token(nbf=now + 600),
        "garbage": lambda: "not.a.jwt",
        "ec_alg_on_rsa_kid": lambda: issuer.token("ES256", kid="rsa-1"),
    }[case]()
    with pytest.raises(AuthenticationError, match=reason):
        verifier.verify(token)


def test_a_static_public_key_works_without_jwks(issuer: Issuer) -> None:
    static = JWTVerifier(
        AuthSettings(
            oidc_public_key=issuer.rsa_public_pem(),
            oidc_issuer=ISSUER,
            oidc_audience=AUDIENCE,
            tenant_claim="org",
            groups_claim="realm_access.roles",
            user_claim="email",
        )
    )
    token = issuer.token(org="globex", realm_access={"roles": ["finance"]}, email="b@globex.test")
    principal = static.verify(token)
    assert (principal.tenant_id, principal.user_id) == ("globex", "b@globex.test")
    assert principal.groups == frozenset({"finance"})
    with pytest.raises(AuthenticationError):  # an EC token has no key here
        static.verify(issuer.token("ES256", org="globex", email="b@globex.test"))
    with pytest.raises(AuthenticationError, match="algorithm not allowed"):
        static.verify(hs256_with_public_key(issuer.claims(org="globex"), issuer.rsa_public_pem()))


def test_an_unreachable_jwks_refuses_tokens(issuer: Issuer) -> None:
    dead = JWTVerifier(
        AuthSettings(
            oidc_jwks_url="http://127.0.0.1:9/jwks.json", oidc_issuer=ISSUER, oidc_audience=AUDIENCE
        )
    )
    with pytest.raises(AuthenticationError, match="signing keys unavailable"):
        dead.verify(issuer.token())


def test_configuration_is_checked() -> None:
    with pytest.raises(ConfigError):
        JWTVerifier(AuthSettings())
    with pytest.raises(ConfigError):
        JWTVerifier(AuthSettings(oidc_public_key="nope", oidc_issuer="i", oidc_audience="a"))
    with pytest.raises(ValueError):
        AuthSettings(oidc_algorithms=["HS256"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        AuthSettings(oidc_algorithms=["none"])  # type: ignore[list-item]
