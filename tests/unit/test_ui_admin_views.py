"""The admin pages' pure parts: table rows, filters, job progress wording, statistics tiles."""

from __future__ import annotations

from typing import Any

from citewise.ui import progress, stats_views, tables

DOCS: list[dict[str, Any]] = [
    {"doc_id": "employee-handbook.md", "filename": "employee-handbook.md",
     "title": "Employee Handbook", "status": "indexed", "version": 2, "chunk_count": 14,
     "acl_groups": ["*"], "updated_at": "2026-11-23T20:05:07.123456Z", "error": None},
    {"doc_id": "hr/salaries.xlsx", "filename": "salaries.xlsx", "title": "Salary bands",
     "status": "failed", "version": 0, "chunk_count": 0, "acl_groups": ["hr"],
     "updated_at": "2026-11-23T21:00:00+00:00", "error": "the workbook is encrypted"},
]  # fmt: skip


def test_search_matches_every_word_in_id_file_name_or_title() -> None:
    assert tables.filter_documents(DOCS, "") == DOCS
    assert [d["doc_id"] for d in tables.filter_documents(DOCS, "HANDBOOK employee")] == [
        "employee-handbook.md"
    ]
    assert [d["doc_id"] for d in tables.filter_documents(DOCS, "hr/ bands")] == ["hr/salaries.xlsx"]
    assert tables.filter_documents(DOCS, "handbook bands") == []


def test_document_rows_say_who_may_read_and_when_in_minutes() -> None:
    rows = tables.document_rows(DOCS)
    assert rows[0]["Readable by"] == "everyone"
    assert rows[0]["Updated"] == "2026-11-23 20:05"
    assert rows[1]["Version"] is None and rows[1]["Readable by"] == "hr"
    assert rows[1]["Problem"] == "the workbook is encrypted"


def test_groups_are_parsed_trimmed_and_deduplicated() -> None:
    assert tables.parse_groups(" hr, finance,,hr ,  ") == ["hr", "finance"]
    assert tables.parse_groups("") == []


def test_keys_mark_the_signed_in_one() -> None:
    keys = [
        {"prefix": "abc", "name": "laptop", "role": "admin", "groups": [], "user": "key:abc",
         "created_at": "2026-11-23T10:00:00Z", "last_used_at": None, "revoked_at": None},
    ]  # fmt: skip
    (row,) = tables.key_rows(keys, own_prefix="abc")
    assert row["Name"] == "laptop (this session)" and row["Last used"] == "never"
    assert tables.key_label(keys[0]) == "abc · laptop · admin"


JOB: dict[str, Any] = {
    "id": "job1", "status": "partial", "files_total": 3, "files_done": 3, "files_failed": 2,
    "chunks_total": 10, "chunks_done": 10, "error": "2 of 3 file(s) failed",
    "files": [
        {"position": 0, "filename": "a.md", "status": "indexed", "version": 1,
         "chunks_total": 10, "chunks_done": 10, "error": None, "error_code": None},
        {"position": 1, "filename": "b.exe", "status": "failed", "version": None,
         "chunks_total": 0, "chunks_done": 0, "error": "executable files are refused",
         "error_code": "unsupported_file"},
        {"position": 2, "filename": "c.pdf", "status": "failed", "version": None,
         "chunks_total": 0, "chunks_done": 0, "error": "the PDF is damaged",
         "error_code": "corrupt_file"},
    ],
}  # fmt: skip


def test_a_partial_job_reads_as_files_indexed_refused_and_failed() -> None:
    refused = {1}
    rows = progress.file_rows(JOB, refused)
    assert [r["Status"] for r in rows] == ["Indexed", "Refused", "Failed"]
    assert rows[1]["Problem"] == "Executable files are refused."
    assert rows[0]["Passages"] == "10 / 10" and rows[2]["Passages"] == ""
    assert progress.files_progress(JOB) == (1.0, "3 of 3 files done, 2 failed")
    level, sentence = progress.summary(JOB, refused)
    assert level == "warning"
    assert sentence == (
        "Some of the 3 files could not be indexed (1 indexed, 1 refused, 1 failed); see the table."
    )


def test_a_running_job_is_not_finished_and_counts_passages_once_known() -> None:
    running = {**JOB, "status": "running", "files_done": 1, "chunks_total": 0, "files": []}
    assert not progress.is_finished(running)
    assert progress.chunks_progress(running)[0] == 0.0
    assert progress.chunks_progress({"chunks_done": 3, "chunks_total": 4}) == (
        0.75,
        "3 of 4 passages indexed",
    )


def test_refusals_are_the_files_failed_when_the_upload_returned() -> None:
    assert progress.refused_positions(JOB) == {1, 2}
    assert progress.refused_positions({"files": None}) == set()


STATS: dict[str, Any] = {
    "documents": {"total": 3, "by_status": {"indexed": 3, "failed": 0, "deleted": 1},
                  "chunks": 42, "indexed_bytes": 123_456, "last_ingest_at": None},
    "jobs": {"total": 2, "by_status": {"succeeded": 2, "failed": 0}, "running": 0, "queued": 0},
    "answers": {"total": 8, "last_7_days": 8, "declined": 2, "degraded": 1,
                "last_answer_at": "2026-11-23T21:00:00Z"},
    "feedback": {"up": 3, "down": 1, "with_comment": 1},
}  # fmt: skip


def test_statistics_tiles_and_chart_counts() -> None:
    shown = {tile.label: tile.value for tile in stats_views.tiles(STATS)}
    assert shown["Documents indexed"] == "3" and shown["Passages"] == "42"
    assert shown["Answers served"] == "8" and shown["Declined"] == "25%"
    assert shown["Thumbs up / down"] == "3 / 1" and shown["Stored files"] == "123.5 KB"
    assert stats_views.by_status(STATS, "documents") == {"indexed": 3, "deleted": 1}
    assert stats_views.freshness(STATS) == (
        "Nothing ingested by a job yet; last answer 2026-11-23 21:00 UTC."
    )
    empty = {tile.label: tile.value for tile in stats_views.tiles({})}
    assert empty["Declined"] == "–" and empty["Documents indexed"] == "0"
