"""Conversations: chat sessions stored in the metadata database, and questions asked in them.

`ConversationStore` owns the ``conversations`` and ``messages`` tables; every
method takes the principal, and a conversation belongs to exactly one (tenant,
user): anyone else gets `NotFoundError`, never a hint that it exists.

`ConversationalQA` asks the pipeline with the conversation's latest turns as
history (a follow-up becomes a standalone query before retrieval) and appends
the question and the answer as served: the user message keeps the query
searched, the assistant message the citations with their final numbers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Literal

import structlog
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from citewise.answer.pipeline import QAPipeline
from citewise.answer.rewrite import Turn
from citewise.answer.stream import AnswerEvent, FinalEvent
from citewise.core.db import ConversationRecord, Database, MessageRecord, utcnow
from citewise.core.errors import NotFoundError
from citewise.core.schemas import Answer, AnswerSentence, Citation, Page, Verification
from citewise.core.tenancy import Principal

log = structlog.get_logger(__name__)

TITLE_MAX_CHARS = 200
TURN_MAX_CHARS = 4000  # `Turn.content`'s limit


class MessageView(BaseModel):
    """One message: a question (with the query searched) or the answer served to it."""

    id: int
    role: Literal["user", "assistant"]
    content: str
    search_query: str | None = Field(
        default=None, description="User messages: the standalone query searched."
    )
    citations: list[Citation] = Field(
        default_factory=list, description="Assistant messages: citations as served (same [n])."
    )
    sentences: list[AnswerSentence] = Field(default_factory=list)
    verification: Verification | None = None
    answer_id: str | None = Field(
        default=None, description="Assistant messages: the served answer (POST /v1/feedback)."
    )
    tier: str | None = None
    degraded: bool = False
    declined: bool = False
    decline_reason: str = ""
    created_at: datetime

    @classmethod
    def of(cls, record: MessageRecord) -> MessageView:
        """View of a database row."""
        flags = record.flags or {}
        return cls(
            id=record.id,
            role="assistant" if record.role == "assistant" else "user",
            content=record.content,
            search_query=record.search_query,
            citations=[Citation.model_validate(c) for c in record.citations or []],
            sentences=[AnswerSentence.model_validate(s) for s in record.sentences or []],
            verification=(
                Verification.model_validate(record.verification) if record.verification else None
            ),
            answer_id=flags.get("answer_id"),
            tier=flags.get("tier"),
            degraded=bool(flags.get("degraded", False)),
            declined=bool(flags.get("declined", False)),
            decline_reason=str(flags.get("decline_reason", "")),
            created_at=record.created_at,
        )


class ConversationView(BaseModel):
    """A conversation without its messages."""

    id: str
    title: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: ConversationRecord) -> ConversationView:
        """View of a database row."""
        return cls(
            id=record.id,
            title=record.title,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class ConversationDetail(ConversationView):
    """A conversation with its messages, oldest first."""

    messages: list[MessageView]


ConversationPage = Page[ConversationView]
"""A page of conversations, most recently active first."""


class ConversationStore:
    """The conversations and messages of the metadata database, scoped by principal.

    Args:
        db: The migrated metadata database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, principal: Principal, title: str = "") -> ConversationView:
        """Start a conversation for the principal's user (untitled: the first question names it)."""
        now = utcnow()
        record = ConversationRecord(
            id=str(uuid.uuid4()),
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            title=_title(title),
            created_at=now,
            updated_at=now,
        )
        with self.db.session() as session:
            session.add(record)
        return ConversationView.of(record)

    def list_conversations(
        self, principal: Principal, *, limit: int = 20, offset: int = 0
    ) -> ConversationPage:
        """The user's conversations, most recently active first."""
        owner = _owned(principal)
        with self.db.session() as session:
            total = session.scalar(
                select(func.count()).select_from(ConversationRecord).where(*owner)
            )
            records = session.scalars(
                select(ConversationRecord)
                .where(*owner)
                .order_by(
                    ConversationRecord.updated_at.desc(),
                    ConversationRecord.created_at.desc(),
                    ConversationRecord.id,
                )
                .limit(limit)
                .offset(offset)
            ).all()
            items = [ConversationView.of(r) for r in records]
        return ConversationPage.of(items, total=int(total or 0), limit=limit, offset=offset)

    def get(self, principal: Principal, conversation_id: str) -> ConversationDetail:
        """A conversation with all its messages."""
        with self.db.session() as session:
            record = _load(session, principal, conversation_id)
            messages = session.scalars(
                select(MessageRecord)
                .where(MessageRecord.conversation_id == record.id)
                .order_by(MessageRecord.id)
            ).all()
            return ConversationDetail(
                **ConversationView.of(record).model_dump(),
                messages=[MessageView.of(m) for m in messages],
            )

    def delete(self, principal: Principal, conversation_id: str) -> None:
        """Delete a conversation and its messages for good."""
        with self.db.session() as session:
            record = _load(session, principal, conversation_id, lock=True)
            session.execute(delete(MessageRecord).where(MessageRecord.conversation_id == record.id))
            session.delete(record)
        log.info("conversation_deleted", tenant=principal.tenant_id, conversation=conversation_id)

    def history(self, principal: Principal, conversation_id: str, turns: int) -> list[Turn]:
        """The latest `turns` messages as rewriter history, oldest first.

        Raises:
            NotFoundError: The conversation is not the principal's.
        """
        with self.db.session() as session:
            record = _load(session, principal, conversation_id)
            if turns <= 0:
                return []
            rows = session.execute(
                select(MessageRecord.role, MessageRecord.content)
                .where(MessageRecord.conversation_id == record.id)
                .order_by(MessageRecord.id.desc())
                .limit(turns)
            ).all()
        return [
            Turn(role="assistant" if role == "assistant" else "user", content=text[:TURN_MAX_CHARS])
            for role, text in reversed(rows)
        ]

    def append(
        self, principal: Principal, conversation_id: str, question: str, answer: Answer
    ) -> tuple[MessageView, MessageView]:
        """Record a question and the answer served to it; returns both messages."""
        now = utcnow()
        with self.db.session() as session:
            record = _load(session, principal, conversation_id, lock=True)
            asked = MessageRecord(
                conversation_id=record.id,
                role="user",
                content=question,
                search_query=answer.search_query or question,
                citations=[],
                sentences=[],
                flags={},
                created_at=now,
            )
            answered = MessageRecord(
                conversation_id=record.id,
                role="assistant",
                content=answer.answer,
                citations=[c.model_dump(mode="json") for c in answer.citations],
                sentences=[s.model_dump(mode="json") for s in answer.sentences],
                verification=(
                    answer.verification.model_dump(mode="json") if answer.verification else None
                ),
                flags={
                    "answer_id": answer.answer_id,
                    "tier": answer.tier,
                    "degraded": answer.degraded,
                    "declined": answer.declined,
                    "decline_reason": answer.decline_reason,
                },
                created_at=now,
            )
            session.add(asked)
            session.flush()  # ids in insertion order: the question before its answer
            session.add(answered)
            session.flush()
            record.updated_at = now
            if not record.title:
                record.title = _title(question)
            return MessageView.of(asked), MessageView.of(answered)


class ConversationalQA:
    """Questions asked inside a stored conversation.

    Args:
        pipeline: The QA pipeline.
        store: The conversation store.
        history_turns: Latest messages given to the query rewriter.
    """

    def __init__(self, pipeline: QAPipeline, store: ConversationStore, history_turns: int) -> None:
        self.pipeline = pipeline
        self.store = store
        self.history_turns = history_turns

    def ask(
        self, question: str, principal: Principal, conversation_id: str, *, use_llm: bool = True
    ) -> Answer:
        """Answer a question in the conversation, then append it and its answer.

        Raises:
            NotFoundError: The conversation is not the principal's (nothing is asked).
        """
        history = self.store.history(principal, conversation_id, self.history_turns)
        answer = self.pipeline.ask(question, principal, history=history, use_llm=use_llm)
        self.store.append(principal, conversation_id, answer.question, answer)
        return answer

    def stream(
        self, question: str, principal: Principal, conversation_id: str, *, use_llm: bool = True
    ) -> Iterator[AnswerEvent]:
        """Stream the answer; the ``final`` answer is appended before that event is yielded.

        A stream abandoned or failing before its ``final`` event leaves the
        conversation unchanged.

        Raises:
            NotFoundError: The conversation is not the principal's (before any event).
        """
        history = self.store.history(principal, conversation_id, self.history_turns)
        events = self.pipeline.stream(question, principal, history=history, use_llm=use_llm)
        return self._recorded(events, principal, conversation_id)

    def _recorded(
        self, events: Iterator[AnswerEvent], principal: Principal, conversation_id: str
    ) -> Iterator[AnswerEvent]:
        try:
            for event in events:
                if isinstance(event, FinalEvent):
                    answer = event.answer
                    self.store.append(principal, conversation_id, answer.question, answer)
                yield event
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()


def _owned(principal: Principal) -> list[ColumnElement[bool]]:
    return [
        ConversationRecord.tenant_id == principal.tenant_id,
        ConversationRecord.user_id == principal.user_id,
    ]


def _load(
    session: Session, principal: Principal, conversation_id: str, *, lock: bool = False
) -> ConversationRecord:
    """The principal's conversation (row-locked with `lock`), or `NotFoundError`."""
    query = select(ConversationRecord).where(
        ConversationRecord.id == conversation_id, *_owned(principal)
    )
    record = session.scalars(query.with_for_update() if lock else query).first()
    if record is None:
        raise NotFoundError(f"no conversation {conversation_id!r}")
    return record


def _title(text: str) -> str:
    title = " ".join(text.split())
    if len(title) <= TITLE_MAX_CHARS:
        return title
    return title[: TITLE_MAX_CHARS - 1].rstrip() + "…"
