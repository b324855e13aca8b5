"""QA datasets for answer evaluation: a JSONL format, BEIR and exported feedback as sources.

One item per line (``samples/kestrel-qa.jsonl``)::

    {"id": "hb-01", "question": "...", "reference": "...",
     "reference_contexts": ["a sentence quoted from the document"],
     "reference_doc_ids": ["employee-handbook.md"], "tags": ["handbook"]}

``reference`` may be empty only for items tagged ``unanswerable`` (the system should
decline). Document ids are Citewise's (`citewise.ingest.pipeline.doc_id_for`: the file
name, lower-cased, for a folder ingested from its root). Synthetic items (``citewise eval
synthesize``) also name the chunks they were written from in ``source_chunks``
(``doc_id#chunk_index``), unanswerable ones included.

Exported feedback (``citewise feedback export``, one JSON object per line) is read as
`FeedbackRecord`: a thumbs-up answer becomes a reference answer citing its documents; a
thumbs-down one becomes an item only when the user wrote a correction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from citewise.core.errors import ConfigError
from citewise.eval.beir import BeirDataset

UNANSWERABLE = "unanswerable"
MULTI_HOP = "multi_hop"


class QAItem(BaseModel):
    """One evaluation question with its reference answer and where the answer lives."""

    id: str = Field(min_length=1, max_length=200)
    question: str = Field(min_length=1, max_length=2000)
    reference: str = Field("", description="Reference answer; empty for unanswerable items.")
    reference_contexts: list[str] = Field(
        default_factory=list, description="Text the answer rests on, quoted from the documents."
    )
    reference_doc_ids: list[str] = Field(
        default_factory=list, description="Citewise document ids that hold the answer."
    )
    tags: list[str] = Field(default_factory=list)
    source_chunks: list[str] = Field(
        default_factory=list,
        description="Chunks a synthetic item was written from (``doc_id#chunk_index``).",
    )

    model_config = {"extra": "forbid"}

    @field_validator("question", "reference")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _reference_unless_unanswerable(self) -> QAItem:
        if not self.question:
            raise ValueError("question is empty")
        if not self.answerable and self.reference_doc_ids:
            raise ValueError("an unanswerable item cannot name reference_doc_ids")
        if self.answerable and not self.reference:
            raise ValueError("reference is empty (tag the item 'unanswerable' if it has none)")
        return self

    @property
    def answerable(self) -> bool:
        """False for items tagged ``unanswerable``."""
        return UNANSWERABLE not in self.tags


class QADataset(BaseModel):
    """A named list of QA items with a content hash (recorded with every run)."""

    name: str
    items: list[QAItem]
    sha256: str

    def select(self, ids: list[str] | None) -> QADataset:
        """Only the items with these ids, in dataset order (all when None).

        Raises:
            ConfigError: An id is not in the dataset.
        """
        if not ids:
            return self
        missing = sorted(set(ids) - {item.id for item in self.items})
        if missing:
            raise ConfigError(f"dataset {self.name} has no question(s) {missing}")
        wanted = set(ids)
        return self.model_copy(update={"items": [i for i in self.items if i.id in wanted]})

    def limited(self, limit: int | None) -> QADataset:
        """The first `limit` items (all when None)."""
        if limit is None or limit >= len(self.items):
            return self
        return self.model_copy(update={"items": self.items[:limit]})


def load_qa(path: Path) -> QADataset:
    """Read a QA JSONL file; errors name the file and line.

    Raises:
        ConfigError: Unreadable file, invalid JSON, an invalid item or a duplicate id.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read QA dataset {path}: {exc.strerror}") from exc
    items: list[QAItem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            item = QAItem.model_validate_json(line)
        except ValidationError as exc:
            raise ConfigError(f"{path}:{number}: {_first_error(exc)}") from exc
        if item.id in seen:
            raise ConfigError(
                f"{path}:{number}: duplicate id {item.id!r} (first on line {seen[item.id]})"
            )
        seen[item.id] = number
        items.append(item)
    if not items:
        raise ConfigError(f"{path}: no QA items")
    return QADataset(name=path.stem, items=items, sha256=hashlib.sha256(raw).hexdigest())


def write_qa(items: Iterable[QAItem], path: Path) -> None:
    """Write items as QA JSONL (one object per line, ids in order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(item.model_dump_json(exclude_defaults=True) + "\n")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "json_invalid":
        return f"invalid JSON ({error['msg']})"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where + ': ' if where else ''}{message}"


def from_beir(dataset: BeirDataset, *, limit: int | None = None) -> QADataset:
    """Judged BEIR queries as QA items: relevant documents as references, no reference answer.

    BEIR has no answers, so the items carry only ids (``reference`` is the text of
    the most relevant document, for string metrics); answer metrics are weak here.
    """
    texts = {doc.doc_id: doc.text for doc in dataset.corpus}
    items = []
    for query_id, question in sorted(dataset.queries.items()):
        relevant = sorted(dataset.qrels[query_id], key=lambda d: -dataset.qrels[query_id][d])
        items.append(
            QAItem(
                id=query_id,
                question=question,
                reference=texts.get(relevant[0], "") or relevant[0],
                reference_doc_ids=relevant,
                tags=["beir"],
            )
        )
        if limit is not None and len(items) >= limit:
            break
    digest = hashlib.sha256(f"beir:{dataset.name}:{dataset.split}:{dataset.fingerprint()}".encode())
    return QADataset(
        name=f"beir-{dataset.name}-{dataset.split}", items=items, sha256=digest.hexdigest()
    )


class FeedbackCitation(BaseModel):
    """A citation of an exported answer (only the document id is used)."""

    doc_id: str
    page: int | None = None


class FeedbackRecord(BaseModel):
    """One line of ``citewise feedback export`` as the evaluation reads it.

    Fields: ``id`` (feedback id), ``tenant_id``, ``question``, ``answer`` (as served),
    ``rating`` (``up``/``down``), optional ``correction`` (what the user says the answer
    should be), ``citations`` (``[{"doc_id": ...}]``), ``declined`` and ``created_at``.
    Unknown fields are ignored so the export can grow.
    """

    id: str
    tenant_id: str = ""
    question: str
    answer: str = ""
    rating: Literal["up", "down"]
    correction: str = ""
    citations: list[FeedbackCitation] = Field(default_factory=list)
    declined: bool = False
    created_at: str = ""

    model_config = {"extra": "ignore"}


def from_feedback(path: Path) -> QADataset:
    """QA items from exported feedback.

    A thumbs-up on an answer: the answer is the reference and its cited documents the
    reference ids. A thumbs-up on a decline: an ``unanswerable`` item. A thumbs-down with a
    correction: the correction is the reference (no ids: the documents that hold it are
    unknown). A thumbs-down without one is skipped: it says what is wrong, not what is right.

    Raises:
        ConfigError: Unreadable file or a malformed record (with its line number).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read feedback export {path}: {exc.strerror}") from exc
    items: list[QAItem] = []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = FeedbackRecord.model_validate_json(line)
        except ValidationError as exc:
            raise ConfigError(f"{path}:{number}: {_first_error(exc)}") from exc
        item = _feedback_item(record)
        if item is not None:
            items.append(item)
    if not items:
        raise ConfigError(f"{path}: no usable feedback (thumbs-up, or thumbs-down with a fix)")
    return QADataset(name=path.stem, items=items, sha256=hashlib.sha256(raw).hexdigest())


def _feedback_item(record: FeedbackRecord) -> QAItem | None:
    tags = ["feedback", f"rating:{record.rating}"]
    if record.rating == "up" and record.declined:
        return QAItem(id=f"fb-{record.id}", question=record.question, tags=[*tags, UNANSWERABLE])
    if record.rating == "up" and record.answer.strip():
        doc_ids = sorted({c.doc_id for c in record.citations})
        return QAItem(
            id=f"fb-{record.id}",
            question=record.question,
            reference=record.answer,
            reference_doc_ids=doc_ids,
            tags=tags,
        )
    if record.rating == "down" and record.correction.strip():
        return QAItem(
            id=f"fb-{record.id}", question=record.question, reference=record.correction, tags=tags
        )
    return None


def load_dataset(path: Path, *, split: str = "test") -> QADataset:
    """A QA JSONL file, a BEIR folder (``split``) or a feedback export (``*.feedback.jsonl``)."""
    if path.is_dir():
        from citewise.eval.beir import load_beir

        return from_beir(load_beir(path, split))
    if path.name.endswith(".feedback.jsonl"):
        return from_feedback(path)
    return load_qa(path)
