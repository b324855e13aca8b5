"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from citewise.answer.rewrite import Turn
from citewise.answer.tiers import TierStatus


class AskRequest(BaseModel):
    """A question for the documents the caller may read.

    Tenant, user and groups come from the credentials, never from the body:
    any field not listed here (``tenant``, ``groups``, ``filter``, ...) is 422.
    """

    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., min_length=1, max_length=2000)
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

    model_config = ConfigDict(extra="forbid")

    title: str = Field("", max_length=200, description="Empty: named after the first question.")


class KeyCreate(BaseModel):
    """A new API key of the path's tenant."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200, description="What the key is for.")
    role: Literal["admin", "user"] = "user"
    groups: list[str] = Field(
        default_factory=list, max_length=64, description="ACL groups whose documents it reads."
    )
    user: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="User id it acts as (owner of conversations); default `key:<prefix>`.",
    )


class FeedbackCreate(BaseModel):
    """A rating of an answer served to the caller (rating it again replaces the rating)."""

    model_config = ConfigDict(extra="forbid")

    answer_id: str = Field(
        ..., min_length=1, max_length=32, description="The `answer_id` of the answer rated."
    )
    rating: Literal["up", "down"]
    comment: str = Field("", max_length=2000, description="What was good or wrong.")
    correction: str = Field(
        "",
        max_length=2000,
        description="What the answer should have been (a thumbs-down with a correction "
        "becomes an evaluation item).",
    )
