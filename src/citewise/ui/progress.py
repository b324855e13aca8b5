"""An ingestion job's progress: watched until it ends, shown as bars and a per-file table.

`watch` polls within one script run (the browser sees each update through a
placeholder); the wording functions are pure, tested without Streamlit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import streamlit as st

from citewise.ui.client import ApiError, CitewiseClient

Json = dict[str, Any]

FINISHED = frozenset({"succeeded", "partial", "failed", "dead"})
"""Job statuses after which nothing changes any more."""

JOB_WORDS = {
    "queued": "Waiting to start",
    "running": "Reading and indexing",
    "succeeded": "Finished",
    "partial": "Finished with some files failed",
    "failed": "Failed",
    "dead": "Stopped after repeated failures",
}
FILE_WORDS = {
    "queued": "Waiting",
    "processing": "Reading and indexing",
    "indexed": "Indexed",
    "unchanged": "Unchanged (same content already indexed)",
    "failed": "Failed",
    "superseded": "Replaced by a newer upload",
}
RETRIED = frozenset({0, 429, 502, 503, 504})
"""Statuses of a failed poll worth another try (unreachable, rate limited, not ready)."""

POLL_INTERVAL_S = 1.0
"""Between polls: well under a key's request limit (120 a minute by default)."""
WATCH_LIMIT_S = 15 * 60.0


def is_finished(job: Json) -> bool:
    """Whether the job has ended (succeeded, partial, failed or dead)."""
    return str(job.get("status", "")) in FINISHED


def refused_positions(submitted: Json) -> frozenset[int]:
    """The files refused at upload: those already failed in the job the upload returned."""
    return frozenset(
        int(f.get("position", -1))
        for f in submitted.get("files") or []
        if f.get("status") == "failed" and f.get("error_code")
    )


def _ratio(done: Any, total: Any) -> float:
    done, total = int(done or 0), int(total or 0)
    return min(1.0, done / total) if total > 0 else 0.0


def files_progress(job: Json) -> tuple[float, str]:
    """(fraction, caption) of the job's files done."""
    done, total = int(job.get("files_done") or 0), int(job.get("files_total") or 0)
    failed = int(job.get("files_failed") or 0)
    text = f"{done} of {total} file{'s' * (total != 1)} done"
    if failed:
        text += f", {failed} failed"
    return _ratio(done, total), text


def chunks_progress(job: Json) -> tuple[float, str]:
    """(fraction, caption) of the passages embedded and indexed so far."""
    done, total = int(job.get("chunks_done") or 0), int(job.get("chunks_total") or 0)
    if total == 0:
        return 0.0, "Passages: counted once a file has been read"
    return _ratio(done, total), f"{done} of {total} passages indexed"


def file_status(file: Json, refused: Collection[int] = ()) -> str:
    """A file's state in words (refused at upload, or what the ingestion made of it)."""
    if int(file.get("position", -1)) in refused:
        return "Refused"
    status = str(file.get("status", ""))
    return FILE_WORDS.get(status, status.capitalize())


def file_problem(file: Json) -> str:
    """Why a file failed, as a sentence ('' when it did not)."""
    error = str(file.get("error") or "").strip()
    if not error:
        return ""
    error = error[0].upper() + error[1:]
    return error if error.endswith((".", "!", "?")) else error + "."


def file_rows(job: Json, refused: Collection[int] = ()) -> list[Json]:
    """One table row per file of the job, in upload order."""
    rows = []
    for file in sorted(job.get("files") or [], key=lambda f: int(f.get("position", 0))):
        total = int(file.get("chunks_total") or 0)
        done = int(file.get("chunks_done") or 0)
        rows.append(
            {
                "File": str(file.get("filename", "")),
                "Status": file_status(file, refused),
                "Version": file.get("version") or None,
                "Passages": f"{done} / {total}" if total else "",
                "Problem": file_problem(file),
            }
        )
    return rows


def summary(job: Json, refused: Collection[int] = ()) -> tuple[str, str]:
    """(level, sentence) on how the job ended; level is success, warning, error or info."""
    status = str(job.get("status", ""))
    total = int(job.get("files_total") or 0)
    failed = int(job.get("files_failed") or 0)
    files = job.get("files") or []
    indexed = sum(f.get("status") == "indexed" for f in files)
    unchanged = sum(f.get("status") == "unchanged" for f in files)
    n_refused = sum(int(f.get("position", -1)) in refused for f in files)
    parts = []
    if indexed:
        parts.append(f"{indexed} indexed")
    if unchanged:
        parts.append(f"{unchanged} unchanged")
    if n_refused:
        parts.append(f"{n_refused} refused")
    if failed - n_refused > 0:
        parts.append(f"{failed - n_refused} failed")
    counts = f" ({', '.join(parts)})" if parts else ""
    noun = f"{total} file{'s' * (total != 1)}"
    if status == "succeeded":
        return "success", f"All {noun} processed{counts}. They can be asked about now."
    if status == "partial":
        return "warning", f"Some of the {noun} could not be indexed{counts}; see the table."
    if status in ("failed", "dead"):
        reason = file_problem({"error": job.get("error")})
        if status == "dead":
            reason = (reason + " " if reason else "") + "Citewise gave up after repeated tries."
        return "error", f"None of the {noun} could be indexed{counts}. {reason}".strip()
    return "info", f"{JOB_WORDS.get(status, status)}: {noun}{counts}."


def watch(
    fetch: Callable[[], Json],
    show: Callable[[Json], None],
    *,
    first: Json | None = None,
    interval_s: float = POLL_INTERVAL_S,
    limit_s: float = WATCH_LIMIT_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Json:
    """Show the job, poll it until it has ended or `limit_s` passed; returns the last state.

    Polls that fail for a passing reason (rate limited, not ready, unreachable)
    are retried after a longer wait; other failures raise `ApiError`.
    """
    job = first if first is not None else fetch()
    show(job)
    deadline = clock() + limit_s
    wait = interval_s
    while not is_finished(job) and clock() < deadline:
        sleep(wait)
        try:
            job = fetch()
        except ApiError as exc:
            if exc.status not in RETRIED:
                raise
            wait = min(wait * 2, 10.0)
            continue
        wait = interval_s
        show(job)
    return job


def render(job: Json, refused: Collection[int] = ()) -> None:
    """The job's bars, its per-file table and, once it has ended, its summary."""
    status = str(job.get("status", ""))
    st.markdown(f"**{JOB_WORDS.get(status, status)}** · job `{job.get('id', '')}`")
    fraction, text = files_progress(job)
    st.progress(fraction, text=text)
    fraction, text = chunks_progress(job)
    st.progress(fraction, text=text)
    rows = file_rows(job, refused)
    if rows:
        st.dataframe(
            rows,
            hide_index=True,
            width="stretch",
            column_config={
                "Version": st.column_config.NumberColumn(format="%d"),
                "Problem": st.column_config.TextColumn(width="large"),
            },
        )
    if is_finished(job):
        level, sentence = summary(job, refused)
        {"success": st.success, "warning": st.warning, "error": st.error}.get(level, st.info)(
            sentence
        )


def watch_job(
    client: CitewiseClient,
    job: Json,
    refused: Collection[int] | None = None,
    *,
    limit_s: float = WATCH_LIMIT_S,
) -> Json | None:
    """Show `job` live until it ends; its last state (None, after saying why, if unreadable).

    `refused` are the positions of files refused at upload; by default those of
    `job`, which is then the job as its submission returned it.
    """
    if refused is None:
        refused = refused_positions(job)
    placeholder = st.empty()

    def show(state: Json) -> None:
        with placeholder.container():
            render(state, refused)

    try:
        last = watch(lambda: client.job(str(job["id"])), show, first=job, limit_s=limit_s)
    except ApiError as exc:
        st.error(f"Could not follow the job's progress. {exc}", icon=":material/error:")
        return None
    if not is_finished(last):
        st.info(
            "The job is still running in the background; its progress is in the "
            "latest jobs list, and the documents table shows each file once indexed."
        )
    return last
