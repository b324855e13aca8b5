"""Load a BEIR-format dataset folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from citewise.core.errors import ConfigError


@dataclass(frozen=True)
class BeirDocument:
    """One corpus entry."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR split: the corpus, the judged queries and their relevance labels."""

    name: str
    split: str
    corpus: list[BeirDocument]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def fingerprint(self) -> str:
        """Short hash of the corpus content (ids, titles, texts)."""
        digest = hashlib.sha256()
        for doc in self.corpus:
            digest.update(f"{doc.doc_id}\x1f{doc.title}\x1f{doc.text}\x1e".encode())
        return digest.hexdigest()[:16]


def load_beir(folder: Path, split: str) -> BeirDataset:
    """Read a BEIR folder; only queries judged in `split` are kept.

    Args:
        folder: Folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.
        split: The qrels split, e.g. ``dev`` or ``test``.

    Raises:
        ConfigError: A file is missing or malformed.
    """
    paths = {
        "corpus": folder / "corpus.jsonl",
        "queries": folder / "queries.jsonl",
        "qrels": folder / "qrels" / f"{split}.tsv",
    }
    for kind, path in paths.items():
        if not path.is_file():
            raise ConfigError(f"BEIR folder {folder}: missing {kind} file {path.name}")
    qrels: dict[str, dict[str, int]] = {}
    with paths["qrels"].open(newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != [
            "query-id",
            "corpus-id",
            "score",
        ]:
            raise ConfigError(f"{paths['qrels']}: expected header 'query-id corpus-id score'")
        for row in reader:
            if len(row) >= 3 and int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    corpus = [
        BeirDocument(
            doc_id=str(r["_id"]), title=str(r.get("title") or ""), text=str(r.get("text") or "")
        )
        for r in _jsonl(paths["corpus"])
    ]
    queries = {
        str(r["_id"]): str(r["text"]) for r in _jsonl(paths["queries"]) if str(r["_id"]) in qrels
    }
    missing = set(qrels) - set(queries)
    if missing:
        raise ConfigError(f"{len(missing)} judged queries are not in queries.jsonl")
    return BeirDataset(folder.name, split, corpus, queries, qrels)


def _jsonl(path: Path) -> list[dict[str, object]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
    return rows
