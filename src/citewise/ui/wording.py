"""Plain words for what an answer's fields mean, and passages with their quote marked.

Pure functions over the API's JSON, so they are tested without Streamlit.
"""

from __future__ import annotations

import html
from typing import Any

Json = dict[str, Any]

DECLINE_REASONS = {
    "gate": "None of the documents you can read seem to cover this question.",
    "model": "The documents that came closest do not contain the answer.",
    "unsupported": (
        "An answer was drafted, but the documents did not back it up, so Citewise "
        "withheld it rather than guess."
    ),
    "injection": (
        "The question asks Citewise to ignore or change its instructions, so it was not answered."
    ),
    "none": "No answering service is available right now; try again in a few minutes.",
}


def decline_sentence(reason: str) -> str:
    """Why Citewise did not answer, for the person who asked."""
    return DECLINE_REASONS.get(reason, "Citewise could not find a supported answer.")


def where(citation: Json) -> str:
    """Where a cited passage comes from: title or file, page, section."""
    parts = [str(citation.get("title") or citation.get("source") or citation.get("doc_id", ""))]
    if citation.get("page"):
        parts.append(f"page {citation['page']}")
    if citation.get("section"):
        parts.append(str(citation["section"]))
    return " · ".join(part for part in parts if part)


def groundedness(answer: Json) -> tuple[str, str]:
    """(level, sentence) on how well the answer is supported; level is good, partial or none."""
    verification = answer.get("verification") or {}
    if answer.get("declined") or not verification:
        return "none", "Not checked: no answer was given."
    total = int(verification.get("sentences", 0))
    supported = int(verification.get("supported", 0))
    score = float(verification.get("score", 0.0))
    removed = int(verification.get("removed", 0))
    marked = int(verification.get("marked", 0))
    text = f"{supported} of {total} sentences supported by the cited passages (score {score:.2f})"
    if removed:
        text += f"; {removed} unsupported sentence{'s' * (removed > 1)} removed"
    if marked:
        text += f"; {marked} marked as unsupported"
    level = "good" if total and supported == total and not marked else "partial"
    return level, text + "."


def tier_sentence(answer: Json) -> str:
    """Who answered, in words; a degraded answer says that it is one."""
    tier = str(answer.get("tier") or "")
    if answer.get("degraded"):
        return (
            f"The main language model was unavailable, so this answer comes from the "
            f"“{tier}” fallback; it may be terser than usual."
        )
    return f"Answered by “{tier}”." if tier else ""


def marked_passage(citation: Json) -> str:
    """The passage as safe HTML with its supporting quote highlighted."""
    passage = str(citation.get("passage", ""))
    start, end = int(citation.get("start", -1)), int(citation.get("end", -1))
    if not (0 <= start < end <= len(passage)):
        quote = str(citation.get("quote", ""))
        found = passage.find(quote) if quote else -1
        start, end = (found, found + len(quote)) if found >= 0 else (-1, -1)
    if start < 0:
        return html.escape(passage)
    return (
        html.escape(passage[:start])
        + "<mark>"
        + html.escape(passage[start:end])
        + "</mark>"
        + html.escape(passage[end:])
    )
