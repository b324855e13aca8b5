"""Sentence splitting with character offsets (answers and passages)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at . ! or ? (optionally followed by a closing quote/bracket or a
# citation like "[2]") and whitespace, or at a line break. Common abbreviations and
# decimals do not end a sentence.
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "Dr.", "Mr.", "Mrs.", "Ms.", "No.", "approx.")
_BOUNDARY = re.compile(r"(?<=[.!?])(?:\s*\[\d+\](?:\s*\[\d+\])*)?[\"')\]]*\s+|\n+")


@dataclass(frozen=True)
class Sentence:
    """A sentence and its [start, end) character span in the source text."""

    text: str
    start: int
    end: int


def split_sentences(text: str) -> list[Sentence]:
    """Split `text` into sentences, keeping each one's character span.

    Args:
        text: Any prose, possibly with ``[n]`` citation markers and line breaks.

    Returns:
        Non-empty sentences in order.
    """
    sentences: list[Sentence] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        candidate = text[start : match.start()]
        if match.group().strip() == "" and candidate.rstrip().endswith(_ABBREVIATIONS):
            continue
        # A citation marker right after the full stop belongs to the sentence before it.
        end = match.start() + len(match.group().rstrip())
        _append(sentences, text, start, end)
        start = match.end()
    _append(sentences, text, start, len(text))
    return sentences


def _append(out: list[Sentence], text: str, start: int, end: int) -> None:
    raw = text[start:end]
    stripped = raw.strip()
    if not any(ch.isalnum() for ch in stripped):
        return
    offset = start + (len(raw) - len(raw.lstrip()))
    out.append(Sentence(stripped, offset, offset + len(stripped)))
