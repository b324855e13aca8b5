"""QA datasets: the sample set, the JSONL loader's errors, BEIR and feedback import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citewise.core.errors import ConfigError
from citewise.eval.beir import load_beir
from citewise.eval.datasets import (
    MULTI_HOP,
    UNANSWERABLE,
    QAItem,
    from_beir,
    from_feedback,
    load_dataset,
    load_qa,
    write_qa,
)
from citewise.ingest.pipeline import doc_id_for
from tests.conftest import ROOT, SAMPLES

SAMPLE_SET = ROOT / "samples" / "kestrel-qa.jsonl"
BEIR_MINI = ROOT / "tests" / "fixtures" / "beir-mini"


def test_sample_set_is_large_enough_and_cites_real_documents() -> None:
    dataset = load_qa(SAMPLE_SET)
    items = dataset.items
    assert len(items) >= 60
    unanswerable = [i for i in items if UNANSWERABLE in i.tags]
    assert len(unanswerable) >= 10
    assert all(not i.answerable and not i.reference_doc_ids for i in unanswerable)
    doc_ids = {doc_id_for(path, SAMPLES) for path in SAMPLES.iterdir()}
    for item in items:
        assert set(item.reference_doc_ids) <= doc_ids, item.id
        assert item.answerable == bool(item.reference_doc_ids), item.id
    multi = [i for i in items if MULTI_HOP in i.tags]
    assert len(multi) >= 5 and all(len(i.reference_doc_ids) == 2 for i in multi)
    assert {d for i in items for d in i.reference_doc_ids} == doc_ids  # every document used
    assert len(dataset.sha256) == 64


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = json.dumps({"id": "a", "question": "Q?", "reference": "R.", "reference_doc_ids": ["x"]})


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "set.jsonl:3: invalid JSON"),
        (json.dumps({"id": "b", "question": "Q?"}), "set.jsonl:3: reference is empty"),
        (json.dumps({"id": "a", "question": "Q?", "reference": "R"}), "duplicate id 'a'"),
        (json.dumps({"id": "c", "question": "Q?", "reference": "R", "tagz": []}), "tagz"),
        (
            json.dumps(
                {"id": "d", "question": "Q?", "tags": ["unanswerable"], "reference_doc_ids": ["x"]}
            ),
            "unanswerable item cannot name",
        ),  # fmt: skip
    ],
)
def test_loader_errors_name_the_line(tmp_path: Path, bad: str, message: str) -> None:
    path = _write(tmp_path, [GOOD, "", bad])
    with pytest.raises(ConfigError, match=message):
        load_qa(path)


def test_empty_or_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no QA items"):
        load_qa(_write(tmp_path, [""]))
    with pytest.raises(ConfigError, match="cannot read QA dataset"):
        load_qa(tmp_path / "absent.jsonl")


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    items = load_qa(SAMPLE_SET).items[:5]
    write_qa(items, tmp_path / "copy.jsonl")
    assert load_qa(tmp_path / "copy.jsonl").items == items


def test_select_and_limit() -> None:
    dataset = load_qa(SAMPLE_SET)
    assert [i.id for i in dataset.select(["un-01", "hb-02"]).items] == ["hb-02", "un-01"]
    assert len(dataset.limited(3).items) == 3
    with pytest.raises(ConfigError, match="no question"):
        dataset.select(["nope"])


def test_beir_queries_become_items_with_relevant_ids() -> None:
    beir = load_beir(BEIR_MINI, "test")
    dataset = from_beir(beir)
    assert len(dataset.items) == len(beir.queries)
    for item in dataset.items:
        assert set(item.reference_doc_ids) == set(beir.qrels[item.id])
        assert item.reference and item.answerable
    assert load_dataset(BEIR_MINI).name == dataset.name


def test_feedback_export_import(tmp_path: Path) -> None:
    records = [
        {"id": "1", "tenant_id": "demo", "question": "How long must my password be?",
         "answer": "At least 14 characters [1].", "rating": "up",
         "citations": [{"doc_id": "information-security-policy.pdf", "page": 3}],
         "created_at": "2026-11-20T10:00:00Z", "extra_field": "ignored"},
        {"id": "2", "question": "Who audits us?", "answer": "", "declined": True,
         "rating": "up"},
        {"id": "3", "question": "How long is the trial?", "answer": "14 days.",
         "rating": "down", "correction": "The free trial is 21 days."},
        {"id": "4", "question": "Bad answer, no fix", "answer": "x", "rating": "down"},
    ]  # fmt: skip
    path = tmp_path / "export.feedback.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    dataset = load_dataset(path)
    by_id = {i.id: i for i in dataset.items}
    assert set(by_id) == {"fb-1", "fb-2", "fb-3"}
    assert by_id["fb-1"].reference_doc_ids == ["information-security-policy.pdf"]
    assert not by_id["fb-2"].answerable
    assert by_id["fb-3"].reference == "The free trial is 21 days."
    path.write_text(json.dumps({"id": "9", "question": "Q", "rating": "meh"}) + "\n")
    with pytest.raises(ConfigError, match=r"export.feedback.jsonl:1: rating"):
        from_feedback(path)


def test_item_model_rejects_blank_question() -> None:
    with pytest.raises(ValueError):
        QAItem(id="x", question="   ", reference="r")
