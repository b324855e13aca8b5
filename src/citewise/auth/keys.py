"""API keys: created once (the secret shown once), stored as a hash, found by prefix, revoked.

A key reads ``cw_<prefix>_<secret>``: ``prefix`` is 8 lowercase letters and
digits, public (it names the key in listings, logs and rate limits); ``secret``
is ``secrets.token_urlsafe(32)`` (32 random bytes). Only the sha256 of the whole
key is stored. Because the secret is 256 bits of randomness, a fast hash is the
standard choice (slow, salted password hashes exist for guessable secrets; no
search can walk 2^256 keys), and it keeps the per-request check in microseconds.
Comparisons are constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from citewise.core.db import ApiKeyRecord, AuditRecord, Database, utcnow
from citewise.core.errors import AuthenticationError, NotFoundError, TenantError
from citewise.core.tenancy import EVERYONE, Principal, validate_tenant_id

Role = Literal["admin", "user"]
KEY_SCHEME = "cw"
PREFIX_CHARS = 8
PREFIX_ALPHABET = string.ascii_lowercase + string.digits
SECRET_BYTES = 32
KEY_PATTERN = re.compile(r"^cw_([a-z0-9]{8})_([A-Za-z0-9_-]{43,128})$")
MAX_GROUPS = 64
MAX_GROUP_CHARS = 128
TOUCH_INTERVAL = timedelta(seconds=60)
"""``last_used_at`` is written at most this often per key (no write per request)."""
_DUMMY_HASH = hashlib.sha256(b"citewise-no-such-key").hexdigest()


def hash_key(key: str) -> str:
    """The stored form of a key: sha256 of the whole key, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    match = KEY_PATTERN.fullmatch(key)
    return match.group(1) if match else None


def looks_like_key(value: str) -> bool:
    """Whether a bearer credential has the shape of a Citewise API key (else: a JWT)."""
    return value.startswith(f"{KEY_SCHEME}_")


def check_key_groups(groups: Sequence[str]) -> list[str]:
    """Validated ACL groups of a key (no blanks, commas, ``*`` or control characters)."""
    clean = sorted({g.strip() for g in groups if g.strip()})
    if len(clean) > MAX_GROUPS:
        raise TenantError(f"at most {MAX_GROUPS} groups per key")
    for group in clean:
        if (
            len(group) > MAX_GROUP_CHARS
            or "," in group
            or group == EVERYONE
            or not group.isprintable()
        ):
            raise TenantError(f"invalid group {group[:40]!r}")
    return clean


class ApiKeyView(BaseModel):
    """An API key as listed: never its secret nor its hash."""

    prefix: str
    tenant: str
    name: str
    role: Role
    groups: list[str]
    user: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKeyView:
        """The view of a stored key."""
        return cls(
            prefix=record.prefix,
            tenant=record.tenant_id,
            name=record.name,
            role="admin" if record.role == "admin" else "user",
            groups=list(record.groups),
            user=record.user_id,
            created_at=record.created_at,
            created_by=record.created_by,
            last_used_at=record.last_used_at,
            revoked_at=record.revoked_at,
        )


class CreatedKey(ApiKeyView):
    """A new key with its secret, which is shown this one time only."""

    key: str


class KeyStore:
    """API keys of every tenant, in the metadata database.

    Args:
        db: The metadata database (migrated).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        tenant: str,
        *,
        role: Role,
        groups: Sequence[str] = (),
        name: str = "",
        user: str | None = None,
        created_by: str,
    ) -> CreatedKey:
        """Create a key; the returned `CreatedKey.key` is the only copy of the secret.

        The audit log of the tenant records it (``keys.create``, by ``created_by``).
        """
        validate_tenant_id(tenant)
        if role not in ("admin", "user"):
            raise TenantError(f"invalid role {role!r}: use admin or user")
        clean_groups = check_key_groups(groups)
        if user is not None and not (0 < len(user) <= 255 and user.isprintable()):
            raise TenantError("user must be 1-255 printable characters")
        if len(name) > 200 or not name.isprintable():
            raise TenantError("name must be at most 200 printable characters")
        for _ in range(5):  # a prefix collision (36^8 space) is retried
            prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_CHARS))
            key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
            record = ApiKeyRecord(
                prefix=prefix,
                tenant_id=tenant,
                key_sha256=hash_key(key),
                name=name,
                role=role,
                groups=clean_groups,
                user_id=user or f"key:{prefix}",
                created_at=utcnow(),
                created_by=created_by[:255],
            )
            try:
                with self.db.session() as session:
                    session.add(record)
                    session.flush()  # a prefix collision fails here, before the audit entry
                    _audit(session, tenant, created_by, "keys.create", record)
            except IntegrityError:
                continue
            return CreatedKey(**ApiKeyView.of(record).model_dump(), key=key)
        raise TenantError("could not allocate a key prefix")  # pragma: no cover

    def list_keys(self, tenant: str) -> list[ApiKeyView]:
        """A tenant's keys (revoked ones included, marked), newest first."""
        validate_tenant_id(tenant)
        with self.db.session() as session:
            rows = session.scalars(
                select(ApiKeyRecord)
                .where(ApiKeyRecord.tenant_id == tenant)
                .order_by(ApiKeyRecord.created_at.desc(), ApiKeyRecord.prefix)
            ).all()
            return [ApiKeyView.of(r) for r in rows]

    def revoke(self, tenant: str, prefix: str, *, revoked_by: str) -> ApiKeyView:
        """Revoke a tenant's key at once (idempotent); `NotFoundError` for another tenant's."""
        validate_tenant_id(tenant)
        with self.db.session() as session:
            well_formed = re.fullmatch(r"[a-z0-9]{8}", prefix) is not None
            record = session.get(ApiKeyRecord, prefix) if well_formed else None
            if record is None or record.tenant_id != tenant:
                raise NotFoundError(f"no key {prefix[:16]!r} for tenant {tenant!r}")
            if record.revoked_at is None:
                record.revoked_at = utcnow()
                _audit(session, tenant, revoked_by, "keys.revoke", record)
            return ApiKeyView.of(record)

    def authenticate(self, key: str) -> Principal:
        """The principal of a valid, unrevoked key; `AuthenticationError` otherwise.

        The error says only "invalid API key", whatever the cause, so a caller
        learns nothing about which prefixes exist.
        """
        prefix = key_prefix(key)
        digest = hash_key(key)
        with self.db.session() as session:
            record = session.get(ApiKeyRecord, prefix) if prefix else None
            stored = record.key_sha256 if record is not None else _DUMMY_HASH
            matches = hmac.compare_digest(digest, stored)
            if record is None or not matches or record.revoked_at is not None:
                raise AuthenticationError("invalid API key")
            now = utcnow()
            if record.last_used_at is None or now - record.last_used_at > TOUCH_INTERVAL:
                record.last_used_at = now
            return Principal(
                tenant_id=record.tenant_id,
                user_id=record.user_id,
                groups=frozenset(record.groups),
                role="admin" if record.role == "admin" else "user",
                credential_id=record.prefix,
            )


def _audit(session: Session, tenant: str, actor: str, action: str, record: ApiKeyRecord) -> None:
    session.add(
        AuditRecord(
            tenant_id=tenant,
            actor=actor[:255],
            action=action,
            target=record.prefix,
            details={
                "name": record.name,
                "role": record.role,
                "groups": list(record.groups),
                "user": record.user_id,
            },
            at=utcnow(),
        )
    )
