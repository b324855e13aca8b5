"""Ingest one file end to end: parse -> chunk -> embed dense + BM25 -> upsert -> retire old version.

Idempotent and crash-safe by construction:
- a file whose sha256 (and ACL) matches the indexed version is skipped without
  parsing or embedding;
- a changed file gets version ``n + 1``; its point ids are uuid5(tenant, doc,
  version, chunk index), so a retry after a crash overwrites the same points;
- the old version's points are deleted only after every new point is written,
  and the database row moves to the new version last.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from citewise.core.db import Database, DocumentRecord
from citewise.core.errors import CitewiseError, FileTooLargeError, IngestError, VectorIndexError
from citewise.core.models import Embedder
from citewise.core.schemas import Chunk, SparseVector
from citewise.core.settings import Settings
from citewise.core.tenancy import EVERYONE, validate_tenant_id
from citewise.core.timing import StageTimer
from citewise.ingest.chunk import ChunkDraft, chunk_document
from citewise.ingest.parse import Element, ParsedDocument, parse_file
from citewise.retrieval.sparse import BM25Encoder
from citewise.retrieval.store.base import VectorStore

log = structlog.get_logger(__name__)

_DOC_ID_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")
UPSERT_BATCH = 256


def doc_id_for(path: Path, root: Path | None = None) -> str:
    """A stable, safe document id from a file's path relative to `root`.

    ``Policies/Travel Policy.docx`` becomes ``policies__travel-policy.docx``.
    """
    rel = path.relative_to(root) if root is not None and path.is_relative_to(root) else path.name
    parts = [
        _DOTS.sub(".", _DOC_ID_UNSAFE.sub("-", part.lower())).strip("-.")
        for part in Path(rel).parts
    ]
    doc_id = "__".join(p for p in parts if p)[:200]
    if not doc_id:
        raise IngestError(f"cannot derive a document id from {path.name!r}")
    return doc_id


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Parser(Protocol):
    """Turns a file into elements: `parse_file` itself, or `ParserPool.parse` (a child process)."""

    def __call__(
        self, path: Path, *, max_bytes: int, pdf_strategy: str, filename: str | None = None
    ) -> ParsedDocument:
        """Parse `path` (see `parse_file`)."""
        ...


class ProgressSink(Protocol):
    """Receives progress from an ingestion (a CLI progress bar, a job row)."""

    def chunks_planned(self, count: int) -> None:
        """The current file was split into `count` chunks."""

    def chunks_done(self, count: int) -> None:
        """`count` more chunks of the current file were embedded and written."""


@dataclass(frozen=True)
class TextDocument:
    """A document that arrives as text rather than as a file."""

    doc_id: str
    title: str
    text: str
    source: str = ""


@dataclass
class FileOutcome:
    """What happened to one file."""

    source: str
    doc_id: str
    status: Literal["indexed", "unchanged", "failed"]
    version: int = 0
    chunks: int = 0
    error: str | None = None
    error_code: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class PreparedFile:
    """A file checked, parsed and chunked, waiting for its vectors and its write.

    `Ingestor.prepare_file` makes it and `Ingestor.commit_file` writes it; between
    the two its `texts` can be embedded together with other files' (a job does).
    """

    tenant_id: str
    doc_id: str
    source: str
    groups: list[str]
    sha: str
    force: bool
    title: str
    drafts: list[ChunkDraft]
    sparse: list[SparseVector] = field(default_factory=list)
    """BM25 vectors of `texts`, made with the chunks (on the thread that prepares)."""
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        """What is embedded and BM25-encoded for each chunk (see `index_text`)."""
        return [_index_text(self.title, d.section, d.text) for d in self.drafts]


class Ingestor:
    """Runs the ingestion pipeline for files of any tenant.

    Args:
        settings: Application settings.
        embedder: Dense embedder (warmed up lazily).
        store: Vector store the chunks go to.
        db: Metadata database.
        parser: What parses files (default: `parse_file` on the calling thread; the
            runtime passes a `ParserPool`'s child processes).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        embedder: Embedder,
        store: VectorStore,
        db: Database,
        parser: Parser = parse_file,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.db = db
        self.parser = parser
        self.encoder = BM25Encoder()

    def ingest_file(
        self,
        path: Path,
        *,
        tenant_id: str,
        doc_id: str,
        acl_groups: Sequence[str] = (),
        filename: str | None = None,
        progress: ProgressSink | None = None,
        force: bool = False,
        raise_transient: bool = False,
    ) -> FileOutcome:
        """Ingest one file; errors are reported in the outcome, never raised.

        Args:
            path: The file on disk.
            tenant_id: Tenant the document belongs to.
            doc_id: Document id (stable across versions of the same document).
            acl_groups: Groups that may read it; empty means the whole tenant.
            filename: User-visible name (defaults to the path's name).
            progress: Optional progress receiver.
            force: Write a new version even when the content and ACL are unchanged.
            raise_transient: Raise `VectorIndexError` (worth a retry) instead of
                recording it as the file's failure.

        Returns:
            The outcome: indexed, unchanged or failed (with a clear error).
        """
        source = filename or path.name
        try:
            prepared = self.prepare_file(
                path,
                tenant_id=tenant_id,
                doc_id=doc_id,
                acl_groups=acl_groups,
                filename=filename,
                force=force,
            )
        except CitewiseError as exc:
            return self.fail_file(tenant_id, doc_id, source, exc)
        if isinstance(prepared, FileOutcome):
            return prepared
        return self.commit_file(prepared, progress=progress, raise_transient=raise_transient)

    def prepare_file(
        self,
        path: Path,
        *,
        tenant_id: str,
        doc_id: str,
        acl_groups: Sequence[str] = (),
        filename: str | None = None,
        force: bool = False,
    ) -> PreparedFile | FileOutcome:
        """Check, parse and chunk a file: the first half of `ingest_file`.

        Writes nothing; `commit_file` does, and decides the version again then.

        Returns:
            The prepared file, or an ``unchanged`` outcome (parsing skipped).

        Raises:
            CitewiseError: The file is refused or cannot be parsed (see `fail_file`).
        """
        source = filename or path.name
        groups = sorted(set(acl_groups)) or [EVERYONE]
        validate_tenant_id(tenant_id)
        max_bytes = int(self.settings.ingest.max_file_mb * 1024 * 1024)
        if path.stat().st_size > max_bytes:
            raise FileTooLargeError(
                f"{source}: {path.stat().st_size / 1e6:.1f} MB is over the "
                f"{self.settings.ingest.max_file_mb:g} MB limit"
            )
        sha = file_sha256(path)
        decided = self._decide(tenant_id, doc_id, source, sha, groups, force)
        if isinstance(decided, FileOutcome):
            return decided
        timer = StageTimer()
        parsed = self.parser(
            path,
            max_bytes=max_bytes,
            pdf_strategy=self.settings.ingest.pdf_strategy,
            filename=source,
        )
        timer.lap("parse")
        drafts = self._drafts(parsed)
        timer.lap("chunk")
        sparse = [
            self.encoder.encode_document(_index_text(parsed.title, d.section, d.text))
            for d in drafts
        ]
        timer.lap("sparse")
        return PreparedFile(
            tenant_id=tenant_id,
            doc_id=doc_id,
            source=source,
            groups=groups,
            sha=sha,
            force=force,
            title=parsed.title,
            drafts=drafts,
            sparse=sparse,
            timings_ms=dict(timer.laps),
        )

    def commit_file(
        self,
        prepared: PreparedFile,
        dense: np.ndarray | None = None,
        *,
        progress: ProgressSink | None = None,
        raise_transient: bool = False,
    ) -> FileOutcome:
        """Write a prepared file: vectors, points, the old version retired, the record.

        The version is decided here (the file may have become unchanged meanwhile);
        the new version's points are all written before the old version's are
        deleted, and the record moves to the new version last. Errors are
        recorded and returned as in `ingest_file`.

        Args:
            prepared: From `prepare_file`.
            dense: Vectors of ``prepared.texts`` when embedded already (with other
                files'); None embeds them here, batch by batch.
            progress: Optional progress receiver.
            raise_transient: Raise `VectorIndexError` instead of recording it.
        """
        try:
            return self._commit(prepared, dense, progress)
        except VectorIndexError as exc:
            if raise_transient:
                raise
            return self.fail_file(prepared.tenant_id, prepared.doc_id, prepared.source, exc)
        except CitewiseError as exc:
            return self.fail_file(prepared.tenant_id, prepared.doc_id, prepared.source, exc)

    def fail_file(
        self, tenant_id: str, doc_id: str, source: str, exc: CitewiseError
    ) -> FileOutcome:
        """Record a file's failure on its document; a previously indexed version stays."""
        log.warning("ingest_failed", tenant=tenant_id, doc_id=doc_id, error=str(exc))
        self._record_failure(tenant_id, doc_id, source, str(exc), exc.code)
        return FileOutcome(
            source=source, doc_id=doc_id, status="failed", error=str(exc), error_code=exc.code
        )

    def ingest_texts(
        self,
        docs: Sequence[TextDocument],
        *,
        tenant_id: str,
        acl_groups: Sequence[str] = (),
        progress: ProgressSink | None = None,
    ) -> list[FileOutcome]:
        """Ingest documents that arrive as text (datasets, connectors), in one batch.

        They skip parsing but follow the rest of the file path exactly (chunking,
        dense and BM25 vectors, versions, records); embedding is batched across
        documents, which is what keeps bulk loads close to the embedder's speed.

        Args:
            docs: The documents; ``doc_id`` must be unique within the batch.
            tenant_id: Tenant they belong to.
            acl_groups: Groups that may read them; empty means the whole tenant.
            progress: Optional progress receiver.

        Returns:
            One outcome per document, in order.

        Raises:
            IngestError: Two documents of the batch share a doc_id.
        """
        validate_tenant_id(tenant_id)
        if len({d.doc_id for d in docs}) != len(docs):
            raise IngestError("a batch of text documents repeats a doc_id")
        groups = sorted(set(acl_groups)) or [EVERYONE]
        planned: list[tuple[TextDocument, str, int]] = []
        outcomes: dict[str, FileOutcome] = {}
        with self.db.session() as session:
            records = _find_many(session, tenant_id, [d.doc_id for d in docs])
            for doc in docs:
                sha = hashlib.sha256(f"{doc.title}\n{doc.text}".encode()).hexdigest()
                version = _next_version(records.get(doc.doc_id), sha, groups)
                if version is None:
                    record = records[doc.doc_id]
                    outcomes[doc.doc_id] = FileOutcome(
                        source=doc.source or doc.doc_id,
                        doc_id=doc.doc_id,
                        status="unchanged",
                        version=record.version,
                        chunks=record.chunk_count,
                    )
                else:
                    planned.append((doc, sha, version))
        chunks_by_doc: dict[str, list[Chunk]] = {}
        for doc, _sha, version in planned:
            parsed = ParsedDocument(
                source=doc.source or doc.doc_id,
                title=doc.title,
                elements=(Element(text=doc.text, category="NarrativeText", page=None),),
            )
            chunks_by_doc[doc.doc_id] = self._chunks(parsed, tenant_id, doc.doc_id, version, groups)
        if progress is not None:
            progress.chunks_planned(sum(len(c) for c in chunks_by_doc.values()))
        self._write(tenant_id, [c for cs in chunks_by_doc.values() for c in cs], progress)
        for doc, _sha, version in planned:
            if version > 1:
                self.store.delete_document(tenant_id, doc.doc_id, except_version=version)
        with self.db.session() as session:
            records = _find_many(session, tenant_id, [doc.doc_id for doc, _, _ in planned])
            for doc, sha, version in planned:
                chunks = chunks_by_doc[doc.doc_id]
                _record_indexed(
                    session, records.get(doc.doc_id), tenant_id, doc.doc_id,
                    source=doc.source or doc.doc_id, sha=sha, version=version,
                    chunks=len(chunks), groups=groups, title=doc.title,
                )  # fmt: skip
                outcomes[doc.doc_id] = FileOutcome(
                    source=doc.source or doc.doc_id,
                    doc_id=doc.doc_id,
                    status="indexed",
                    version=version,
                    chunks=len(chunks),
                )
        return [outcomes[d.doc_id] for d in docs]

    def _decide(
        self, tenant_id: str, doc_id: str, source: str, sha: str, groups: list[str], force: bool
    ) -> FileOutcome | int:
        """The version to write, or an ``unchanged`` outcome (see `_next_version`)."""
        with self.db.session() as session:
            record = _find(session, tenant_id, doc_id)
            version = _next_version(record, sha, groups, force=force)
            if version is not None:
                return version
            assert record is not None
            log.info("ingest_unchanged", tenant=tenant_id, doc_id=doc_id)
            return FileOutcome(
                source=source,
                doc_id=doc_id,
                status="unchanged",
                version=record.version,
                chunks=record.chunk_count,
            )

    def _commit(
        self, prepared: PreparedFile, dense: np.ndarray | None, progress: ProgressSink | None
    ) -> FileOutcome:
        tenant_id, doc_id = prepared.tenant_id, prepared.doc_id
        version = self._decide(
            tenant_id, doc_id, prepared.source, prepared.sha, prepared.groups, prepared.force
        )
        if isinstance(version, FileOutcome):
            return version
        chunks = [
            _to_chunk(d, i, tenant_id, doc_id, version, prepared.title, prepared.groups,
                      prepared.source)
            for i, d in enumerate(prepared.drafts)
        ]  # fmt: skip
        if progress is not None:
            progress.chunks_planned(len(chunks))
        timer = StageTimer()
        self._write(tenant_id, chunks, progress, dense, prepared.sparse or None)
        timer.lap("embed_index")
        self.store.delete_document(tenant_id, doc_id, except_version=version)
        with self.db.session() as session:
            _record_indexed(
                session, _find(session, tenant_id, doc_id), tenant_id, doc_id,
                source=prepared.source, sha=prepared.sha, version=version, chunks=len(chunks),
                groups=prepared.groups, title=prepared.title,
            )  # fmt: skip
        timings = {**prepared.timings_ms, **timer.laps}
        log.info(
            "ingest_indexed",
            tenant=tenant_id,
            doc_id=doc_id,
            version=version,
            chunks=len(chunks),
            **timings,
        )
        return FileOutcome(
            source=prepared.source,
            doc_id=doc_id,
            status="indexed",
            version=version,
            chunks=len(chunks),
            timings_ms=timings,
        )

    def _drafts(self, parsed: ParsedDocument) -> list[ChunkDraft]:
        return chunk_document(
            parsed,
            max_tokens=self.settings.chunking.max_tokens,
            overlap_tokens=self.settings.chunking.overlap_tokens,
            max_table_tokens=self.settings.chunking.max_table_tokens,
            count_tokens=self.embedder.count_tokens,
        )

    def _chunks(
        self, parsed: ParsedDocument, tenant_id: str, doc_id: str, version: int, groups: list[str]
    ) -> list[Chunk]:
        drafts = self._drafts(parsed)
        return [
            _to_chunk(d, i, tenant_id, doc_id, version, parsed.title, groups, parsed.source)
            for i, d in enumerate(drafts)
        ]

    def _write(
        self,
        tenant_id: str,
        chunks: list[Chunk],
        progress: ProgressSink | None,
        dense: np.ndarray | None = None,
        sparse: list[SparseVector] | None = None,
    ) -> None:
        """Embed (dense and BM25, unless given) and upsert chunks in batches."""
        if dense is not None and len(dense) != len(chunks):
            raise ValueError(f"{len(dense)} vectors for {len(chunks)} chunks")
        if sparse is not None and len(sparse) != len(chunks):
            raise ValueError(f"{len(sparse)} sparse vectors for {len(chunks)} chunks")
        self.store.ensure_namespace(tenant_id)
        for start in range(0, len(chunks), UPSERT_BATCH):
            batch = chunks[start : start + UPSERT_BATCH]
            texts = [index_text(c) for c in batch]
            vectors = (
                self.embedder.embed(texts) if dense is None else dense[start : start + len(batch)]
            )
            batch_sparse = (
                [self.encoder.encode_document(t) for t in texts]
                if sparse is None
                else sparse[start : start + len(batch)]
            )
            self.store.upsert(tenant_id, batch, vectors.tolist(), batch_sparse)
            if progress is not None:
                progress.chunks_done(len(batch))

    def _record_failure(
        self, tenant_id: str, doc_id: str, source: str, error: str, code: str
    ) -> None:
        """Note the failure; a previously indexed version stays searchable."""
        try:
            validate_tenant_id(tenant_id)
        except CitewiseError:
            return
        with self.db.session() as session:
            record = _find(session, tenant_id, doc_id)
            if record is None:
                session.add(
                    DocumentRecord(
                        tenant_id=tenant_id,
                        doc_id=doc_id,
                        source=source,
                        sha256="",
                        version=0,
                        status="failed",
                        error=error,
                        error_code=code,
                    )
                )
            else:
                # The row's version, sha256 and chunk count still describe the indexed
                # version (if any), which stays searchable.
                record.error = error
                record.error_code = code
                record.status = "failed"


def index_text(chunk: Chunk) -> str:
    """Text that is embedded and BM25-encoded: document title and section give context."""
    return _index_text(chunk.title, chunk.section, chunk.text)


def _index_text(title: str, section: str, text: str) -> str:
    header = " > ".join(part for part in (title, section) if part)
    return f"{header}\n{text}" if header else text


def _to_chunk(
    draft: ChunkDraft,
    index: int,
    tenant_id: str,
    doc_id: str,
    version: int,
    title: str,
    groups: list[str],
    source: str,
) -> Chunk:
    return Chunk(
        tenant_id=tenant_id,
        doc_id=doc_id,
        version=version,
        chunk_index=index,
        text=draft.text,
        title=title,
        section=draft.section,
        page=draft.page,
        acl_groups=groups,
        source=source,
        kind=draft.kind,
    )


def _next_version(
    record: DocumentRecord | None, sha: str, groups: list[str], *, force: bool = False
) -> int | None:
    """The version to write, or None when the indexed version has this content and ACL.

    The row's ``sha256``, ``version`` and ``acl_groups`` describe the indexed version
    whatever its status (a later failure or a pending upload leaves them), so an
    upload of the indexed content is unchanged. A deleted document comes back as a
    new version. A version whose row was never updated (a crash after some points
    were written) is computed again, so the retry overwrites the same point ids.
    """
    if record is None:
        return 1
    if record.status == "deleted" or record.deleted_at is not None:
        return record.version + 1
    indexed = record.version >= 1 and record.chunk_count > 0
    if indexed and not force and record.sha256 == sha and sorted(record.acl_groups) == groups:
        return None
    return record.version + 1 if indexed else max(record.version, 1)


def _record_indexed(
    session: Session,
    record: DocumentRecord | None,
    tenant_id: str,
    doc_id: str,
    *,
    source: str,
    sha: str,
    version: int,
    chunks: int,
    groups: list[str],
    title: str,
) -> None:
    if record is None:
        record = DocumentRecord(tenant_id=tenant_id, doc_id=doc_id)
        session.add(record)
    record.source = source[:255]
    record.sha256 = sha
    record.version = version
    record.status = "indexed"
    record.chunk_count = chunks
    record.acl_groups = groups
    record.title = title[:500]
    record.error = None
    record.error_code = None
    record.deleted_at = None


def _find_many(session: Session, tenant_id: str, doc_ids: list[str]) -> dict[str, DocumentRecord]:
    stmt = select(DocumentRecord).where(
        DocumentRecord.tenant_id == tenant_id, DocumentRecord.doc_id.in_(doc_ids)
    )
    return {r.doc_id: r for r in session.scalars(stmt)}


def _find(session: Session, tenant_id: str, doc_id: str) -> DocumentRecord | None:
    stmt = select(DocumentRecord).where(
        DocumentRecord.tenant_id == tenant_id, DocumentRecord.doc_id == doc_id
    )
    return session.scalars(stmt).one_or_none()
