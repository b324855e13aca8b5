"""A tenant's statistics (``GET /v1/tenants/{t}/stats``) as tiles and chart data.

Pure functions over the API's JSON, tested without Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from citewise.ui.tables import when

Json = dict[str, Any]


@dataclass(frozen=True)
class Tile:
    """One figure: its label, value as shown, and what it counts."""

    label: str
    value: str
    help: str


def _int(part: Any, field: str) -> int:
    return int((part or {}).get(field) or 0) if isinstance(part, dict) else 0


def size_text(n_bytes: int) -> str:
    """Bytes as a short size (``12.3 MB``)."""
    size = float(n_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def share_text(part: int, whole: int) -> str:
    """`part` of `whole` as a percentage ('–' when there is nothing to share)."""
    return f"{100 * part / whole:.0f}%" if whole else "–"


def tiles(stats: Json) -> list[Tile]:
    """The headline figures: corpus, answers and feedback."""
    documents, jobs = stats.get("documents"), stats.get("jobs")
    answers, feedback = stats.get("answers"), stats.get("feedback")
    indexed = _int((documents or {}).get("by_status"), "indexed")
    served, declined = _int(answers, "total"), _int(answers, "declined")
    return [
        Tile(
            "Documents indexed",
            f"{indexed}",
            f"{_int(documents, 'total')} documents in all (not counting deleted ones).",
        ),
        Tile(
            "Passages",
            f"{_int(documents, 'chunks')}",
            "Indexed passages (chunks) that answers are drawn from.",
        ),
        Tile(
            "Stored files",
            size_text(_int(documents, "indexed_bytes")),
            "Size of the indexed documents' original files.",
        ),
        Tile(
            "Answers served",
            f"{served}",
            f"{_int(answers, 'last_7_days')} in the last 7 days.",
        ),
        Tile(
            "Declined",
            share_text(declined, served),
            f"{declined} questions the documents did not answer; "
            f"{_int(answers, 'degraded')} answers came from a fallback model.",
        ),
        Tile(
            "Thumbs up / down",
            f"{_int(feedback, 'up')} / {_int(feedback, 'down')}",
            f"{_int(feedback, 'with_comment')} ratings carry a comment.",
        ),
        Tile(
            "Jobs running / queued",
            f"{_int(jobs, 'running')} / {_int(jobs, 'queued')}",
            f"{_int(jobs, 'total')} ingestion jobs in all.",
        ),
    ]


def by_status(stats: Json, part: str) -> dict[str, int]:
    """Counts per status of ``documents`` or ``jobs`` (statuses with none left out)."""
    counts = (stats.get(part) or {}).get("by_status") or {}
    return {str(status): int(n) for status, n in counts.items() if int(n or 0) > 0}


def freshness(stats: Json) -> str:
    """When documents were last ingested and the last answer served, in a sentence."""
    ingested = when((stats.get("documents") or {}).get("last_ingest_at"))
    answered = when((stats.get("answers") or {}).get("last_answer_at"))
    parts = [
        f"last ingestion {ingested} UTC" if ingested else "nothing ingested by a job yet",
        f"last answer {answered} UTC" if answered else "no answers served yet",
    ]
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
