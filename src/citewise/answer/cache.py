"""Answer caches: exact (the same question) and semantic (a sufficiently similar one).

An answer is reused only inside one *scope*: the same tenant, the same set of
visible ACL groups, the same corpus version of the tenant (any document change
makes a new one), the same answer-affecting settings and LLM use, and the same
conversation context. The exact cache keys on the normalized question inside
the scope; the semantic cache compares question embeddings inside the scope
(cosine similarity at least ``cache.semantic_threshold`` and the same `key_terms`:
numbers, negations, direction words and names; only for questions without
conversation history).

Only verified answers and genuine declines (no relevant passage, the model
found no answer) are cached; declines caused by failures (no tier answered,
degraded answers, a judge that was unavailable, blocked injections) never are.

Storage is behind the small `AnswerStore` protocol; `MemoryAnswerStore`
(bounded, TTL) is the in-process default. A Redis store would keep the exact
entries as ``SET key json EX ttl`` and each scope's vectors in a hash.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from sqlalchemy import case, func, select

from citewise.answer.rewrite import Turn
from citewise.core.db import Database, DocumentRecord
from citewise.core.lru import LRU
from citewise.core.metrics import record_cache
from citewise.core.models import Embedder
from citewise.core.schemas import Answer, new_answer_id
from citewise.core.settings import CacheSettings
from citewise.core.tenancy import Principal

CACHEABLE_DECLINES = frozenset({"gate", "model"})
"""Decline reasons that describe the documents, not a failure: the only declines cached."""


NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nor", "neither", "without", "cannot", "nothing", "nobody"}
)
NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100"})
DIRECTION_STEMS = (
    "increas", "decreas", "reduc", "rais", "lower", "higher", "more", "less", "fewer",
    "great", "small", "larg", "improv", "wors", "inhibit", "promot", "activat", "suppress",
    "enhanc", "impair", "positiv", "negativ", "above", "below", "before", "after", "maxim",
    "minim", "most", "least", "first", "last", "next", "previous", "primary", "secondary",
)  # fmt: skip
_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+(?:[.,]\d+)*")


def key_terms(question: str) -> frozenset[str]:
    """The terms two questions must share for one's answer to serve the other.

    Numbers (digits or number words), negations, direction and order words
    (increase, lower, most, before, primary, ...) and proper names or acronyms
    (capitalized words after the first, words with inner capitals). Bi-encoder
    similarity barely moves when only such a word changes ("six years" vs
    "two years", "X increases Y" vs "X does not increase Y"), yet the answer
    does: bench/semantic_cache.py measures it.
    """
    terms = (_key_term(index, token) for index, token in enumerate(_TOKEN.findall(question)))
    return frozenset(term for term in terms if term is not None)


def _key_term(index: int, token: str) -> str | None:
    """The key term a token stands for (None if it is not one)."""
    low = token.lower()
    if low.endswith("n't") or low in NEGATIONS:
        return "not"
    if low[0].isdigit():
        return low.replace(",", "")
    if low in NUMBER_WORDS:
        return NUMBER_WORDS[low]
    stem = next((stem for stem in DIRECTION_STEMS if low.startswith(stem)), None)
    if stem is not None:
        return stem
    if low != "i" and (any(c.isupper() for c in token[1:]) or (index > 0 and token[0].isupper())):
        return low
    return None


def normalize_question(question: str) -> str:
    """The exact cache's form of a question: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


class CorpusVersions:
    """The corpus version of a tenant, read from its document records.

    Every document change (upload indexed, new version, ACL change, delete,
    re-ingest, failure) updates its record, so the count, the version sum,
    the indexed count, the chunk sum and the latest ``updated_at`` of the
    tenant's records together change with any of them; deleted documents stay
    as tombstones, so nothing goes back to an earlier value. One indexed
    aggregate query, no migration.

    Args:
        db: The metadata database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def version(self, tenant_id: str) -> str:
        """The tenant's current corpus version (an opaque string)."""
        query = select(
            func.count(DocumentRecord.id),
            func.coalesce(func.sum(DocumentRecord.version), 0),
            func.coalesce(func.sum(case((DocumentRecord.status == "indexed", 1), else_=0)), 0),
            func.coalesce(func.sum(DocumentRecord.chunk_count), 0),
            func.max(DocumentRecord.updated_at),
        ).where(DocumentRecord.tenant_id == tenant_id)
        with self.db.session() as session:
            row = session.execute(query).one()
        count, versions, indexed, chunks, latest = row
        stamp = latest.isoformat() if latest is not None else "-"
        return f"{count}.{versions}.{indexed}.{chunks}.{stamp}"


class AnswerStore(Protocol):
    """Where cached answers live (in process by default; Redis later)."""

    def get(self, key: str) -> Answer | None:
        """The answer stored under an exact key."""
        ...

    def put(self, key: str, answer: Answer) -> None:
        """Store an answer under an exact key."""
        ...

    def nearest(self, scope: str, vector: np.ndarray) -> tuple[str, float] | None:
        """The exact key of the scope's most similar question and the cosine similarity."""
        ...

    def remember(self, scope: str, vector: np.ndarray, key: str) -> None:
        """Keep a question's vector and its exact key in its scope."""
        ...


@dataclass
class _Scope:
    """The question vectors of one scope and their exact keys, oldest first."""

    vectors: list[np.ndarray] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    matrix: np.ndarray | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class MemoryAnswerStore:
    """In-process store: an LRU of exact entries and an LRU of semantic scopes, with a TTL.

    A semantic scope keeps vectors and exact keys only, so the answers held are
    bounded by `size` (an evicted or expired answer is a semantic miss too).

    Args:
        size: Most answers kept (exact entries); scopes kept: ``max(8, size // 64)``.
        ttl_s: Life of an entry.
        scope_size: Most questions kept per semantic scope (oldest dropped).
    """

    def __init__(self, size: int, ttl_s: float, scope_size: int) -> None:
        self.ttl_s = ttl_s
        self.scope_size = scope_size
        self._exact: LRU[str, Answer] = LRU(size, ttl_s)
        self._scopes: LRU[str, _Scope] = LRU(max(8, size // 64), ttl_s)
        self._scopes_lock = threading.Lock()

    def get(self, key: str) -> Answer | None:
        """The answer stored under an exact key."""
        return self._exact.get(key)

    def put(self, key: str, answer: Answer) -> None:
        """Store an answer under an exact key."""
        self._exact.put(key, answer)

    def nearest(self, scope: str, vector: np.ndarray) -> tuple[str, float] | None:
        """The exact key of the scope's most similar question and its cosine similarity."""
        entry = self._scopes.get(scope)
        if entry is None:
            return None
        with entry.lock:
            if not entry.vectors:
                return None
            if entry.matrix is None:
                entry.matrix = np.vstack(entry.vectors)
            scores = entry.matrix @ vector
            best = int(np.argmax(scores))
            return entry.keys[best], float(scores[best])

    def remember(self, scope: str, vector: np.ndarray, key: str) -> None:
        """Keep a question's vector and exact key in its scope (bounded, oldest dropped)."""
        with self._scopes_lock:
            entry = self._scopes.get(scope)
            if entry is None:
                entry = _Scope()
                self._scopes.put(scope, entry)
        with entry.lock:
            if key in entry.keys:
                return
            entry.vectors.append(np.asarray(vector, dtype=np.float32))
            entry.keys.append(key)
            del entry.vectors[: -self.scope_size]
            del entry.keys[: -self.scope_size]
            entry.matrix = None


@dataclass
class Lookup:
    """One question's cache lookup: its keys, and the answer found (if any)."""

    question: str
    scope: str
    key: str
    vector: np.ndarray | None = None
    hit: Answer | None = None


class AnswerCache:
    """Exact and semantic answer caches in front of the QA pipeline.

    Args:
        settings: Cache settings (sizes, TTL, semantic threshold).
        embedder: Embeds questions for the semantic cache (its query cache is
            shared with retrieval, so a miss embeds the question once).
        versions: The tenants' corpus versions.
        store: Where answers live (default: `MemoryAnswerStore`).
    """

    def __init__(
        self,
        settings: CacheSettings,
        *,
        embedder: Embedder,
        versions: CorpusVersions,
        store: AnswerStore | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.versions = versions
        self.store: AnswerStore = store or MemoryAnswerStore(
            settings.answer_size, settings.answer_ttl_s, settings.semantic_scope_size
        )

    def lookup(
        self,
        question: str,
        principal: Principal,
        *,
        history: Sequence[Turn],
        use_llm: bool,
        fingerprint: str,
    ) -> Lookup:
        """Look `question` up for `principal`; ``hit`` is the reusable answer, marked, or None.

        The corpus version is read before anything else, so an answer computed
        after this lookup is stored under the version its retrieval could see
        or an older one, never a newer one.
        """
        scope = _digest(
            [
                principal.tenant_id,
                principal.visible_groups,
                self.versions.version(principal.tenant_id),
                fingerprint,
                use_llm,
                [[turn.role, turn.content] for turn in history],
            ]
        )
        lookup = Lookup(
            question=question, scope=scope, key=f"{scope}:{normalize_question(question)}"
        )
        started = time.perf_counter()
        exact = self.store.get(lookup.key)
        record_cache("answer_exact", hit=exact is not None)
        if exact is not None:
            lookup.hit = _served(exact, question, "exact", started)
            return lookup
        if not self.settings.semantic or history:
            return lookup
        lookup.vector = self.embedder.embed_query(question)
        near = self.store.nearest(scope, lookup.vector)
        cached: Answer | None = None
        if near is not None and near[1] >= self.settings.semantic_threshold:
            cached = self.store.get(near[0])
            if cached is not None and key_terms(cached.question) != key_terms(question):
                cached = None
        record_cache("answer_semantic", hit=cached is not None)
        if cached is not None:
            lookup.hit = _served(cached, question, "semantic", started)
        return lookup

    def remember(self, lookup: Lookup, answer: Answer) -> bool:
        """Store a freshly computed answer if it may be reused; whether it was stored."""
        if not cacheable(answer):
            return False
        stored = answer.model_copy(deep=True)
        self.store.put(lookup.key, stored)
        if lookup.vector is not None:
            self.store.remember(lookup.scope, lookup.vector, lookup.key)
        return True


def cacheable(answer: Answer) -> bool:
    """Whether an answer may be reused: verified, or a genuine decline; never after a failure."""
    if answer.cached is not None or answer.degraded or answer.tier == "none":
        return False
    if answer.verification is not None and "unavailable" in answer.verification.verifier:
        return False
    return not answer.declined or answer.decline_reason in CACHEABLE_DECLINES


def _served(answer: Answer, question: str, kind: str, started: float) -> Answer:
    """A cached answer as served for `question`: marked, no LLM usage, lookup timing."""
    ms = round((time.perf_counter() - started) * 1000, 2)
    return answer.model_copy(
        deep=True,
        update={
            "answer_id": new_answer_id(),  # a new serve: feedback names this one
            "question": question,
            "cached": kind,
            "cached_question": answer.question if kind == "semantic" else "",
            "usage": {},
            "timings_ms": {"cache": ms, "total": ms},
        },
    )


def _digest(parts: list[object]) -> str:
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def settings_fingerprint(*parts: str) -> str:
    """A short hash of the answer-affecting settings (JSON dumps) and available tiers."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]
