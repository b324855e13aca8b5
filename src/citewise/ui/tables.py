"""Rows of the admin tables (documents, jobs, API keys) from the API's JSON, and their filters.

Pure functions, tested without Streamlit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

Json = dict[str, Any]

DOCUMENT_STATUSES = ("indexed", "processing", "pending", "failed", "deleted")
EVERYONE = "everyone"


def when(value: Any) -> str:
    """An API timestamp as ``YYYY-MM-DD HH:MM`` (UTC); '' for none."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M")


def groups_text(groups: Iterable[str] | None) -> str:
    """ACL groups as a comma-separated list ("everyone" for none, or ``*``)."""
    names = [g for g in groups or [] if g]
    if not names or "*" in names:
        return EVERYONE
    return ", ".join(names)


def parse_groups(text: str) -> list[str]:
    """Groups typed as a comma-separated list: trimmed, blanks and repeats dropped."""
    seen: dict[str, None] = {}
    for part in text.split(","):
        if part.strip():
            seen.setdefault(part.strip(), None)
    return list(seen)


def filter_documents(documents: list[Json], query: str) -> list[Json]:
    """The documents whose id, file name or title contains every word of `query`."""
    words = query.casefold().split()
    if not words:
        return list(documents)

    def haystack(doc: Json) -> str:
        return " ".join(str(doc.get(k) or "") for k in ("doc_id", "filename", "title")).casefold()

    return [doc for doc in documents if all(word in haystack(doc) for word in words)]


def document_rows(documents: list[Json]) -> list[Json]:
    """One documents-table row per document."""
    return [
        {
            "Document": str(doc.get("doc_id", "")),
            "Title": str(doc.get("title") or ""),
            "Status": str(doc.get("status", "")),
            "Version": int(doc.get("version") or 0) or None,
            "Passages": int(doc.get("chunk_count") or 0),
            "Readable by": groups_text(doc.get("acl_groups")),
            "Updated": when(doc.get("updated_at")),
            "Problem": str(doc.get("error") or ""),
        }
        for doc in documents
    ]


def job_rows(jobs: list[Json]) -> list[Json]:
    """One row per ingestion job, as listed (newest first)."""
    return [
        {
            "Job": str(job.get("id", "")),
            "Kind": str(job.get("kind", "")),
            "Status": str(job.get("status", "")),
            "Files": f"{job.get('files_done', 0)} / {job.get('files_total', 0)}",
            "Failed": int(job.get("files_failed") or 0),
            "Passages": f"{job.get('chunks_done', 0)} / {job.get('chunks_total', 0)}",
            "Started": when(job.get("created_at")),
            "Finished": when(job.get("finished_at")),
            "Problem": str(job.get("error") or ""),
        }
        for job in jobs
    ]


def key_rows(keys: list[Json], own_prefix: str = "") -> list[Json]:
    """One row per API key; the caller's own key is marked."""
    return [
        {
            "Prefix": str(key.get("prefix", "")),
            "Name": (
                str(key.get("name") or "")
                + (" (this session)" if own_prefix and key.get("prefix") == own_prefix else "")
            ).strip(),
            "Role": str(key.get("role", "")),
            "Groups": groups_text(key.get("groups")),
            "Acts as": str(key.get("user") or ""),
            "Created": when(key.get("created_at")),
            "Last used": when(key.get("last_used_at")) or "never",
            "Revoked": when(key.get("revoked_at")),
        }
        for key in keys
    ]


def key_label(key: Json) -> str:
    """How a key is named in a chooser: prefix, name, role."""
    name = str(key.get("name") or "unnamed")
    return f"{key.get('prefix', '')} · {name} · {key.get('role', '')}"
