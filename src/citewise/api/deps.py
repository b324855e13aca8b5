"""FastAPI dependencies: the runtime's components and the request's principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from citewise.answer.conversations import ConversationalQA, ConversationStore
from citewise.answer.pipeline import QAPipeline
from citewise.api.schemas import AskRequest
from citewise.core.tenancy import Principal
from citewise.ingest.service import IngestService
from citewise.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """The process's runtime, opened by the app's lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_pipeline(runtime: Annotated[Runtime, Depends(get_runtime)]) -> QAPipeline:
    """The QA pipeline."""
    return runtime.pipeline


def get_principal(body: AskRequest) -> Principal:
    """The principal of an ask request.

    Development identity: the tenant, user and groups named in the request. The
    gateway issue replaces this with API keys and OIDC tokens; every layer below
    already takes the principal explicitly.
    """
    return Principal(tenant_id=body.tenant, user_id=body.user, groups=frozenset(body.groups))


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PipelineDep = Annotated[QAPipeline, Depends(get_pipeline)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_service(runtime: Annotated[Runtime, Depends(get_runtime)]) -> IngestService:
    """The ingestion service."""
    return runtime.service


def get_tenant_principal(tenant: str) -> Principal:
    """The principal of an admin request on ``/v1/tenants/{tenant}/...``.

    Development identity: the tenant in the path. The gateway issue replaces this
    with API keys and OIDC tokens (and checks the admin role); the service below
    already scopes every query by the principal's tenant.
    """
    return Principal(tenant_id=tenant, user_id="anonymous")


def get_job_principal(
    job_id: str, service: Annotated[IngestService, Depends(get_service)]
) -> Principal:
    """The principal of a request on ``/v1/jobs/{job_id}``.

    Development identity: the job's own tenant (404 for an unknown job). With real
    credentials the principal's tenant must own the job, which the service checks.
    """
    return Principal(tenant_id=service.job_tenant(job_id), user_id="anonymous")


ServiceDep = Annotated[IngestService, Depends(get_service)]
TenantPrincipalDep = Annotated[Principal, Depends(get_tenant_principal)]
JobPrincipalDep = Annotated[Principal, Depends(get_job_principal)]


def get_conversations(runtime: Annotated[Runtime, Depends(get_runtime)]) -> ConversationStore:
    """The conversation store."""
    return runtime.conversations


def get_conversational(runtime: Annotated[Runtime, Depends(get_runtime)]) -> ConversationalQA:
    """Questions asked inside stored conversations (the runtime's pipeline and store)."""
    return ConversationalQA(
        runtime.pipeline, runtime.conversations, runtime.settings.conversations.history_turns
    )


def get_user_principal(
    tenant: Annotated[str, Query(min_length=1, max_length=63, description="Your tenant.")],
    user: Annotated[
        str, Query(min_length=1, max_length=255, description="Your user id.")
    ] = "anonymous",
) -> Principal:
    """The principal of a request on ``/v1/conversations``: a user's own conversations.

    Development identity: tenant and user named in the query. The gateway issue
    replaces this with API keys and OIDC tokens; the store below already scopes
    every query by the principal's tenant and user.
    """
    return Principal(tenant_id=tenant, user_id=user)


ConversationsDep = Annotated[ConversationStore, Depends(get_conversations)]
ConversationalDep = Annotated[ConversationalQA, Depends(get_conversational)]
UserPrincipalDep = Annotated[Principal, Depends(get_user_principal)]
