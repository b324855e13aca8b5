"""Metadata database: documents, jobs and files, audit log, conversations, API keys, feedback.

SQLAlchemy 2 on SQLite by default (under the data directory), PostgreSQL in
production with the same code. The schema is owned by the Alembic migrations
shipped in `citewise.core.migrations`; `Database.migrate` brings any database to
the newest revision. Every query elsewhere takes the tenant explicitly.

State machines (see docs/architecture.md):

- documents: ``pending`` (a job will ingest it) -> ``processing`` -> ``indexed``
  or ``failed``; ``deleted`` is a tombstone. ``version``, ``sha256``,
  ``chunk_count`` and ``acl_groups`` always describe the version that is in the
  index (version 0: none yet); a failed re-ingestion leaves it searchable.
- jobs: ``queued`` -> ``running`` -> ``succeeded`` | ``partial`` | ``failed``;
  transient errors send it back to ``queued`` with a delay, and after
  ``queue.max_attempts`` attempts it is ``dead`` with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DOCUMENT_STATUSES = ("pending", "processing", "indexed", "failed", "deleted")
JOB_STATUSES = ("queued", "running", "succeeded", "partial", "failed", "dead")
JOB_TERMINAL = frozenset({"succeeded", "partial", "failed", "dead"})
FILE_STATUSES = ("queued", "processing", "indexed", "unchanged", "failed", "superseded")
FILE_TERMINAL = frozenset({"indexed", "unchanged", "failed", "superseded"})
LEGACY_REVISION = "0001"
"""The schema that `create_all` made before migrations existed (documents only)."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone; PostgreSQL uses ``timestamptz``. Either way Python sees UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC before storing."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to values a driver returns without a zone."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of Citewise's tables."""


class DocumentRecord(Base):
    """One logical document of a tenant; `version` grows each time its content changes."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("tenant_id", "doc_id", name="uq_documents_tenant_doc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63), index=True)
    doc_id: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(255))
    """The file name shown to people (and stored on every chunk)."""
    sha256: Mapped[str] = mapped_column(String(64))
    """Content hash of the indexed version ('' while none is)."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    acl_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    title: Mapped[str] = mapped_column(String(500), default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    file_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    """The stored file of the latest upload (what re-ingestion reads)."""
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """The job that owns the latest submitted content; older jobs leave it alone."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class JobRecord(Base):
    """One ingestion job: an upload, or a re-ingestion of stored files."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    actor: Mapped[str] = mapped_column(String(255), default="anonymous")
    files_total: Mapped[int] = mapped_column(Integer, default=0)
    files_done: Mapped[int] = mapped_column(Integer, default=0)
    files_failed: Mapped[int] = mapped_column(Integer, default=0)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class JobFileRecord(Base):
    """One file of a job and its outcome."""

    __tablename__ = "job_files"
    __table_args__ = (UniqueConstraint("job_id", "position", name="uq_job_files_job_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(1024))
    doc_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    acl_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AuditRecord(Base):
    """An administrative action: who did what to which target, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ConversationRecord(Base):
    """A chat session of one user in one tenant."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_owner", "tenant_id", "user_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MessageRecord(Base):
    """One message of a conversation: a question, or the answer served to it.

    A user message keeps the standalone query searched for it; an assistant
    message keeps the answer's citations exactly as served (same ``[n]``), its
    per-sentence support, the verification summary and the tier flags.
    """

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    search_query: Mapped[str | None] = mapped_column(Text, nullable=True)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sentences: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    flags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """answer_id, tier, degraded, declined, decline_reason of an answer."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKeyRecord(Base):
    """An API key of one tenant: only its public prefix and the sha256 of the whole key.

    The secret part is 32 random bytes, so a fast hash is the right tool (no
    brute force can walk that space; slow password hashes are for low-entropy
    secrets) and lets every request check its key in microseconds.
    """

    __tablename__ = "api_keys"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63), index=True)
    key_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    user_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ServedAnswerRecord(Base):
    """An answer served through the API: what feedback on it refers to.

    ``id`` is the answer's ``answer_id``. ``answer`` is the answer as served
    (without its passages' text); ``retrieved`` the passages shown to the model
    as ``{doc_id, version, chunk_index, point_id}``.
    """

    __tablename__ = "served_answers"
    __table_args__ = (Index("ix_served_answers_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[str] = mapped_column(String(255))
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    retrieved: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AnswerFeedbackRecord(Base):
    """A user's rating of an answer served to them: one per user and answer (updated)."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("answer_id", "user_id", name="uq_feedback_answer_user"),
        Index("ix_feedback_tenant_updated", "tenant_id", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    answer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("served_answers.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[str] = mapped_column(String(255))
    rating: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str] = mapped_column(Text, default="")
    correction: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def migrations_dir() -> Path:
    """Folder of the Alembic environment shipped inside the package."""
    return Path(str(resources.files("citewise.core") / "migrations"))


MIGRATION_LOCK_KEY = 0x43697465_77697365
"""PostgreSQL advisory lock held while migrating ("Citewise" in ASCII hex, as int64)."""


class Database:
    """Engine and session factory for one database URL.

    Args:
        url: SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg://...``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        # PostgreSQL: give up connecting after 5 s, so a down database is a quick 503.
        connect_args: dict[str, Any] = (
            {"check_same_thread": False, "timeout": 30}
            if url.startswith("sqlite")
            else {"connect_timeout": 5}
        )
        self.engine: Engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """Whether this is the embedded SQLite database."""
        return self.engine.dialect.name == "sqlite"

    def reachable(self) -> bool:
        """Whether the database answers a trivial query now (for the readiness probe)."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema with Alembic (``alembic upgrade head``), idempotently.

        A database made by an earlier Citewise with ``create_all`` (a ``documents``
        table and no ``alembic_version``) is first stamped as the legacy revision,
        so its rows are kept and only the later migrations run. Safe to call from
        several processes at once: on PostgreSQL an advisory lock serialises them, on
        SQLite the write transaction does.
        """
        from alembic import command

        config = self.alembic_config()
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Replicas started together: one migrates, the others wait here for its
                # commit and then find the schema at head (the lock ends with the transaction).
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            config.attributes["connection"] = connection
            tables = set(inspect(connection).get_table_names())
            if "documents" in tables and "alembic_version" not in tables:
                command.stamp(config, LEGACY_REVISION)
            command.upgrade(config, revision)

    def alembic_config(self) -> Any:
        """An Alembic `Config` for this database (the shipped migrations)."""
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(migrations_dir()))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # Transactions are begun by `_sqlite_begin`, not by the driver.
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Take the write lock at BEGIN: a deferred transaction that reads and then writes
    # fails at once (SQLITE_BUSY, no waiting) when another thread wrote in between.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
