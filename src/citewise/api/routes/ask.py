"""POST /v1/ask: a cited answer, or a clear decline."""

from __future__ import annotations

from fastapi import APIRouter

from citewise.api.deps import PipelineDep, PrincipalDep
from citewise.api.schemas import AskRequest
from citewise.core.schemas import Answer

router = APIRouter(prefix="/v1", tags=["ask"])


@router.post("/ask", response_model=Answer)
def ask(body: AskRequest, pipeline: PipelineDep, principal: PrincipalDep) -> Answer:
    """Answer a question from the documents the caller may read, with citations."""
    return pipeline.ask(body.question, principal, history=body.history, use_llm=body.use_llm)
