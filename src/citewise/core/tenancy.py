"""Tenants and principals: who is asking, and what they may see."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from citewise.core.errors import TenantError

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
EVERYONE = "*"
"""ACL group stored on documents ingested without groups: visible to the whole tenant."""


def validate_tenant_id(tenant_id: str) -> str:
    """Return `tenant_id` if it is a safe namespace name, else raise `TenantError`.

    Tenant ids become collection names and path segments, so they are restricted
    to lowercase letters, digits, ``-`` and ``_`` (at most 63 characters).
    """
    if not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise TenantError(
            f"invalid tenant id {tenant_id!r}: use 1-63 lowercase letters, digits, '-' or '_'"
        )
    return tenant_id


class Principal(BaseModel):
    """The identity a request acts as: tenant, user and ACL groups.

    It is built from credentials only and passed explicitly to every layer;
    every index and database query is scoped by it.
    """

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    user_id: str = "anonymous"
    groups: frozenset[str] = Field(default_factory=frozenset)
    role: Literal["admin", "user"] = "user"
    credential_id: str = ""
    """What authenticated the request: an API key's prefix or ``jwt:<issuer>:<subject>``;
    rate limits are counted per credential as well as per tenant."""

    @property
    def is_admin(self) -> bool:
        """Whether this principal may manage documents, keys and evaluations."""
        return self.role == "admin"

    @field_validator("tenant_id")
    @classmethod
    def _check_tenant(cls, value: str) -> str:
        return validate_tenant_id(value)

    @property
    def visible_groups(self) -> list[str]:
        """ACL groups whose documents this principal may read (always includes everyone's)."""
        return sorted(self.groups | {EVERYONE})
