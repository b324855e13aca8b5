"""OIDC/JWT bearer tokens: signature, algorithm, issuer, audience and expiry checked.

Only asymmetric algorithms from ``auth.oidc_algorithms`` are accepted, chosen by
configuration and never by the token: ``alg: none`` and HS* (which would let a
token be "signed" with the public key as an HMAC secret) are refused before any
key is looked up. Keys come from a JWKS URL (``jwt.PyJWKClient``, cached, found
by ``kid``) or a static PEM public key.
"""

from __future__ import annotations

from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from citewise.core.errors import AuthenticationError, ConfigError, TenantError
from citewise.core.settings import AuthSettings
from citewise.core.tenancy import Principal, validate_tenant_id

log = structlog.get_logger(__name__)

FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
MAX_TOKEN_CHARS = 16_384


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by name, or by a dotted path into nested objects (``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class JWTVerifier:
    """Verifies bearer JWTs and maps their claims to a `Principal`.

    Args:
        settings: The ``auth`` settings; `AuthSettings.oidc_enabled` must be true.
    """

    def __init__(self, settings: AuthSettings) -> None:
        if not settings.oidc_enabled:
            raise ConfigError("OIDC needs auth.oidc_issuer, oidc_audience and a key source")
        algorithms = [a for a in settings.oidc_algorithms if a not in FORBIDDEN_ALGORITHMS]
        if not algorithms:
            raise ConfigError("auth.oidc_algorithms must name an asymmetric algorithm")
        self.settings = settings
        self.algorithms = algorithms
        self._jwks = (
            jwt.PyJWKClient(
                settings.oidc_jwks_url,
                cache_keys=True,
                lifespan=settings.jwks_cache_s,
                timeout=5,
            )
            if settings.oidc_jwks_url
            else None
        )
        self._static: Any = None
        if settings.oidc_public_key:
            try:
                self._static = load_pem_public_key(settings.oidc_public_key.encode())
            except ValueError as exc:
                raise ConfigError(f"auth.oidc_public_key is not a PEM public key: {exc}") from exc

    def _key(self, token: str, header: dict[str, Any]) -> Any:
        kid = header.get("kid")
        if self._jwks is not None and (kid is not None or self._static is None):
            try:
                signing = self._jwks.get_signing_key_from_jwt(token)
            except jwt.PyJWKClientConnectionError as exc:
                log.warning("jwks_unreachable", error=str(exc))
                raise AuthenticationError("invalid token: signing keys unavailable") from exc
            except jwt.PyJWKClientError as exc:
                raise AuthenticationError("invalid token: unknown signing key") from exc
            except jwt.PyJWTError as exc:
                raise AuthenticationError("invalid token") from exc
            if signing.algorithm_name not in (None, header.get("alg")):
                raise AuthenticationError("invalid token: algorithm does not match its key")
            return signing.key
        return self._static

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; `AuthenticationError` (401) otherwise."""
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError("invalid token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError("invalid token: malformed") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AuthenticationError("invalid token: algorithm not allowed")
        key = self._key(token, header)
        if key is None:
            raise AuthenticationError("invalid token: unknown signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.settings.oidc_audience,
                issuer=self.settings.oidc_issuer,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("invalid token: expired") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token: {_reason(exc)}") from exc
        except (TypeError, ValueError) as exc:  # the key's type does not fit the algorithm
            raise AuthenticationError("invalid token: algorithm does not match its key") from exc
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        s = self.settings
        tenant = _claim(claims, s.tenant_claim)
        user = _claim(claims, s.user_claim)
        if not isinstance(tenant, str):
            raise AuthenticationError(f"invalid token: no {s.tenant_claim!r} claim")
        try:
            validate_tenant_id(tenant)
        except TenantError as exc:
            raise AuthenticationError(f"invalid token: bad {s.tenant_claim!r} claim") from exc
        if not isinstance(user, str) or not 0 < len(user) <= 255:
            raise AuthenticationError(f"invalid token: no {s.user_claim!r} claim")
        groups = _claim(claims, s.groups_claim)
        if groups is None:
            groups = []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise AuthenticationError(f"invalid token: {s.groups_claim!r} must be a list")
        role = _claim(claims, s.role_claim)
        is_admin = role == "admin" or (isinstance(role, list) and "admin" in role)
        subject = claims.get("sub", user)
        return Principal(
            tenant_id=tenant,
            user_id=user,
            groups=frozenset(g for g in groups if g and g != "*"),
            role="admin" if is_admin else "user",
            credential_id=f"jwt:{claims['iss']}:{subject}",
        )


def _reason(exc: Exception) -> str:
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing {exc.claim!r}"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad signature"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "not yet valid"
    return "malformed"
