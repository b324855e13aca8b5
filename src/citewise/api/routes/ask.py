"""POST /v1/ask (a cited answer, or a clear decline), its streamed form, and tier status."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
import structlog
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from sse_starlette import EventSourceResponse, ServerSentEvent

from citewise.answer.stream import AnswerEvent, ErrorEvent, sse_fields
from citewise.api.deps import (
    ConversationalDep,
    FeedbackDep,
    PipelineDep,
    PrincipalDep,
    get_principal,
)
from citewise.api.errors import error_responses
from citewise.api.ratelimit import TokenMeter, request_limit, token_meter
from citewise.api.schemas import AskRequest, LLMStatus
from citewise.core.errors import CitewiseError
from citewise.core.schemas import Answer

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["ask"])

RATE_LIMITED = [Depends(request_limit(get_principal))]
TokensDep = Annotated[TokenMeter, Depends(token_meter(get_principal))]

_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `meta` (numbered passages, first tier), `token`* "
        "(unverified text), `fallback` (a tier failed; discard its tokens if `discard`), "
        "then `final` (the verified Answer, as POST /v1/ask returns it) or `error`.",
        "content": {"text/event-stream": {}},
    }
}


ASK_ERRORS = error_responses(400, 401, 404, 413, 422, 429, 503)


@router.post("/ask", response_model=Answer, dependencies=RATE_LIMITED, responses=ASK_ERRORS)
def ask(
    body: AskRequest,
    pipeline: PipelineDep,
    principal: PrincipalDep,
    conversations: ConversationalDep,
    tokens: TokensDep,
    feedback: FeedbackDep,
) -> Answer:
    """Answer a question from the documents the caller may read, with citations.

    With `conversation_id` the conversation's latest turns are the history and
    the question and answer are appended to it (404 if it is not the caller's).
    """
    if body.conversation_id is not None:
        answer = conversations.ask(
            body.question, principal, body.conversation_id, use_llm=body.use_llm
        )
    else:
        answer = pipeline.ask(body.question, principal, history=body.history, use_llm=body.use_llm)
    tokens.charge(answer.usage)
    feedback.record_served(principal, answer, conversation_id=body.conversation_id)
    return answer


@router.post(
    "/ask/stream",
    response_class=EventSourceResponse,
    responses={**_STREAM_DOC, **ASK_ERRORS},
    dependencies=RATE_LIMITED,
)
def ask_stream(
    body: AskRequest,
    pipeline: PipelineDep,
    principal: PrincipalDep,
    conversations: ConversationalDep,
    tokens: TokensDep,
    feedback: FeedbackDep,
) -> EventSourceResponse:
    """Stream the answer as it is generated; the `final` event carries the verified answer.

    Retrieval runs before the response starts, so a bad request still gets its
    HTTP error; a failure after that ends the stream with an `error` event.
    With `conversation_id` the answer of the `final` event is appended to the
    conversation as that event is produced.
    """
    if body.conversation_id is not None:
        events = conversations.stream(
            body.question, principal, body.conversation_id, use_llm=body.use_llm
        )
    else:
        events = pipeline.stream(
            body.question, principal, history=body.history, use_llm=body.use_llm
        )
    served = feedback.recording(events, principal, conversation_id=body.conversation_id)
    return EventSourceResponse(_sse(tokens.charged(served)))


@router.get("/status/llm", response_model=LLMStatus, responses=error_responses(401, 429))
def llm_status(pipeline: PipelineDep, _principal: PrincipalDep) -> LLMStatus:
    """Each configured tier: endpoint, availability and circuit breaker state (any credential)."""
    return LLMStatus(tiers=pipeline.tier_status())


async def _sse(events: Iterator[AnswerEvent]) -> AsyncIterator[ServerSentEvent]:
    """The pipeline's events as SSE; generation runs in worker threads, one event at a time."""
    try:
        while True:
            event = await run_in_threadpool(next, events, None)
            if event is None:
                return
            name, data = sse_fields(event)
            yield ServerSentEvent(data=data, event=name)
    except CitewiseError as exc:
        yield _error(exc.code, str(exc))
    except Exception:
        log.exception("answer_stream_failed")
        yield _error("internal_error", "the answer could not be completed")
    finally:
        # The client may be gone: close the generator (and its HTTP stream to the LLM) anyway.
        close = getattr(events, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(close)


def _error(code: str, message: str) -> ServerSentEvent:
    name, data = sse_fields(ErrorEvent(code=code, message=message))
    return ServerSentEvent(data=data, event=name)
