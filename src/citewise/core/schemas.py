"""Typed records shared by the stages: chunks, search hits, citations, answers."""

from __future__ import annotations

import uuid
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field

POINT_NAMESPACE = uuid.UUID("6f1c9a52-3b7e-4c1e-9a57-2f0d5c1e8b11")


def point_id(tenant_id: str, doc_id: str, version: int, chunk_index: int) -> str:
    """Deterministic Qdrant point id: uuid5 of tenant, document, version and chunk index."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{tenant_id}/{doc_id}/{version}/{chunk_index}"))


class Chunk(BaseModel):
    """One indexed passage and the payload stored with it."""

    tenant_id: str
    doc_id: str
    version: int
    chunk_index: int
    text: str
    title: str = ""
    section: str = ""
    page: int | None = None
    acl_groups: list[str] = Field(default_factory=list)
    source: str = ""
    kind: Literal["text", "table"] = "text"

    @property
    def point_id(self) -> str:
        """The deterministic point id of the chunk."""
        return point_id(self.tenant_id, self.doc_id, self.version, self.chunk_index)


class SparseVector(BaseModel):
    """A sparse vector: parallel lists of term indices and weights."""

    indices: list[int]
    values: list[float]


class ScoredChunk(BaseModel):
    """A chunk returned by a search, with the score of the stage that ranked it."""

    chunk: Chunk
    score: float


class Citation(BaseModel):
    """A resolved ``[n]`` reference: the passage and where it comes from."""

    number: int
    doc_id: str
    version: int
    source: str
    title: str
    section: str
    page: int | None
    chunk_index: int
    passage: str
    quote: str = Field(default="", description="The supporting text inside the passage.")
    start: int = Field(
        default=-1, description="Character offset of `quote` in `passage`, -1 if unknown."
    )
    end: int = -1


class AnswerSentence(BaseModel):
    """One sentence of an answer with the citations it carries and its support score."""

    text: str
    citations: list[int]
    support: float = Field(description="How well its cited passages support it, 0..1.")
    supported: bool = Field(
        default=True, description="Whether it passed verification (false: shown marked)."
    )
    missing: list[str] = Field(
        default_factory=list,
        description="Numbers and names it states that its passages lack.",
    )


class Verification(BaseModel):
    """How well an answer is supported by the passages it cites."""

    verifier: str = Field(
        description="fast, llm or fast+llm; '(judge unavailable)' if it fell back."
    )
    policy: Literal["remove", "mark"]
    threshold: float
    score: float = Field(description="Mean support of every sentence the tier wrote, 0..1.")
    sentences: int = Field(description="Sentences the tier wrote.")
    supported: int
    removed: int = 0
    marked: int = 0


class TierAttempt(BaseModel):
    """One tier's turn at answering: what came of it and how long it took."""

    tier: str
    outcome: Literal["answered", "declined", "failed", "skipped"]
    reason: str = Field(
        default="",
        description="Why it did not answer: breaker_open, unavailable, timeout, connection, "
        "http_<status>, malformed, empty, invalid_citations, unsupported, error.",
    )
    ms: float = 0.0


def new_answer_id() -> str:
    """A fresh answer id (uuid4 hex): every answer served gets its own."""
    return uuid.uuid4().hex


class Answer(BaseModel):
    """What Citewise returns for a question."""

    answer_id: str = Field(
        default_factory=new_answer_id,
        description="This serve of the answer (a cache replay gets its own); "
        "POST /v1/feedback names it.",
    )
    question: str
    search_query: str = Field(
        default="", description="The standalone query searched (the question, or its rewrite)."
    )
    answer: str
    declined: bool
    decline_reason: str = Field(
        default="",
        description="gate (no relevant passage), model (the model found no answer), "
        "unsupported (verification rejected the answer), injection (the question tried to "
        "change Citewise's instructions) or none (no tier answered).",
    )
    sentences: list[AnswerSentence] = Field(default_factory=list)
    verification: Verification | None = Field(
        default=None, description="Present on every answer a tier produced, also when declined."
    )
    citations: list[Citation] = Field(default_factory=list)
    tier: str
    degraded: bool = False
    passages: list[Citation] = Field(
        default_factory=list, description="The passages shown to the model (closest first)."
    )
    timings_ms: dict[str, float] = Field(default_factory=dict)
    usage: dict[str, int] = Field(
        default_factory=dict, description="LLM tokens used (prompt_tokens, completion_tokens)."
    )
    attempts: list[TierAttempt] = Field(
        default_factory=list,
        description="Each tier tried, in order, and what came of it.",
    )
    flags: list[str] = Field(
        default_factory=list,
        description="Suspected prompt injections: 'question:<kind>' or 'passage <n>:<kind>'.",
    )
    cached: Literal["exact", "semantic"] | None = Field(
        default=None,
        description="Served from the answer cache: 'exact' (the same question) or 'semantic' "
        "(a sufficiently similar one, same tenant, groups and documents); null when computed.",
    )
    cached_question: str = Field(
        default="", description="The question whose answer a semantic cache hit reused."
    )


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a listing (``limit``/``offset``; ``next_offset`` is None on the last page)."""

    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None

    @classmethod
    def of(cls, items: list[T], *, total: int, limit: int, offset: int) -> Page[T]:
        """The page of `items` found at `offset` among `total`."""
        following = offset + len(items)
        return cls(
            items=items,
            total=total,
            limit=limit,
            offset=offset,
            next_offset=following if following < total else None,
        )
