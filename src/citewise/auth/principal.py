"""Credentials to principal: exactly one API key or bearer token per request.

``Authorization: Bearer <credential>`` carries an API key (``cw_...``) or a JWT;
``X-API-Key: <key>`` carries an API key. A request with no credential, with
both headers, with either header repeated, or with another scheme is refused
(401): an ambiguous request never picks one identity over another.
"""

from __future__ import annotations

from collections.abc import Sequence

from citewise.auth.jwt import JWTVerifier
from citewise.auth.keys import KeyStore, looks_like_key
from citewise.core.errors import AuthenticationError
from citewise.core.settings import AuthSettings
from citewise.core.tenancy import Principal

MAX_CREDENTIAL_CHARS = 16_384


class Authenticator:
    """Resolves a request's credential headers to the `Principal` it acts as.

    Args:
        settings: The ``auth`` settings (JWTs are accepted when OIDC is configured).
        keys: The API key store.
    """

    def __init__(self, settings: AuthSettings, keys: KeyStore) -> None:
        self.keys = keys
        self.jwt = JWTVerifier(settings) if settings.oidc_enabled else None

    def authenticate(self, authorization: Sequence[str], api_key: Sequence[str]) -> Principal:
        """The principal of the given header values (each list: every value of that header)."""
        if not authorization and not api_key:
            raise AuthenticationError(
                "credentials required: send 'Authorization: Bearer <API key or token>'"
            )
        if len(authorization) + len(api_key) > 1:
            raise AuthenticationError("send exactly one credential")
        if api_key:
            credential = api_key[0].strip()
            if not looks_like_key(credential):
                raise AuthenticationError("invalid API key")
            return self.keys.authenticate(credential)
        scheme, _, credential = authorization[0].strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential or " " in credential:
            raise AuthenticationError("use 'Authorization: Bearer <API key or token>'")
        if len(credential) > MAX_CREDENTIAL_CHARS:
            raise AuthenticationError("invalid credentials")
        if looks_like_key(credential):
            return self.keys.authenticate(credential)
        if self.jwt is None:
            raise AuthenticationError("invalid API key (bearer tokens are not configured)")
        return self.jwt.verify(credential)
