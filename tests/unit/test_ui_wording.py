"""What the UI says about answers and errors: plain sentences, safe passage markup."""

from __future__ import annotations

import httpx

from citewise.ui import wording
from citewise.ui.client import _filename, error_from

CITATION = {
    "number": 1,
    "doc_id": "employee-handbook.md",
    "version": 2,
    "source": "employee-handbook.md",
    "title": "Kestrel Harbor Logistics Employee Handbook",
    "section": "2.1 Standard week",
    "page": None,
    "passage": "A full-time week is 37.5 hours, normally Monday to Friday.",
    "quote": "37.5 hours",
    "start": 20,
    "end": 30,
}


def test_the_quote_is_highlighted_and_the_passage_escaped() -> None:
    assert wording.marked_passage(CITATION) == (
        "A full-time week is <mark>37.5 hours</mark>, normally Monday to Friday."
    )
    hostile = {**CITATION, "passage": "<script>alert(1)</script> 37.5 hours", "start": -1}
    marked = wording.marked_passage(hostile)
    assert "<script>" not in marked and "&lt;script&gt;" in marked
    assert "<mark>37.5 hours</mark>" in marked  # found by its text when offsets are unknown
    unknown = {**CITATION, "quote": "", "start": -1, "end": -1}
    assert "<mark>" not in wording.marked_passage(unknown)


def test_where_names_title_page_and_section() -> None:
    assert (
        wording.where(CITATION) == "Kestrel Harbor Logistics Employee Handbook · 2.1 Standard week"
    )
    assert wording.where({**CITATION, "title": "", "page": 3}).startswith(
        "employee-handbook.md · page 3"
    )


def test_every_decline_reason_has_its_own_sentence() -> None:
    reasons = ["gate", "model", "unsupported", "injection", "none"]
    sentences = {wording.decline_sentence(r) for r in reasons}
    assert len(sentences) == len(reasons)
    assert all(s.endswith(".") for s in sentences)
    assert wording.decline_sentence("something-new")  # unknown reasons still get words


def test_groundedness_levels() -> None:
    verified = {"sentences": 3, "supported": 3, "score": 0.91, "removed": 0, "marked": 0}
    assert wording.groundedness({"declined": False, "verification": verified}) == (
        "good",
        "3 of 3 sentences supported by the cited passages (score 0.91).",
    )
    partial = {**verified, "supported": 2, "removed": 1}
    level, sentence = wording.groundedness({"declined": False, "verification": partial})
    assert level == "partial" and "1 unsupported sentence removed" in sentence
    assert wording.groundedness({"declined": True, "verification": verified})[0] == "none"


def test_degraded_answers_say_so() -> None:
    assert "fallback" in wording.tier_sentence({"tier": "extractive", "degraded": True})
    assert wording.tier_sentence({"tier": "local", "degraded": False}) == "Answered by “local”."


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_api_errors_become_sentences() -> None:
    refused = error_from(_response(401, {"error": {"code": "unauthorized", "message": "bad"}}))
    assert str(refused).startswith("Your API key was not accepted")
    assert refused.status == 401 and refused.code == "unauthorized"
    too_big = error_from(
        _response(413, {"error": {"code": "too_large", "message": "file exceeds 50 MB"}})
    )
    assert str(too_big) == "That is too large for Citewise to accept. File exceeds 50 MB."
    limited = error_from(_response(429, {"error": {}}, {"Retry-After": "12"}))
    assert str(limited).endswith("Try again in 12 seconds.")
    fields = {"error": {"code": "invalid", "message": "x", "details": [
        {"loc": ["body", "question"], "msg": "too long", "type": "string_too_long"}]}}  # fmt: skip
    assert str(error_from(_response(422, fields))).endswith("Question: too long.")
    assert "internal problem" in str(error_from(httpx.Response(500, text="Traceback ...")))


def test_a_download_keeps_its_exact_file_name() -> None:
    exact = "attachment; filename=\"R_sum_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf"
    assert _filename(httpx.Response(200, headers={"content-disposition": exact}), "x") == (
        "Résumé.pdf"
    )
    ascii_only = 'attachment; filename="employee-handbook.md"'
    assert _filename(httpx.Response(200, headers={"content-disposition": ascii_only}), "x") == (
        "employee-handbook.md"
    )
    assert _filename(httpx.Response(200), "fallback.md") == "fallback.md"
