"""Fast support checks: how well a passage backs a sentence, or matches a question.

Lexical overlap of stemmed content terms and embedding similarity give a score;
key facts (numbers, dates, names) are a hard check: a sentence that states a
number or a name its passage does not contain is capped at `FACT_CAP`, whatever
its overlap. Cheap enough to run on every served answer; the LLM judge in
`citewise.answer.judge` is the stronger, slower alternative.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from citewise.core.models import Embedder
from citewise.retrieval.sparse import tokenize

FACT_CAP = 0.2
"""Highest score of a sentence whose key facts are missing from the passage."""

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_CITATION = re.compile(r"\[\d+\]")
_WORD = re.compile(r"[^\W\d_][\w'’.-]*[^\W_]|[^\W\d_]", re.UNICODE)
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
    if value >= 2  # "one" and "zero" are rarely quantities ("one day", "zero trust")
}
_NUMBER_WORDS |= {"third": "3", "fourth": "4", "fifth": "5", "double": "2", "twice": "2"}
_NOT_NAMES = frozenset({"i", "a", "an", "the"})


def content_terms(text: str) -> set[str]:
    """Stemmed non-stopword terms of `text`, citation markers removed."""
    return set(tokenize(_CITATION.sub(" ", text)))


def numbers_in(text: str) -> set[str]:
    """Numbers in `text`, as digits or number words (``1,200`` -> ``1200``, ``six`` -> ``6``)."""
    clean = _CITATION.sub(" ", text)
    found = {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(clean)}
    words = {_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", clean.lower()) if w in _NUMBER_WORDS}
    return found | words


def names_in(text: str) -> set[str]:
    """Capitalised words that are not a sentence's first word (names, places, months, acronyms).

    A first word counts only when it is not a plain capitalised word (``HR``,
    ``SecureLink``). Returned lowercased.
    """
    names: set[str] = set()
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n+", _CITATION.sub(" ", text)):
        for position, match in enumerate(_WORD.finditer(sentence)):
            word = match.group().rstrip(".")
            if not word[:1].isupper() or word.lower() in _NOT_NAMES:
                continue
            if position == 0 and not any(c.isupper() for c in word[1:]):
                continue
            names.add(word.lower())
    return names


def missing_facts(sentence: str, passage: str) -> list[str]:
    """The sentence's numbers and names that do not occur in the passage, in order."""
    numbers = numbers_in(passage)
    passage_lower = passage.lower()
    missing = sorted(numbers_in(sentence) - numbers)
    missing += sorted(n for n in names_in(sentence) if n not in passage_lower)
    return missing


def lexical_support(sentence: str, passage: str) -> float:
    """Share of the sentence's content terms that occur in the passage (0..1)."""
    terms = content_terms(sentence)
    if not terms:
        return 0.0
    return len(terms & content_terms(passage)) / len(terms)


def numbers_supported(sentence: str, passage: str) -> bool:
    """Whether every number in the sentence also appears in the passage."""
    return numbers_in(sentence) <= numbers_in(passage)


@dataclass(frozen=True)
class SupportCheck:
    """How well one passage supports one sentence."""

    score: float
    missing: list[str] = field(default_factory=list)


class FastVerifier:
    """Scores sentences against passages with lexical, embedding and key-fact evidence.

    score = ``lexical_weight`` * lexical overlap + (1 - ``lexical_weight``) * cosine,
    capped at `FACT_CAP` when a number or name of the sentence is missing from
    the passage (unless ``check_facts`` is off).

    Args:
        embedder: Dense embedder used for semantic similarity.
        lexical_weight: Weight of lexical overlap; the rest goes to embedding similarity.
        check_facts: Apply the key-fact cap.
    """

    def __init__(
        self, embedder: Embedder, *, lexical_weight: float = 0.5, check_facts: bool = True
    ) -> None:
        self.embedder = embedder
        self.lexical_weight = lexical_weight
        self.check_facts = check_facts
        self.name = "fast"

    def check_many(self, sentences: Sequence[str], passages: Sequence[str]) -> list[SupportCheck]:
        """Support of each sentence by its paired passage (same index), scores in 0..1."""
        if not sentences:
            return []
        clean = [_CITATION.sub("", s).strip() for s in sentences]
        cosines = np.zeros(len(clean), dtype=np.float32)
        if self.lexical_weight < 1.0:
            vectors = self.embedder.embed(list(clean) + list(passages))
            cosines = np.sum(vectors[: len(clean)] * vectors[len(clean) :], axis=1)
        checks = []
        for sentence, passage, cosine in zip(clean, passages, cosines, strict=True):
            score = self.lexical_weight * lexical_support(sentence, passage) + (
                1 - self.lexical_weight
            ) * max(0.0, float(cosine))
            missing = missing_facts(sentence, passage) if self.check_facts else []
            if missing:
                score = min(score, FACT_CAP)
            checks.append(SupportCheck(score=round(score, 4), missing=missing))
        return checks
