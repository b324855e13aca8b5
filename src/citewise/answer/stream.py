"""Events of a streamed answer, in the order a client receives them.

``meta`` (passages with their final citation numbers, the first tier) ->
``token``* (text as the tier produces it) -> [``fallback`` -> ``token``*]* ->
``final`` (the verified `Answer`, authoritative) or ``error``.

Tokens are raw model output, shown before verification: the ``final`` event's
answer replaces them (unsupported sentences removed, citation marks
normalised). After a ``fallback`` with ``discard`` the tokens already shown for
that tier must be thrown away.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from citewise.core.schemas import Answer, Citation


class MetaEvent(BaseModel):
    """Sent first: what was searched and the numbered passages the answer may cite."""

    event: Literal["meta"] = "meta"
    question: str
    search_query: str
    tier: str = Field(description="The tier that tries first ('none' if none can).")
    tiers: list[str] = Field(description="Every tier that may answer, in order.")
    passages: list[Citation]


class TokenEvent(BaseModel):
    """A piece of answer text from `tier` (unverified until ``final``)."""

    event: Literal["token"] = "token"
    tier: str
    text: str


class FallbackEvent(BaseModel):
    """`tier` gave no usable answer; `next` tries (None: no tier left)."""

    event: Literal["fallback"] = "fallback"
    tier: str
    reason: str
    next: str | None
    discard: bool = Field(description="Tokens of this tier were sent: discard them.")


class FinalEvent(BaseModel):
    """The verified answer; the same `Answer` that ``POST /v1/ask`` returns."""

    event: Literal["final"] = "final"
    answer: Answer


class ErrorEvent(BaseModel):
    """The answer could not be produced; the stream ends."""

    event: Literal["error"] = "error"
    code: str
    message: str


AnswerEvent = MetaEvent | TokenEvent | FallbackEvent | FinalEvent | ErrorEvent


def sse_fields(event: AnswerEvent) -> tuple[str, str]:
    """The SSE ``event`` name and ``data`` JSON of `event` (``final`` carries the bare Answer)."""
    if isinstance(event, FinalEvent):
        return "final", event.answer.model_dump_json()
    return event.event, event.model_dump_json(exclude={"event"})
