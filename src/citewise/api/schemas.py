"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, model_validator

from citewise.answer.rewrite import Turn
from citewise.answer.tiers import TierStatus


class AskRequest(BaseModel):
    """A question for one tenant's documents."""

    question: str = Field(..., min_length=1, max_length=2000)
    tenant: str = Field(..., min_length=1, max_length=63)
    groups: list[str] = Field(default_factory=list, max_length=64)
    user: str = Field(
        "anonymous",
        min_length=1,
        max_length=255,
        description="Development identity: the asking user (owner of `conversation_id`).",
    )
    history: list[Turn] = Field(
        default_factory=list, max_length=20, description="Earlier turns, oldest first."
    )
    conversation_id: str | None = Field(
        None,
        max_length=64,
        description="Ask inside a stored conversation: its latest turns are the history, and "
        "the question and answer are appended to it. Not together with `history`.",
    )
    use_llm: bool = True

    @model_validator(mode="after")
    def _one_history(self) -> Self:
        if self.conversation_id is not None and self.history:
            raise ValueError("give either conversation_id or history, not both")
        return self


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class LLMStatus(BaseModel):
    """The answering tiers in order, with their circuit breakers."""

    tiers: list[TierStatus]


class ConversationCreate(BaseModel):
    """A new conversation."""

    title: str = Field("", max_length=200, description="Empty: named after the first question.")
