"""Run storage, paired bootstrap comparison, the HTML report and the regression gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from citewise.core.errors import ConfigError
from citewise.core.schemas import Answer, AnswerSentence, Citation, Verification
from citewise.eval.answer_metrics import (
    citation_validity,
    higher_is_better,
    question_metrics,
    quote_recall,
)
from citewise.eval.compare import compare_runs, markdown, paired_bootstrap
from citewise.eval.datasets import QAItem, load_qa
from citewise.eval.gate import (
    Baseline,
    Threshold,
    baseline_from_summary,
    check,
    load_baseline,
    write_baseline,
)
from citewise.eval.report import html_report
from citewise.eval.runs import QuestionResult, RunDir, resolve_run, summarize
from tests.conftest import ROOT

SAMPLE_SET = ROOT / "samples" / "kestrel-qa.jsonl"


def test_bootstrap_matches_scipy_and_is_deterministic() -> None:
    rng = np.random.default_rng(7)
    a = rng.uniform(0, 1, 200)
    b = np.clip(a + rng.normal(0.05, 0.2, 200), 0, 1)
    delta, low, high = paired_bootstrap(a, b)
    assert delta == pytest.approx(float((b - a).mean()))
    reference = stats.bootstrap(
        ((b - a),), np.mean, n_resamples=2000, method="percentile", random_state=1
    ).confidence_interval
    assert low == pytest.approx(reference.low, abs=0.006)
    assert high == pytest.approx(reference.high, abs=0.006)
    assert paired_bootstrap(a, b) == (delta, low, high)  # fixed seed
    assert paired_bootstrap(a, a) == (0.0, 0.0, 0.0)
    assert paired_bootstrap(np.zeros(5), np.full(5, 0.5))[1:] == (0.5, 0.5)


def _result(item_id: str, *, answerable: bool = True, declined: bool = False,
            **metrics: float | None) -> QuestionResult:  # fmt: skip
    return QuestionResult(
        id=item_id,
        question=f"question {item_id}?",
        answerable=answerable,
        answer="declined" if declined else f"answer {item_id}",
        declined=declined,
        timings_ms={"retrieve": 10.0, "total": 100.0 + len(item_id)},
        usage={"prompt_tokens": 100, "completion_tokens": 20},
        metrics=dict(metrics),
    )


def _run(
    tmp_path: Path, name: str, results: list[QuestionResult], config: dict[str, object]
) -> RunDir:
    dataset = load_qa(SAMPLE_SET)
    run = RunDir(tmp_path / name)
    record = run.start(run_id=name, dataset=dataset, dataset_path=SAMPLE_SET, tenant="demo",
                       config=config)  # fmt: skip
    for result in results:
        run.append(result)
    run.finish(record, run.results())
    return run


def test_compare_runs_flags_a_real_drop_and_lists_movers(tmp_path: Path) -> None:
    ids = [f"q{i:02d}" for i in range(40)]
    a = [_result(i, rouge_l=0.8, id_context_recall=1.0, false_decline=0.0) for i in ids]
    b = [
        _result(i, declined=n < 10, rouge_l=0.8 - (0.5 if n < 10 else 0.0),
                id_context_recall=1.0, false_decline=1.0 if n < 10 else 0.0)
        for n, i in enumerate(ids)
    ]  # fmt: skip
    run_a = _run(tmp_path, "a", a, {"top_k": 6, "answer": {"max_passages": 4}})
    run_b = _run(tmp_path, "b", b, {"top_k": 6, "answer": {"max_passages": 1}})
    comparison = compare_runs(run_a, run_b, top=5)
    by_metric = {m.metric: m for m in comparison.metrics}
    rouge = by_metric["rouge_l"]
    assert rouge.delta == pytest.approx(-0.125)
    assert rouge.ci_high < 0 and rouge.verdict == "worse"
    assert by_metric["false_decline"].verdict == "worse"  # lower is better: up is worse
    assert by_metric["id_context_recall"].verdict == "no significant change"
    assert comparison.config_changes == {"answer.max_passages": [4, 1]}
    assert [q.id for q in comparison.changed] == ids[:5]
    assert comparison.changed[0].declined_b and not comparison.changed[0].declined_a
    text = markdown(comparison)
    assert "rouge_l" in text and "worse" in text and "answer.max_passages" in text
    page = html_report(comparison)
    assert page.count("data:image/png;base64,") >= 2 and "<script" not in page
    assert resolve_run("a", tmp_path).path == run_a.path
    assert resolve_run(str(run_b.path / "run.json"), tmp_path / "x").path == run_b.path
    with pytest.raises(ConfigError, match="no evaluation run"):
        resolve_run("zzz", tmp_path)


def test_run_resumes_and_refuses_another_configuration(tmp_path: Path) -> None:
    dataset = load_qa(SAMPLE_SET)
    run = RunDir(tmp_path / "r")
    run.start(run_id="r", dataset=dataset, dataset_path=SAMPLE_SET, tenant="demo", config={"k": 1})
    run.append(_result("hb-01", rouge_l=0.5))
    with run.results_path.open("a") as handle:
        handle.write('{"id": "hb-02", "quest')  # torn line: killed mid-write
    again = RunDir(tmp_path / "r")
    again.start(run_id="r", dataset=dataset, dataset_path=SAMPLE_SET, tenant="demo",
                config={"k": 1, "git_revision": "other"})  # fmt: skip
    assert [r.id for r in again.results()] == ["hb-01"]
    with pytest.raises(ConfigError, match="another configuration"):
        again.start(run_id="r", dataset=dataset, dataset_path=SAMPLE_SET, tenant="demo",
                    config={"k": 2})  # fmt: skip
    with pytest.raises(ConfigError, match="another dataset or tenant"):
        again.start(run_id="r", dataset=dataset, dataset_path=SAMPLE_SET, tenant="acme",
                    config={"k": 1})  # fmt: skip


def test_summary_rates_percentiles_and_tokens() -> None:
    results = [
        _result("a", rouge_l=1.0, false_decline=0.0),
        _result("b", rouge_l=0.0, false_decline=1.0, declined=True),
        _result("u", answerable=False, correct_decline=1.0, rouge_l=None),
    ]
    summary = summarize(results)
    assert summary["rouge_l"] == 0.5
    assert summary["false_decline_rate"] == 0.5 and summary["correct_decline_rate"] == 1.0
    assert summary["latency.total.p50"] == 101.0
    assert summary["tokens.prompt_tokens.total"] == 300
    assert summary["unanswerable"] == 1


def test_gate_directions_tolerances_and_missing_metrics(tmp_path: Path) -> None:
    baseline = Baseline(metrics={
        "rouge_l": Threshold(value=0.5, tolerance=0.05),
        "false_decline_rate": Threshold(value=0.1, tolerance=0.05),
        "latency.total.p50": Threshold(value=300, tolerance=100),
        "groundedness": Threshold(value=0.8, tolerance=0.0),
    })  # fmt: skip
    summary = {"rouge_l": 0.45, "false_decline_rate": 0.15, "latency.total.p50": 401.0}
    verdicts = {c.metric: c.passed for c in check(summary, baseline)}
    assert verdicts == {
        "rouge_l": True,  # exactly at the tolerance
        "false_decline_rate": True,
        "latency.total.p50": False,  # lower is better, 1 ms over
        "groundedness": False,  # missing from the run
    }
    assert not higher_is_better("false_decline_rate") and higher_is_better("rouge_l")
    made = baseline_from_summary({"rouge_l": 0.61234}, {"rouge_l": 0.05}, tenant="demo")
    write_baseline(made, tmp_path / "b.json")
    assert load_baseline(tmp_path / "b.json").metrics["rouge_l"].value == 0.6123
    (tmp_path / "bad.json").write_text(json.dumps({"metrics": {"x": {"value": 1}}}))
    with pytest.raises(ConfigError, match="tolerance"):
        load_baseline(tmp_path / "bad.json")


def test_committed_baseline_is_valid() -> None:
    baseline = load_baseline(ROOT / "samples" / "kestrel-qa-baseline.json")
    dataset = load_qa(ROOT / "samples" / baseline.dataset).select(baseline.ids)
    assert 15 <= len(dataset.items) <= 20
    assert any(not i.answerable for i in dataset.items)


def _passage(number: int, doc_id: str, text: str) -> Citation:
    return Citation(number=number, doc_id=doc_id, version=1, source=doc_id, title="",
                    section="", page=None, chunk_index=number, passage=text)  # fmt: skip


def test_citation_validity_and_quote_recall() -> None:
    passages = [_passage(1, "a.md", "Passwords must be at least 14 characters long."),
                _passage(2, "b.md", "Screens lock after 5 minutes.")]  # fmt: skip
    good = passages[0].model_copy(update={"quote": "at least 14 characters"})
    forged = passages[1].model_copy(update={"doc_id": "c.md"})
    answer = Answer(
        question="q", answer="Fourteen [1]. Five [2]. Six [3].", declined=False, tier="extractive",
        passages=passages, citations=[good, forged],
        sentences=[AnswerSentence(text="Fourteen [1].", citations=[1], support=1.0),
                   AnswerSentence(text="Five [2].", citations=[2], support=1.0),
                   AnswerSentence(text="Six [3].", citations=[3], support=0.0)],
    )  # fmt: skip
    assert citation_validity(answer) == pytest.approx(1 / 3)  # [2] forged, [3] unresolved
    assert citation_validity(answer.model_copy(update={"sentences": [], "citations": []})) is None
    texts = [p.passage for p in passages]
    assert quote_recall(["must be at least 14\ncharacters", "lock after 9 minutes"], texts) == 0.5


def test_question_metrics_for_unanswerable_and_answered_items() -> None:
    passages = [_passage(1, "employee-handbook.md",
                         "Hybrid employees may work remotely up to 3 days per week.")]  # fmt: skip
    answer = Answer(
        question="q", answer="Hybrid employees may work remotely up to 3 days per week [1].",
        declined=False, tier="extractive", passages=passages, citations=passages,
        sentences=[AnswerSentence(text="x", citations=[1], support=0.9)],
        verification=Verification(verifier="fast", policy="remove", threshold=0.5, score=0.9,
                                  sentences=1, supported=1),
        timings_ms={"total": 42.0}, usage={"prompt_tokens": 3},
    )  # fmt: skip
    item = QAItem(id="hb-10", question="q", reference="Up to 3 days per week.",
                  reference_doc_ids=["employee-handbook.md", "q3-all-hands.pptx"],
                  reference_contexts=["work remotely up to 3 days per week"])  # fmt: skip
    metrics = question_metrics(item, answer)
    assert metrics["id_context_recall"] == 0.5 and metrics["id_context_precision"] == 1.0
    assert metrics["quote_recall"] == 1.0 and metrics["citation_validity"] == 1.0
    assert metrics["cited_doc_recall"] == 0.5 and metrics["groundedness"] == 0.9
    assert metrics["false_decline"] == 0.0 and metrics["correct_decline"] is None
    assert metrics["rouge_l"] is not None and 0 < metrics["rouge_l"] < 1
    assert metrics["latency_ms"] == 42.0 and metrics["tokens"] == 3.0
    unanswerable = QAItem(id="u", question="q", tags=["unanswerable"])
    declined = answer.model_copy(update={"declined": True})
    metrics = question_metrics(unanswerable, declined)
    assert metrics["correct_decline"] == 1.0 and metrics["rouge_l"] is None
