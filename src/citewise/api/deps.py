"""FastAPI dependencies: the runtime's components and the request's principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from citewise.answer.pipeline import QAPipeline
from citewise.api.schemas import AskRequest
from citewise.core.tenancy import Principal
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

    Development identity: the tenant (and groups) named in the request. The
    gateway issue replaces this with API keys and OIDC tokens; every layer below
    already takes the principal explicitly.
    """
    return Principal(tenant_id=body.tenant, user_id="anonymous", groups=frozenset(body.groups))


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PipelineDep = Annotated[QAPipeline, Depends(get_pipeline)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
