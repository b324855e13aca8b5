"""API keys of a tenant (admin): create (the secret shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from citewise.api.deps import KeysDep, TenantPrincipalDep, get_tenant_principal
from citewise.api.errors import error_responses
from citewise.api.ratelimit import request_limit
from citewise.api.schemas import KeyCreate
from citewise.auth.keys import ApiKeyView, CreatedKey

router = APIRouter(
    prefix="/v1/tenants/{tenant}/keys",
    tags=["keys"],
    dependencies=[Depends(request_limit(get_tenant_principal))],
    responses=error_responses(400, 401, 403, 404, 413, 422, 429),
)


def _actor(principal: TenantPrincipalDep) -> str:
    return f"{principal.user_id} ({principal.credential_id})"


@router.post("", status_code=201, response_model=CreatedKey)
def create_key(
    body: KeyCreate, principal: TenantPrincipalDep, keys: KeysDep, response: Response
) -> CreatedKey:
    """Create a key of this tenant; `key` is in this response only (store it now).

    Only its sha256 is kept. The key acts as `user` (default ``key:<prefix>``)
    with `role` and `groups`; the audit log records who created it.
    """
    created = keys.create(
        principal.tenant_id,
        role=body.role,
        groups=body.groups,
        name=body.name,
        user=body.user,
        created_by=_actor(principal),
    )
    response.headers["Location"] = f"/v1/tenants/{principal.tenant_id}/keys/{created.prefix}"
    response.headers["Cache-Control"] = "no-store"
    return created


@router.get("", response_model=list[ApiKeyView])
def list_keys(principal: TenantPrincipalDep, keys: KeysDep) -> list[ApiKeyView]:
    """The tenant's keys, newest first: prefix, role, groups, use; never secrets or hashes."""
    return keys.list_keys(principal.tenant_id)


@router.delete("/{prefix}", response_model=ApiKeyView)
def revoke_key(prefix: str, principal: TenantPrincipalDep, keys: KeysDep) -> ApiKeyView:
    """Revoke a key at once (idempotent); its next request is refused with 401."""
    return keys.revoke(principal.tenant_id, prefix, revoked_by=_actor(principal))
