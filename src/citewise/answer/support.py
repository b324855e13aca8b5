"""Fast support scores: how well a passage backs a sentence, or matches a question.

Lexical overlap of stemmed content terms, a hard check that every number in the
sentence appears in the passage, and embedding similarity. Cheap enough to run
on every served answer; stronger verifiers (NLI, LLM judge) can replace it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from citewise.core.models import Embedder
from citewise.retrieval.sparse import tokenize

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_CITATION = re.compile(r"\[\d+\]")


def content_terms(text: str) -> set[str]:
    """Stemmed non-stopword terms of `text`, citation markers removed."""
    return set(tokenize(_CITATION.sub(" ", text)))


def numbers_in(text: str) -> set[str]:
    """Numbers written in `text` (``1,200`` and ``1200`` both become ``1200``)."""
    return {n.replace(",", "") for n in _NUMBER.findall(_CITATION.sub(" ", text))}


def lexical_support(sentence: str, passage: str) -> float:
    """Share of the sentence's content terms that occur in the passage (0..1)."""
    terms = content_terms(sentence)
    if not terms:
        return 0.0
    return len(terms & content_terms(passage)) / len(terms)


def numbers_supported(sentence: str, passage: str) -> bool:
    """Whether every number in the sentence also appears in the passage."""
    return numbers_in(sentence) <= numbers_in(passage)


class SupportScorer:
    """Scores sentences against passages with lexical, numeric and embedding evidence.

    Args:
        embedder: Dense embedder used for semantic similarity.
        lexical_weight: Weight of lexical overlap; the rest goes to embedding similarity.
    """

    def __init__(self, embedder: Embedder, *, lexical_weight: float = 0.5) -> None:
        self.embedder = embedder
        self.lexical_weight = lexical_weight

    def score_many(self, sentences: Sequence[str], passages: Sequence[str]) -> list[float]:
        """Support of each sentence by its paired passage (same index), in 0..1.

        A sentence whose numbers are missing from the passage scores at most 0.2.
        """
        if not sentences:
            return []
        clean = [_CITATION.sub("", s).strip() for s in sentences]
        vectors = self.embedder.embed(list(clean) + list(passages))
        sent_vecs, pass_vecs = vectors[: len(clean)], vectors[len(clean) :]
        cosines = np.sum(sent_vecs * pass_vecs, axis=1)
        scores = []
        for sentence, passage, cosine in zip(clean, passages, cosines, strict=True):
            score = self.lexical_weight * lexical_support(sentence, passage) + (
                1 - self.lexical_weight
            ) * max(0.0, float(cosine))
            if not numbers_supported(sentence, passage):
                score = min(score, 0.2)
            scores.append(round(score, 4))
        return scores
