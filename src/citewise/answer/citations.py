"""Citation handling: parse ``[n]`` markers, keep only those that resolve, locate quotes."""

from __future__ import annotations

import re

from citewise.answer.sentences import split_sentences
from citewise.answer.support import lexical_support
from citewise.core.schemas import Citation

CITATION_MARK = re.compile(r"\[(\d+)\]")


def cited_numbers(sentence: str) -> list[int]:
    """Citation numbers in a sentence, in order, without repeats."""
    seen: list[int] = []
    for match in CITATION_MARK.finditer(sentence):
        number = int(match.group(1))
        if number not in seen:
            seen.append(number)
    return seen


def strip_marks(sentence: str) -> str:
    """The sentence without its citation markers."""
    return re.sub(r"\s+([.!?,;:])", r"\1", CITATION_MARK.sub("", sentence)).strip()


def with_marks(sentence: str, numbers: list[int]) -> str:
    """`sentence` with exactly `numbers` as markers before its final punctuation."""
    text = strip_marks(sentence)
    marks = "".join(f"[{n}]" for n in numbers)
    if text and text[-1] in ".!?":
        return f"{text[:-1]} {marks}{text[-1]}"
    return f"{text} {marks}."


def locate_quote(sentence: str, citation: Citation) -> Citation:
    """Copy of `citation` with the passage sentence that best supports `sentence`."""
    best, best_score = None, -1.0
    for candidate in split_sentences(citation.passage):
        score = lexical_support(sentence, candidate.text)
        if score > best_score:
            best, best_score = candidate, score
    if best is None:
        return citation
    return citation.model_copy(update={"quote": best.text, "start": best.start, "end": best.end})
