"""The Evaluation page's data shaping, on real run records, results and comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from citewise.eval.runs import RunDir, summarize
from citewise.ui import eval_views as views
from tests.ui.eval_data import BASE_ID, HEAD_ID, comparison, write_run

Json = dict[str, Any]


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval-runs")
    write_run(root, "base")
    write_run(root, "head")
    return root


def _run(root: Path, run_id: str) -> Json:
    """What the API sends for one run: the record and its per-question results."""
    directory = RunDir(root / run_id)
    return {
        **directory.load_record().model_dump(mode="json"),
        "results": [r.model_dump(mode="json") for r in directory.results()],
    }


@pytest.fixture(scope="module")
def compared(runs_root: Path) -> Json:
    return comparison(runs_root).model_dump(mode="json")


def test_runs_table_lists_runs_with_headline_figures(runs_root: Path) -> None:
    runs = [_run(runs_root, HEAD_ID), _run(runs_root, BASE_ID)]
    table = views.runs_table(runs)
    assert list(table["Run"]) == [HEAD_ID, BASE_ID]
    assert list(table["Dataset"]) == ["kestrel-qa", "kestrel-qa"]
    assert list(table["Status"]) == ["finished", "finished"]
    assert list(table["Questions"]) == [14, 14]
    assert table.loc[0, "ROUGE-L"] == pytest.approx(runs[0]["summary"]["rouge_l"])
    assert table.loc[1, "Correct declines"] == 1.0
    assert table.loc[0, "Correct declines"] == 0.75
    assert "Latency total p50 (ms)" in table.columns
    assert table.loc[0, "Started"].endswith("UTC")


def test_runs_table_marks_unfinished_runs_and_tolerates_missing_fields() -> None:
    table = views.runs_table([{"run_id": "r1", "dataset": "mine", "started_at": "garbage"}])
    assert table.loc[0, "Status"] == "unfinished"
    assert table.loc[0, "Dataset"] == "mine"
    assert table.loc[0, "Started"] == "garbage"
    assert table.loc[0, "Questions"] == 0
    assert views.run_label({"run_id": "r1", "dataset": {"name": "d"}}) == "r1 · d · unfinished"
    assert views.runs_table([]).empty


def test_summary_table_holds_every_figure_of_summarize(runs_root: Path) -> None:
    directory = RunDir(runs_root / BASE_ID)
    expected = summarize(directory.results())
    table = views.summary_table(directory.load_record().summary)
    assert dict(zip(table["Key"], table["Raw"], strict=True)) == expected
    values = dict(zip(table["Key"], table["Value"], strict=True))
    assert values["rouge_l"] == f"{expected['rouge_l']:.3f}"
    assert values["latency.total.p50"] == f"{expected['latency.total.p50']:,.0f} ms"
    assert values["questions"] == "14"
    groups = list(dict.fromkeys(table["Group"]))
    assert groups == [g for g in views.GROUPS if g in groups]  # grouped, in the page's order
    row = table[table["Key"] == "false_decline_rate"].iloc[0]
    assert (row["Group"], row["Better"]) == ("Declines", "lower")
    assert table[table["Key"] == "rouge_l"].iloc[0]["Better"] == "higher"
    assert table[table["Key"] == "latency.total.p95"].iloc[0]["Better"] == "lower"


def test_questions_table_and_filters(runs_root: Path) -> None:
    results = _run(runs_root, BASE_ID)["results"]
    table = views.questions_table(results)
    assert len(table) == 14
    assert {"rouge_l", "correct_decline", "latency_ms"} <= set(table.columns)
    declined = views.filter_questions(table, status="Declined")
    assert len(declined) == 5  # one answerable (wrongly) and the four unanswerable
    assert len(views.filter_questions(table, status="Unanswerable")) == 4
    assert len(views.filter_questions(table, status="Answered")) == 9
    assert views.filter_questions(table, status="Failed").empty
    first = results[0]
    hits = views.filter_questions(table, text=first["question"][5:25].upper())
    assert first["id"] in set(hits["Id"])
    tag = views.tags(results)[0]
    tagged = views.filter_questions(table, tags=[tag])
    assert len(tagged) == sum(tag in r["tags"] for r in results) > 0
    assert views.filter_questions(table, text="no such words anywhere").empty


def test_metric_values_and_charts(runs_root: Path) -> None:
    results = _run(runs_root, HEAD_ID)["results"]
    values = views.metric_values(results)
    assert len(values[values["metric"] == "rouge_l"]) == 10
    assert values["Value"].notna().all()
    scores = views.scores_chart(values)
    assert scores is not None
    spec = scores.to_dict()
    assert spec["mark"]["type"] == "boxplot"
    assert "latency_ms" not in set(scores.data["metric"])  # not on the 0..1 axis
    latency = views.histogram(values, "latency_ms")
    assert latency is not None and latency.to_dict()["mark"]["type"] == "bar"
    assert views.histogram(values, "faithfulness") is None
    assert views.scores_chart(views.metric_values([])) is None


def test_comparison_table_matches_the_comparison(compared: Json) -> None:
    table = views.comparison_table(compared)
    assert len(table) == len(compared["metrics"])
    rouge = table[table["Key"] == "rouge_l"].iloc[0]
    delta = next(m for m in compared["metrics"] if m["metric"] == "rouge_l")
    assert rouge["Change"] == pytest.approx(delta["delta"])
    assert rouge["Base"] == pytest.approx(delta["a"]) and rouge["Head"] == pytest.approx(delta["b"])
    assert rouge["Verdict"] == "better"
    assert rouge["95% CI"] == f"[{delta['ci_low']:+.4f}, {delta['ci_high']:+.4f}]"
    latency = table[table["Key"] == "latency_ms"].iloc[0]
    assert (latency["Verdict"], latency["Better"]) == ("worse", "lower")
    counts = views.verdict_counts(compared)
    assert sum(counts.values()) == len(compared["metrics"])
    sentence = views.verdict_sentence(compared)
    assert sentence.startswith("Over 14 questions answered in both runs:")
    assert f"{counts['better']} metric(s) better" in sentence


def test_delta_chart_changed_questions_and_config(compared: Json) -> None:
    chart = views.delta_chart(compared)
    assert chart is not None
    spec = chart.to_dict()
    assert len(spec["layer"]) == 3  # bars, interval whiskers, the zero line
    plotted = {row["Key"] for rows in spec["datasets"].values() for row in rows if "Key" in row}
    assert "rouge_l" in plotted and "latency_ms" not in plotted  # ms are not on this axis
    changed = views.changed_table(compared)
    assert list(changed["Id"]) == [q["id"] for q in compared["changed"]]
    assert changed["Change"].is_monotonic_decreasing
    flipped = changed[changed["Declined (base)"] != changed["Declined (head)"]]
    assert len(flipped) == 2  # base declined hb-01 wrongly; head answered one unanswerable
    pairs = views.metric_pairs(compared["changed"][0])
    assert "ROUGE-L" in set(pairs["Metric"])
    config = views.config_table(compared)
    top_k = config[config["Setting"] == "top_k"].iloc[0]
    assert (top_k["Base"], top_k["Head"]) == ("8", "12")
    summary = views.summary_changes(compared)
    assert "correct_decline_rate" in set(summary["Key"])


def test_empty_comparison_reads_as_a_sentence() -> None:
    empty = {"paired_questions": 0, "metrics": [], "summary": [], "changed": []}
    assert views.verdict_sentence(empty) == (
        "The runs share 0 questions but no metric both of them scored."
    )
    assert views.delta_chart(empty) is None
    assert views.comparison_table(empty).empty
    assert views.config_table(empty).empty


def test_labels() -> None:
    assert views.label("latency.retrieve.p95") == "Latency retrieve p95 (ms)"
    assert views.label("tokens.prompt.mean") == "Tokens prompt (mean)"
    assert views.label("some_new_metric") == "Some new metric"
    assert views.when("2026-11-23T22:10:05+00:00") == "2026-11-23 22:10 UTC"
    assert views.when(None) == ""
