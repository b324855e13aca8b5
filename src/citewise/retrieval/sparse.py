"""BM25 as Qdrant sparse vectors.

Documents store the BM25 term-frequency part of each term's weight,
``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``; queries store 1.0
per distinct term; the collection's sparse vector uses Qdrant's IDF modifier,
so the index computes ``idf(term)`` from its own statistics at query time and the
dot product is the BM25 score. The BM25 signal therefore lives in the index and
scales with it, instead of in a side structure in the application.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from functools import lru_cache

import snowballstemmer  # type: ignore[import-untyped]

from citewise.core.schemas import SparseVector

ENGLISH_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    """.split()
)

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


_local = threading.local()


def _stemmer() -> snowballstemmer.stemmer:
    """A stemmer per thread: a Snowball stemmer keeps the word it works on in its state."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer


@lru_cache(maxsize=1 << 18)
def _stem(word: str) -> str:
    """Snowball stem of a word, cached: stemming is most of the cost of BM25 encoding."""
    return str(_stemmer().stemWord(word))


def tokenize(text: str) -> list[str]:
    """Lowercase, split on non-alphanumerics, drop English stopwords, Snowball-stem.

    Args:
        text: Any text.

    Returns:
        The stemmed terms in order (duplicates kept).
    """
    return [_stem(w) for w in _TOKEN.findall(text.lower()) if w not in ENGLISH_STOPWORDS]


def term_index(term: str) -> int:
    """Stable 31-bit index of a term (blake2b), so no vocabulary has to be stored."""
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


class BM25Encoder:
    """Turns text into BM25 sparse vectors for Qdrant's IDF-modified sparse index.

    Args:
        k1: Term-frequency saturation.
        b: Length normalisation strength.
        avg_len: Average document length in terms; a fixed estimate, because the
            index does not expose corpus statistics for the TF part.
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, avg_len: float = 100.0) -> None:
        self.k1 = k1
        self.b = b
        self.avg_len = avg_len

    def encode_document(self, text: str) -> SparseVector:
        """Sparse vector of a passage: BM25 term-frequency weight per term."""
        return self.encode_terms(tokenize(text))

    def encode_terms(self, terms: list[str]) -> SparseVector:
        """Sparse vector of an already tokenized passage (see `tokenize`)."""
        norm = self.k1 * (1.0 - self.b + self.b * len(terms) / self.avg_len)
        weights: dict[int, float] = {}
        for term, tf in Counter(terms).items():
            idx = term_index(term)
            weights[idx] = weights.get(idx, 0.0) + tf * (self.k1 + 1.0) / (tf + norm)
        return _to_sparse(weights)

    def encode_query(self, text: str) -> SparseVector:
        """Sparse vector of a query: 1.0 per distinct term."""
        return _to_sparse({term_index(term): 1.0 for term in set(tokenize(text))})


def _to_sparse(weights: dict[int, float]) -> SparseVector:
    indices = sorted(weights)
    return SparseVector(indices=indices, values=[weights[i] for i in indices])
