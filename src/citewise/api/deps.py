"""FastAPI dependencies: the runtime's components and the request's principal.

The principal (tenant, user, groups, role) comes from the request's credentials
only (`citewise.auth.principal.Authenticator`), never from a body, query or
path; routes receive it explicitly and pass it to every layer below.

- `PrincipalDep`: any valid credential (user or admin role).
- `AdminDep`: an admin credential (403 for a user one).
- `TenantPrincipalDep`: an admin credential of the tenant named in
  ``/v1/tenants/{tenant}/...``; another tenant's path is 404 (it does not say
  whether that tenant exists).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from citewise.answer.conversations import ConversationalQA, ConversationStore
from citewise.answer.feedback import FeedbackStore
from citewise.answer.pipeline import QAPipeline
from citewise.auth.keys import KeyStore
from citewise.auth.principal import Authenticator
from citewise.core.errors import NotFoundError, PermissionDeniedError
from citewise.core.logging import bind_principal
from citewise.core.tenancy import Principal
from citewise.ingest.service import IngestService
from citewise.runtime import Runtime

_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key (`cw_...`, from `citewise keys create`) or an OIDC JWT.",
)
_API_KEY = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey", description="An API key."
)


def get_runtime(request: Request) -> Runtime:
    """The process's runtime, opened by the app's lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_pipeline(runtime: RuntimeDep) -> QAPipeline:
    """The QA pipeline."""
    return runtime.pipeline


def get_authenticator(request: Request) -> Authenticator:
    """The app's authenticator (API keys in the runtime's database, OIDC by settings)."""
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def get_principal(
    request: Request,
    authenticator: Annotated[Authenticator, Depends(get_authenticator)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
    _api_key: Annotated[str | None, Security(_API_KEY)] = None,
) -> Principal:
    """The principal of the request's one credential (401 when missing or invalid).

    The raw header lists are read (not FastAPI's parsed values), so a repeated
    header or a bearer plus an ``X-API-Key`` is refused rather than one of them
    silently chosen.
    """
    principal = authenticator.authenticate(
        request.headers.getlist("authorization"), request.headers.getlist("x-api-key")
    )
    request.state.principal = principal
    bind_principal(principal)  # tenant, user, credential id on the request's log lines
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    """An admin principal (403 for a user credential)."""
    if not principal.is_admin:
        raise PermissionDeniedError("this needs an admin credential")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def get_tenant_principal(tenant: str, principal: PrincipalDep) -> Principal:
    """The admin principal of a request on ``/v1/tenants/{tenant}/...``.

    The path must name the credential's own tenant, exactly: any other (another
    tenant, a case variant, an encoded form) is 404 like a tenant that does not
    exist. Then the role: a user credential of that tenant gets 403.
    """
    if tenant != principal.tenant_id:
        raise NotFoundError("not found")
    return require_admin(principal)


get_job_principal = require_admin
"""Jobs are admin resources; the service answers 404 for another tenant's job."""
get_user_principal = get_principal
"""Conversations: any credential, scoped to its own tenant and user."""

TenantPrincipalDep = Annotated[Principal, Depends(get_tenant_principal)]
JobPrincipalDep = Annotated[Principal, Depends(get_job_principal)]
UserPrincipalDep = Annotated[Principal, Depends(get_user_principal)]


def get_service(runtime: RuntimeDep) -> IngestService:
    """The ingestion service."""
    return runtime.service


def get_keys(request: Request) -> KeyStore:
    """The API key store."""
    return get_authenticator(request).keys


ServiceDep = Annotated[IngestService, Depends(get_service)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
PipelineDep = Annotated[QAPipeline, Depends(get_pipeline)]


def get_conversations(runtime: RuntimeDep) -> ConversationStore:
    """The conversation store."""
    return runtime.conversations


def get_conversational(runtime: RuntimeDep) -> ConversationalQA:
    """Questions asked inside stored conversations (the runtime's pipeline and store)."""
    return ConversationalQA(
        runtime.pipeline, runtime.conversations, runtime.settings.conversations.history_turns
    )


ConversationsDep = Annotated[ConversationStore, Depends(get_conversations)]
ConversationalDep = Annotated[ConversationalQA, Depends(get_conversational)]


def get_feedback(runtime: RuntimeDep) -> FeedbackStore:
    """Served answers and their ratings (on the runtime's database)."""
    return FeedbackStore(runtime.db)


FeedbackDep = Annotated[FeedbackStore, Depends(get_feedback)]
