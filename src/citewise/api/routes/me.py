"""Who the caller is: the identity its credential stands for."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from citewise.api.deps import PrincipalDep, get_principal
from citewise.api.errors import error_responses
from citewise.api.ratelimit import request_limit

router = APIRouter(
    tags=["identity"],
    dependencies=[Depends(request_limit(get_principal))],
    responses=error_responses(401, 429),
)


class Me(BaseModel):
    """The principal of the request's credential."""

    tenant: str
    role: Literal["admin", "user"] = Field(description="admin: may manage the tenant.")
    user: str = Field(description="User id (owner of conversations and ratings).")
    groups: list[str] = Field(description="ACL groups whose documents the caller reads.")
    credential: str = Field(
        description="What authenticated the request: an API key's prefix or "
        "``jwt:<issuer>:<subject>``."
    )


@router.get("/v1/me", response_model=Me)
def me(principal: PrincipalDep) -> Me:
    """The caller's tenant, role, user id, groups and credential (checks a sign-in)."""
    return Me(
        tenant=principal.tenant_id,
        role=principal.role,
        user=principal.user_id,
        groups=sorted(principal.groups),
        credential=principal.credential_id,
    )
