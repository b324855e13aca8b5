"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from citewise.answer.rewrite import Turn
from citewise.answer.tiers import TierStatus


class AskRequest(BaseModel):
    """A question for one tenant's documents."""

    question: str = Field(..., min_length=1, max_length=2000)
    tenant: str = Field(..., min_length=1, max_length=63)
    groups: list[str] = Field(default_factory=list, max_length=64)
    history: list[Turn] = Field(
        default_factory=list, max_length=20, description="Earlier turns, oldest first."
    )
    use_llm: bool = True


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class LLMStatus(BaseModel):
    """The answering tiers in order, with their circuit breakers."""

    tiers: list[TierStatus]
