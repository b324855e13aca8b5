"""Real API keys for tests: created through `KeyStore` on the runtime's own database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from citewise.auth.keys import KeyStore
from citewise.core.db import Database


def create_key(
    db: Database,
    tenant: str,
    role: Literal["admin", "user"] = "user",
    groups: Sequence[str] = (),
    user: str | None = None,
) -> str:
    """A new key of `tenant` (its full secret)."""
    return KeyStore(db).create(tenant, role=role, groups=groups, user=user, created_by="tests").key


def bearer(key: str) -> dict[str, str]:
    """The header that sends `key`."""
    return {"Authorization": f"Bearer {key}"}


def admin_headers(runtime: Any, tenant: str) -> dict[str, str]:
    """Headers of a new admin key of `tenant` on `runtime`'s database."""
    return bearer(create_key(runtime.db, tenant, "admin"))


def user_headers(
    runtime: Any, tenant: str, groups: Sequence[str] = (), user: str | None = None
) -> dict[str, str]:
    """Headers of a new user key of `tenant` on `runtime`'s database."""
    return bearer(create_key(runtime.db, tenant, "user", groups, user))
