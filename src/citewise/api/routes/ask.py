"""POST /v1/ask (a cited answer, or a clear decline), its streamed form, and tier status."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import structlog
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sse_starlette import EventSourceResponse, ServerSentEvent

from citewise.answer.stream import AnswerEvent, ErrorEvent, sse_fields
from citewise.api.deps import ConversationalDep, PipelineDep, PrincipalDep
from citewise.api.schemas import AskRequest, LLMStatus
from citewise.core.errors import CitewiseError
from citewise.core.schemas import Answer

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["ask"])

_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `meta` (numbered passages, first tier), `token`* "
        "(unverified text), `fallback` (a tier failed; discard its tokens if `discard`), "
        "then `final` (the verified Answer, as POST /v1/ask returns it) or `error`.",
        "content": {"text/event-stream": {}},
    }
}


@router.post("/ask", response_model=Answer)
def ask(
    body: AskRequest,
    pipeline: PipelineDep,
    principal: PrincipalDep,
    conversations: ConversationalDep,
) -> Answer:
    """Answer a question from the documents the caller may read, with citations.

    With `conversation_id` the conversation's latest turns are the history and
    the question and answer are appended to it (404 if it is not the caller's).
    """
    if body.conversation_id is not None:
        return conversations.ask(
            body.question, principal, body.conversation_id, use_llm=body.use_llm
        )
    return pipeline.ask(body.question, principal, history=body.history, use_llm=body.use_llm)


@router.post("/ask/stream", response_class=EventSourceResponse, responses=_STREAM_DOC)
def ask_stream(
    body: AskRequest,
    pipeline: PipelineDep,
    principal: PrincipalDep,
    conversations: ConversationalDep,
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
    return EventSourceResponse(_sse(events))


@router.get("/status/llm", response_model=LLMStatus)
def llm_status(pipeline: PipelineDep) -> LLMStatus:
    """Each configured tier: endpoint, availability and circuit breaker state."""
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
