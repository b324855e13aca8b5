"""API keys: the secret shown once, only a hash stored, prefix lookup, revocation, audit."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from citewise.auth.keys import KEY_PATTERN, KeyStore, hash_key, key_prefix
from citewise.core.db import ApiKeyRecord, AuditRecord, Database
from citewise.core.errors import AuthenticationError, NotFoundError, TenantError


@pytest.fixture
def keys(database: Database) -> KeyStore:
    return KeyStore(database)


def test_a_key_is_shown_once_and_stored_only_as_its_hash(keys: KeyStore) -> None:
    created = keys.create("acme", role="user", groups=["hr", " finance ", "hr"], created_by="t")
    assert KEY_PATTERN.fullmatch(created.key) and created.key.startswith(f"cw_{created.prefix}_")
    secret = created.key.split("_", 2)[2]
    assert len(secret) >= 43  # 32 random bytes, url-safe base64
    assert created.groups == ["finance", "hr"] and created.user == f"key:{created.prefix}"
    with keys.db.session() as session:
        record = session.get(ApiKeyRecord, created.prefix)
        assert record is not None
        stored = [str(v) for v in vars(record).values()]
    assert record.key_sha256 == hashlib.sha256(created.key.encode()).hexdigest()
    assert not any(secret in value for value in stored)  # the secret itself is nowhere
    listed = keys.list_keys("acme")
    assert [k.prefix for k in listed] == [created.prefix]
    assert "key" not in listed[0].model_dump() and "key_sha256" not in listed[0].model_dump()


def test_authenticate_builds_the_principal_from_the_key(keys: KeyStore) -> None:
    admin = keys.create("acme", role="admin", name="ops", user="alice", created_by="t")
    principal = keys.authenticate(admin.key)
    assert principal.tenant_id == "acme" and principal.user_id == "alice"
    assert principal.is_admin and principal.credential_id == admin.prefix
    assert principal.groups == frozenset()
    user = keys.create("acme", role="user", groups=["hr"], created_by="t")
    assert keys.authenticate(user.key).groups == frozenset({"hr"})
    assert keys.list_keys("acme")[-1].last_used_at is not None  # used once, recorded


@pytest.mark.parametrize(
    "mutate",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # one secret character off
        lambda k: k.upper(),
        lambda k: k + "x",
        lambda k: k[:20],
        lambda k: "cw_zzzzzzzz_" + k.split("_", 2)[2],  # right secret, unknown prefix
        lambda k: "",
        lambda k: k.replace("cw_", "cw-"),
    ],
)
def test_a_wrong_key_is_refused_without_saying_why(keys: KeyStore, mutate) -> None:  # type: ignore[no-untyped-def]
    created = keys.create("acme", role="admin", created_by="t")
    with pytest.raises(AuthenticationError, match="^invalid API key$"):
        keys.authenticate(mutate(created.key))


def test_a_key_of_one_prefix_cannot_borrow_another_keys_prefix(keys: KeyStore) -> None:
    first = keys.create("acme", role="admin", created_by="t")
    second = keys.create("globex", role="user", created_by="t")
    forged = f"cw_{first.prefix}_{second.key.split('_', 2)[2]}"
    with pytest.raises(AuthenticationError):
        keys.authenticate(forged)


def test_revocation_is_immediate_scoped_and_audited(keys: KeyStore) -> None:
    acme = keys.create("acme", role="user", created_by="admin-1")
    globex = keys.create("globex", role="user", created_by="admin-2")
    with pytest.raises(NotFoundError):
        keys.revoke("acme", globex.prefix, revoked_by="admin-1")  # another tenant's key
    keys.authenticate(globex.key)
    revoked = keys.revoke("acme", acme.prefix, revoked_by="admin-1")
    assert revoked.revoked_at is not None
    assert keys.revoke("acme", acme.prefix, revoked_by="admin-1").revoked_at == revoked.revoked_at
    with pytest.raises(AuthenticationError):
        keys.authenticate(acme.key)
    with keys.db.session() as session:
        audit = session.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
        entries = [(a.tenant_id, a.actor, a.action, a.target) for a in audit]
    assert entries == [
        ("acme", "admin-1", "keys.create", acme.prefix),
        ("globex", "admin-2", "keys.create", globex.prefix),
        ("acme", "admin-1", "keys.revoke", acme.prefix),  # once, however often it is revoked
    ]


@pytest.mark.parametrize(
    ("tenant", "groups"),
    [("Acme", []), ("../acme", []), ("acme", ["*"]), ("acme", ["a,b"]), ("acme", ["x\ty"])],
)
def test_bad_tenants_and_groups_are_refused(keys: KeyStore, tenant: str, groups: list[str]) -> None:
    with pytest.raises(TenantError):
        keys.create(tenant, role="user", groups=groups, created_by="t")


def test_hash_and_prefix_helpers() -> None:
    key = "cw_abcdefgh_" + "A" * 43
    assert key_prefix(key) == "abcdefgh" and key_prefix("cw_ABCDEFGH_" + "A" * 43) is None
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
