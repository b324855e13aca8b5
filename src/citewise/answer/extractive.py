"""The extractive tier: an answer composed of the passages' own best sentences.

It never fails and never invents: every sentence is a quote with its citation.
Its sentence ranking also serves as the relevance gate that decides whether the
documents can answer the question at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from citewise.answer.citations import with_marks
from citewise.answer.sentences import split_sentences
from citewise.answer.support import lexical_support
from citewise.core.models import Embedder
from citewise.core.schemas import AnswerSentence, Citation

MIN_WORDS = 4
SEMANTIC_WEIGHT = 0.7


@dataclass(frozen=True)
class RankedSentence:
    """A passage sentence with its relevance to the question."""

    text: str
    number: int
    start: int
    end: int
    relevance: float


def rank_sentences(
    question: str, passages: list[Citation], embedder: Embedder
) -> list[RankedSentence]:
    """Rank every sentence of the passages by relevance to the question, best first.

    Relevance = 0.7 * cosine(question, sentence) + 0.3 * share of the question's
    content terms that occur in the sentence.
    """
    candidates = [
        (passage.number, sentence)
        for passage in passages
        for sentence in split_sentences(passage.passage)
        if len(sentence.text.split()) >= MIN_WORDS
    ]
    if not candidates:
        return []
    vectors = embedder.embed([question] + [s.text for _, s in candidates])
    cosines = vectors[1:] @ vectors[0]
    ranked = [
        RankedSentence(
            text=sentence.text,
            number=number,
            start=sentence.start,
            end=sentence.end,
            relevance=round(
                SEMANTIC_WEIGHT * max(0.0, float(cosine))
                + (1 - SEMANTIC_WEIGHT) * lexical_support(question, sentence.text),
                4,
            ),
        )
        for (number, sentence), cosine in zip(candidates, np.asarray(cosines), strict=True)
    ]
    return sorted(ranked, key=lambda r: (-r.relevance, r.number, r.start))


def compose_extractive(
    ranked: list[RankedSentence], *, max_sentences: int, min_relevance: float
) -> list[AnswerSentence]:
    """Pick the best sentences (at most two per passage) above `min_relevance`.

    The chosen sentences keep passage order so the answer reads naturally.
    """
    chosen: list[RankedSentence] = []
    per_passage: dict[int, int] = {}
    for candidate in ranked:
        if len(chosen) == max_sentences or candidate.relevance < min_relevance:
            break
        if per_passage.get(candidate.number, 0) >= 2:
            continue
        per_passage[candidate.number] = per_passage.get(candidate.number, 0) + 1
        chosen.append(candidate)
    chosen.sort(key=lambda r: (r.number, r.start))
    return [
        AnswerSentence(text=with_marks(c.text, [c.number]), citations=[c.number], support=1.0)
        for c in chosen
    ]
