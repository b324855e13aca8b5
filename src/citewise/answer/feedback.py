"""Feedback on answers: the answers served, users' ratings of them, and their export.

`FeedbackStore` owns the ``served_answers`` and ``feedback`` tables. The API
records every answer it serves (one insert: the question, the answer as served
without its passages' text, and the ids of the passages retrieved), so a rating
can later be read with all of that. A user rates only answers served to them:
another user's or tenant's answer id is `NotFoundError`, like an unknown one.
One rating per user and answer; rating again replaces it.

`FeedbackStore.export` yields the lines of ``citewise feedback export``: the
shape `citewise.eval.datasets.FeedbackRecord` reads (plus review fields it ignores).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import SQLAlchemyError

from citewise.answer.stream import AnswerEvent, FinalEvent
from citewise.core.db import AnswerFeedbackRecord, Database, ServedAnswerRecord, utcnow
from citewise.core.errors import NotFoundError
from citewise.core.schemas import Answer, Page, point_id
from citewise.core.tenancy import Principal

log = structlog.get_logger(__name__)

Rating = Literal["up", "down"]
CITATION_FIELDS = ("number", "doc_id", "version", "page", "chunk_index", "source", "title", "quote")
"""What an export keeps of each citation (not the passage text: `retrieved` names it)."""


class FeedbackView(BaseModel):
    """A rating with the answer it rates (what an admin reviews)."""

    id: str
    answer_id: str
    tenant_id: str
    user_id: str
    rating: Rating
    comment: str = ""
    correction: str = Field(default="", description="What the user says the answer should be.")
    question: str
    answer: str
    declined: bool
    tier: str
    conversation_id: str | None = None
    citations: list[dict[str, Any]] = Field(
        default_factory=list, description="The answer's citations (doc_id, page, quote, ...)."
    )
    retrieved: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Passages shown to the model: doc_id, version, chunk_index, point_id.",
    )
    answered_at: datetime
    created_at: datetime
    updated_at: datetime


FeedbackPage = Page[FeedbackView]
"""A page of feedback, most recently rated first."""


def retrieved_ids(tenant_id: str, answer: Answer) -> list[dict[str, Any]]:
    """The passages shown to the model as document, version, chunk and Qdrant point ids."""
    return [
        {
            "doc_id": p.doc_id,
            "version": p.version,
            "chunk_index": p.chunk_index,
            "point_id": point_id(tenant_id, p.doc_id, p.version, p.chunk_index),
        }
        for p in answer.passages
    ]


class FeedbackStore:
    """Served answers and their ratings in the metadata database, scoped by principal.

    Args:
        db: The migrated metadata database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def record_served(
        self, principal: Principal, answer: Answer, *, conversation_id: str | None = None
    ) -> bool:
        """Keep an answer served to `principal` (one insert); False if it could not be stored.

        A failure is logged, not raised: the answer is served anyway (a rating of
        it will then be 404).
        """
        record = ServedAnswerRecord(
            id=answer.answer_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            conversation_id=conversation_id,
            question=answer.question,
            answer=answer.model_dump(mode="json", exclude={"passages"}),
            retrieved=retrieved_ids(principal.tenant_id, answer),
            created_at=utcnow(),
        )
        try:
            with self.db.session() as session:
                session.add(record)
        except SQLAlchemyError:
            log.exception("served_answer_not_recorded", answer_id=answer.answer_id)
            return False
        return True

    def recording(
        self,
        events: Iterator[AnswerEvent],
        principal: Principal,
        *,
        conversation_id: str | None = None,
    ) -> Iterator[AnswerEvent]:
        """Pass a stream's events through, keeping its final answer before that event goes out."""
        try:
            for event in events:
                if isinstance(event, FinalEvent):
                    self.record_served(principal, event.answer, conversation_id=conversation_id)
                yield event
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def rate(
        self,
        principal: Principal,
        answer_id: str,
        rating: Rating,
        *,
        comment: str = "",
        correction: str = "",
    ) -> FeedbackView:
        """Rate an answer served to `principal` (again: the rating is replaced).

        Raises:
            NotFoundError: No answer with that id was served to this tenant and user.
        """
        now = utcnow()
        with self.db.session() as session:
            served = session.scalars(
                select(ServedAnswerRecord)
                .where(
                    ServedAnswerRecord.id == answer_id,
                    ServedAnswerRecord.tenant_id == principal.tenant_id,
                    ServedAnswerRecord.user_id == principal.user_id,
                )
                .with_for_update()  # serializes two ratings of one answer (PostgreSQL)
            ).first()
            if served is None:
                raise NotFoundError(f"no answer {answer_id!r}")
            record = session.scalars(
                select(AnswerFeedbackRecord).where(
                    AnswerFeedbackRecord.answer_id == served.id,
                    AnswerFeedbackRecord.user_id == principal.user_id,
                )
            ).first()
            if record is None:
                record = AnswerFeedbackRecord(
                    id=uuid.uuid4().hex,
                    answer_id=served.id,
                    tenant_id=principal.tenant_id,
                    user_id=principal.user_id,
                    created_at=now,
                )
                session.add(record)
            record.rating = rating
            record.comment = comment
            record.correction = correction
            record.updated_at = now
            session.flush()
            log.info("feedback_recorded", answer_id=served.id, rating=rating)
            return _view(record, served)

    def list_feedback(
        self,
        tenant_id: str,
        *,
        rating: Rating | None = None,
        since: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> FeedbackPage:
        """The tenant's feedback, most recently rated first."""
        where = _filters(tenant_id, rating, since)
        with self.db.session() as session:
            total = int(
                session.scalar(select(func.count()).select_from(AnswerFeedbackRecord).where(*where))
                or 0
            )
            rows = session.execute(
                select(AnswerFeedbackRecord, ServedAnswerRecord)
                .join(ServedAnswerRecord, ServedAnswerRecord.id == AnswerFeedbackRecord.answer_id)
                .where(*where)
                .order_by(AnswerFeedbackRecord.updated_at.desc(), AnswerFeedbackRecord.id)
                .limit(limit)
                .offset(offset)
            ).all()
            items = [_view(feedback, served) for feedback, served in rows]
        return FeedbackPage.of(items, total=total, limit=limit, offset=offset)

    def export(
        self,
        tenant_id: str,
        *,
        rating: Rating | None = None,
        since: datetime | None = None,
        batch: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """The tenant's feedback as export records, oldest rating first, read in batches."""
        offset = 0
        where = _filters(tenant_id, rating, since)
        while True:
            with self.db.session() as session:
                rows = session.execute(
                    select(AnswerFeedbackRecord, ServedAnswerRecord)
                    .join(
                        ServedAnswerRecord,
                        ServedAnswerRecord.id == AnswerFeedbackRecord.answer_id,
                    )
                    .where(*where)
                    .order_by(AnswerFeedbackRecord.updated_at, AnswerFeedbackRecord.id)
                    .limit(batch)
                    .offset(offset)
                ).all()
                records = [export_record(_view(f, s)) for f, s in rows]
            yield from records
            if len(records) < batch:
                return
            offset += batch


def export_record(view: FeedbackView) -> dict[str, Any]:
    """One export line: `citewise.eval.datasets.FeedbackRecord`'s fields, then review fields."""
    return {
        "id": view.id,
        "tenant_id": view.tenant_id,
        "question": view.question,
        "answer": view.answer,
        "rating": view.rating,
        "correction": view.correction,
        "citations": view.citations,
        "declined": view.declined,
        "created_at": view.updated_at.isoformat(),
        "answer_id": view.answer_id,
        "user_id": view.user_id,
        "comment": view.comment,
        "tier": view.tier,
        "conversation_id": view.conversation_id,
        "retrieved": view.retrieved,
        "answered_at": view.answered_at.isoformat(),
    }


def _filters(
    tenant_id: str, rating: Rating | None, since: datetime | None
) -> list[ColumnElement[bool]]:
    where = [AnswerFeedbackRecord.tenant_id == tenant_id]
    if rating is not None:
        where.append(AnswerFeedbackRecord.rating == rating)
    if since is not None:
        since = _utc(since)
        where.append(AnswerFeedbackRecord.updated_at >= since)
    return where


def _utc(when: datetime) -> datetime:
    """`when` in UTC (naive: taken as UTC), clamped to the representable range."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999, with an offset past it
        edge = datetime.min if when.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


def _view(feedback: AnswerFeedbackRecord, served: ServedAnswerRecord) -> FeedbackView:
    answer = served.answer or {}
    return FeedbackView(
        id=feedback.id,
        answer_id=served.id,
        tenant_id=feedback.tenant_id,
        user_id=feedback.user_id,
        rating="up" if feedback.rating == "up" else "down",
        comment=feedback.comment,
        correction=feedback.correction,
        question=served.question,
        answer=str(answer.get("answer", "")),
        declined=bool(answer.get("declined", False)),
        tier=str(answer.get("tier", "")),
        conversation_id=served.conversation_id,
        citations=[
            {k: c[k] for k in CITATION_FIELDS if k in c} for c in answer.get("citations", [])
        ],
        retrieved=list(served.retrieved or []),
        answered_at=served.created_at,
        created_at=feedback.created_at,
        updated_at=feedback.updated_at,
    )
