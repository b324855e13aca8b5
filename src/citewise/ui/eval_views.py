"""Evaluation runs and comparisons shaped for the Evaluation page: tables and charts.

Pure functions over the API's JSON (run summaries, one run with its per-question
results, a comparison of two runs), so they are tested without Streamlit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

Json = dict[str, Any]

# Summary figures shown as columns of the runs table and as tiles of a run.
HEADLINE = (
    "rouge_l",
    "id_context_recall",
    "groundedness",
    "citation_validity",
    "correct_decline_rate",
    "latency.total.p50",
)

LABELS = {
    "questions": "Questions",
    "answerable": "Answerable questions",
    "unanswerable": "Unanswerable questions",
    "errors": "Questions that failed",
    "id_context_precision": "Context precision (doc ids)",
    "id_context_recall": "Context recall (doc ids)",
    "string_context_precision": "Context precision (text)",
    "string_context_recall": "Context recall (text)",
    "quote_recall": "Quote recall",
    "string_similarity": "String similarity",
    "rouge_l": "ROUGE-L",
    "citation_validity": "Citation validity",
    "cited_doc_recall": "Cited document recall",
    "groundedness": "Groundedness",
    "correct_decline": "Correct decline",
    "false_decline": "False decline",
    "correct_decline_rate": "Correct declines",
    "false_decline_rate": "False declines",
    "faithfulness": "Faithfulness (LLM judge)",
    "answer_relevancy": "Answer relevancy (LLM judge)",
    "llm_context_precision": "Context precision (LLM judge)",
    "llm_context_recall": "Context recall (LLM judge)",
    "factual_correctness": "Factual correctness (LLM judge)",
    "latency_ms": "Latency (ms)",
    "tokens": "Tokens",
}

HELP = {
    "rouge_l": "Word overlap (longest common subsequence) between answer and reference, 0 to 1.",
    "id_context_recall": "Share of the reference documents among the retrieved passages.",
    "groundedness": "The verifier's score for how well the passages support the answer, 0 to 1.",
    "citation_validity": "Share of citations that resolve to a passage the answer was given.",
    "correct_decline_rate": "Share of unanswerable questions that Citewise declined to answer.",
    "false_decline_rate": "Share of answerable questions that Citewise declined to answer.",
    "latency.total.p50": "Median time to a verified answer, in milliseconds.",
}

GROUPS = ("Retrieval", "Answers", "Declines", "Latency (ms)", "Tokens", "Questions")
_RETRIEVAL = {
    "id_context_precision",
    "id_context_recall",
    "string_context_precision",
    "string_context_recall",
    "quote_recall",
    "cited_doc_recall",
    "llm_context_precision",
    "llm_context_recall",
}
_COUNTS = {"questions", "answerable", "unanswerable", "errors"}
# Per-question metrics on another scale than 0..1 (kept out of the shared score plots).
UNSCALED = {"latency_ms", "tokens"}

ROW_PX = 34  # height of one metric's row in the charts
_LABEL_AXIS = alt.Axis(labelLimit=220)

STATUS_FILTERS = ("All questions", "Answered", "Declined", "Unanswerable", "Failed")
VERDICT_COLOURS = {"better": "#2e7d32", "worse": "#c62828", "no significant change": "#9e9e9e"}


# --- names -----------------------------------------------------------------------------


def label(metric: str) -> str:
    """A person's name for a metric or summary key."""
    if metric in LABELS:
        return LABELS[metric]
    if metric.startswith("latency."):
        _, stage, stat = (metric.split(".") + ["", ""])[:3]
        return f"Latency {stage} {stat} (ms)".replace("  ", " ")
    if metric.startswith("tokens."):
        _, kind, stat = (metric.split(".") + ["", ""])[:3]
        return f"Tokens {kind} ({stat})"
    return metric.replace("_", " ").capitalize()


def higher_is_better(metric: str) -> bool:
    """Whether a larger value is better (not so for latency, tokens, failures, false declines)."""
    base = metric.removesuffix("_rate")
    return not (metric.startswith(("latency", "tokens")) or base in ("false_decline", "errors"))


def direction(metric: str) -> str:
    """``higher`` or ``lower`` (is better); empty for plain counts of questions."""
    if metric in _COUNTS - {"errors"}:
        return ""
    return "higher" if higher_is_better(metric) else "lower"


def group(metric: str) -> str:
    """Which section of the metrics table a summary key belongs to."""
    if metric in _COUNTS:
        return "Questions"
    if metric.startswith("latency"):
        return "Latency (ms)"
    if metric.startswith("tokens"):
        return "Tokens"
    if metric.endswith("_rate") or metric in ("correct_decline", "false_decline"):
        return "Declines"
    if metric in _RETRIEVAL:
        return "Retrieval"
    return "Answers"


# --- runs ------------------------------------------------------------------------------


def dataset_name(run: Json) -> str:
    """The run's dataset name (the API sends the dataset as an object or a name)."""
    dataset = run.get("dataset")
    if isinstance(dataset, dict):
        return str(dataset.get("name") or dataset.get("path") or "")
    return str(dataset or "")


def when(stamp: str | None) -> str:
    """An ISO timestamp as ``2026-11-23 22:10 UTC`` (empty when missing, as is when unparsable)."""
    if not stamp:
        return ""
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def finished(run: Json) -> bool:
    """Whether the run wrote its summary (an interrupted or running one has not)."""
    return bool(run.get("finished_at"))


def run_label(run: Json) -> str:
    """One line naming a run in a select box."""
    parts = [str(run.get("run_id", "")), dataset_name(run)]
    questions = run.get("questions")
    if questions:
        parts.append(f"{questions} questions")
    if not finished(run):
        parts.append("unfinished")
    return " · ".join(p for p in parts if p)


def runs_table(runs: Sequence[Json]) -> pd.DataFrame:
    """One row per run: id, dataset, start, status, questions, config hash, headline figures."""
    present = [k for k in HEADLINE if any(k in (r.get("summary") or {}) for r in runs)]
    rows = []
    for run in runs:
        summary = run.get("summary") or {}
        row: Json = {
            "Run": str(run.get("run_id", "")),
            "Dataset": dataset_name(run),
            "Started": when(run.get("started_at")),
            "Status": "finished" if finished(run) else "unfinished",
            "Questions": int(run.get("questions") or 0),
            "Configuration": str(run.get("config_hash", "")),
        }
        for key in present:
            row[label(key)] = summary.get(key)
        rows.append(row)
    columns = ["Run", "Dataset", "Started", "Status", "Questions", "Configuration"]
    columns += [label(key) for key in present]
    return pd.DataFrame(rows, columns=columns)


def summary_table(summary: Json) -> pd.DataFrame:
    """A run's summary figures as rows: group, metric, value, direction and the raw key."""
    rows = [
        {
            "Group": group(key),
            "Metric": label(key),
            "Value": shown(key, float(value)),
            "Better": direction(key),
            "Key": key,
            "Raw": float(value),
        }
        for key, value in summary.items()
        if isinstance(value, int | float)
    ]
    columns = ["Group", "Metric", "Value", "Better", "Key", "Raw"]
    return _by_group(pd.DataFrame(rows, columns=columns))


def shown(key: str, value: float) -> str:
    """A summary figure as text: counts whole, latency in ms, scores and rates to 3 places."""
    if key.startswith("latency"):
        return f"{value:,.0f} ms"
    if key in _COUNTS or key.endswith(".total"):
        return f"{value:,.0f}"
    if key.startswith("tokens"):
        return f"{value:,.1f}"
    return f"{value:.3f}"


def _by_group(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in the page's group order, then by key."""
    order = frame["Group"].map({name: i for i, name in enumerate(GROUPS)})
    return (
        frame.assign(_order=order)
        .sort_values(["_order", "Key"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def headline(summary: Json) -> list[tuple[str, str, float]]:
    """The headline figures this run has: (key, label, value)."""
    return [(k, label(k), float(summary[k])) for k in HEADLINE if k in summary]


# --- per-question results --------------------------------------------------------------


def metric_names(results: Sequence[Json]) -> list[str]:
    """Per-question metric names, known ones in the usual order, then the rest sorted."""
    seen = {k for r in results for k in (r.get("metrics") or {})}
    known = [k for k in LABELS if k in seen]
    return known + sorted(seen - set(known))


def questions_table(results: Sequence[Json]) -> pd.DataFrame:
    """One row per question: id, question, answer, declined, tags, error and every metric."""
    names = metric_names(results)
    rows = []
    for result in results:
        metrics = result.get("metrics") or {}
        row: Json = {
            "Id": str(result.get("id", "")),
            "Question": str(result.get("question", "")),
            "Answer": str(result.get("answer", "")),
            "Declined": bool(result.get("declined", False)),
            "Answerable": bool(result.get("answerable", True)),
            "Tier": str(result.get("tier", "")),
            "Tags": ", ".join(str(t) for t in result.get("tags") or []),
            "Error": str(result.get("error", "")),
        }
        for name in names:
            value = metrics.get(name)
            row[name] = float(value) if value is not None else None
        rows.append(row)
    base = ["Id", "Question", "Answer", "Declined", "Answerable", "Tier", "Tags", "Error"]
    return pd.DataFrame(rows, columns=[*base, *names])


def tags(results: Sequence[Json]) -> list[str]:
    """Every tag used by the run's questions, sorted."""
    return sorted({str(t) for r in results for t in r.get("tags") or []})


def filter_questions(
    frame: pd.DataFrame, *, text: str = "", status: str = "All questions", tags: Sequence[str] = ()
) -> pd.DataFrame:
    """The rows matching a search text (id, question or answer), a status and all given tags."""
    keep = pd.Series(True, index=frame.index)
    needle = text.strip().lower()
    if needle:
        haystack = frame["Id"] + "\n" + frame["Question"] + "\n" + frame["Answer"]
        keep &= haystack.str.lower().str.contains(needle, regex=False)
    if status == "Answered":
        keep &= ~frame["Declined"] & (frame["Error"] == "")
    elif status == "Declined":
        keep &= frame["Declined"]
    elif status == "Unanswerable":
        keep &= ~frame["Answerable"]
    elif status == "Failed":
        keep &= frame["Error"] != ""
    for tag in tags:
        keep &= frame["Tags"].str.split(", ").apply(lambda found, t=tag: t in found)
    return frame[keep]


def metric_values(results: Sequence[Json]) -> pd.DataFrame:
    """Per-question metric values in long form: question id, metric, label, value."""
    rows = [
        {"Id": str(r.get("id", "")), "metric": name, "Metric": label(name), "Value": float(value)}
        for r in results
        for name, value in (r.get("metrics") or {}).items()
        if value is not None
    ]
    return pd.DataFrame(rows, columns=["Id", "metric", "Metric", "Value"])


def scores_chart(values: pd.DataFrame) -> alt.Chart | None:
    """Box plots of every 0..1 metric across questions (one row per metric), or None."""
    scores = values[~values["metric"].isin(UNSCALED)]
    if scores.empty:
        return None
    chart: alt.Chart = (
        alt.Chart(scores)
        .mark_boxplot(extent="min-max", size=14)
        .encode(
            x=alt.X("Value:Q", title="Per-question value", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("Metric:N", title=None, sort=None, axis=_LABEL_AXIS),
            color=alt.Color("Metric:N", legend=None),
            tooltip=["Metric:N", "Value:Q"],
        )
        .properties(height=alt.Step(ROW_PX))
    )
    return chart


def histogram(values: pd.DataFrame, metric: str) -> alt.Chart | None:
    """How the questions spread over one metric's values (counts per bin), or None."""
    subset = values[values["metric"] == metric]
    if subset.empty:
        return None
    scale = alt.Scale() if metric in UNSCALED else alt.Scale(domain=[0, 1])
    bins = alt.Bin(maxbins=20) if metric in UNSCALED else alt.Bin(extent=[0, 1], step=0.05)
    chart: alt.Chart = (
        alt.Chart(subset)
        .mark_bar()
        .encode(
            x=alt.X("Value:Q", bin=bins, title=label(metric), scale=scale),
            y=alt.Y("count()", title="Questions"),
            tooltip=[alt.Tooltip("count()", title="Questions")],
        )
        .properties(height=220)
    )
    return chart


# --- comparisons -----------------------------------------------------------------------


def ci_text(low: float, high: float) -> str:
    """A confidence interval as ``[+0.0120, +0.0340]``."""
    return f"[{low:+.4f}, {high:+.4f}]"


def comparison_table(comparison: Json) -> pd.DataFrame:
    """Per-metric base, head, change, 95% interval and verdict (paired questions only)."""
    rows = [
        {
            "Metric": label(str(m["metric"])),
            "Questions": int(m.get("n", 0)),
            "Base": float(m["a"]),
            "Head": float(m["b"]),
            "Change": float(m["delta"]),
            "95% CI": ci_text(float(m["ci_low"]), float(m["ci_high"])),
            "Verdict": str(m.get("verdict", "")),
            "Better": "higher" if m.get("higher_is_better", True) else "lower",
            "Key": str(m["metric"]),
        }
        for m in comparison.get("metrics") or []
    ]
    columns = ["Metric", "Questions", "Base", "Head", "Change", "95% CI", "Verdict", "Better"]
    return pd.DataFrame(rows, columns=[*columns, "Key"])


def summary_changes(comparison: Json) -> pd.DataFrame:
    """Summary figures (rates, latency percentiles, tokens, counts) in both runs, no interval."""
    rows = [
        {
            "Group": group(str(s["metric"])),
            "Metric": label(str(s["metric"])),
            "Base": float(s["a"]),
            "Head": float(s["b"]),
            "Change": float(s["delta"]),
            "Better": "higher" if s.get("higher_is_better", True) else "lower",
            "Key": str(s["metric"]),
        }
        for s in comparison.get("summary") or []
    ]
    frame = pd.DataFrame(
        rows, columns=["Group", "Metric", "Base", "Head", "Change", "Better", "Key"]
    )
    return _by_group(frame)


def verdict_counts(comparison: Json) -> dict[str, int]:
    """How many metrics got better, worse or did not change significantly."""
    counts = {"better": 0, "worse": 0, "no significant change": 0}
    for metric in comparison.get("metrics") or []:
        verdict = str(metric.get("verdict", ""))
        counts[verdict] = counts.get(verdict, 0) + 1
    return counts


def verdict_sentence(comparison: Json) -> str:
    """One sentence on the comparison's outcome."""
    counts = verdict_counts(comparison)
    paired = int(comparison.get("paired_questions", 0))
    if not comparison.get("metrics"):
        return f"The runs share {paired} questions but no metric both of them scored."
    return (
        f"Over {paired} questions answered in both runs: {counts['better']} metric(s) better, "
        f"{counts['worse']} worse, {counts['no significant change']} without a significant change "
        "(95% paired bootstrap interval)."
    )


def delta_chart(comparison: Json) -> alt.LayerChart | None:
    """Bars of each 0..1 metric's change with its interval, coloured by verdict, or None."""
    frame = comparison_table(comparison)
    frame = frame[~frame["Key"].isin(UNSCALED)]
    if frame.empty:
        return None
    metrics = comparison.get("metrics") or []
    bounds = {str(m["metric"]): (float(m["ci_low"]), float(m["ci_high"])) for m in metrics}
    frame = frame.assign(
        low=frame["Key"].map(lambda k: bounds[k][0]),
        high=frame["Key"].map(lambda k: bounds[k][1]),
    )
    base = alt.Chart(frame).encode(y=alt.Y("Metric:N", title=None, sort=None, axis=_LABEL_AXIS))
    bars = base.mark_bar().encode(
        x=alt.X("Change:Q", title="Change (head − base), with 95% interval"),
        color=alt.Color(
            "Verdict:N",
            scale=alt.Scale(domain=list(VERDICT_COLOURS), range=list(VERDICT_COLOURS.values())),
            legend=alt.Legend(orient="bottom", title=None),
        ),
        tooltip=["Metric:N", alt.Tooltip("Change:Q", format="+.4f"), "95% CI:N", "Verdict:N"],
    )
    whiskers = base.mark_rule(color="#212121").encode(x="low:Q", x2="high:Q")
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#616161").encode(x="x:Q")
    layered: alt.LayerChart = (bars + whiskers + zero).properties(height=alt.Step(ROW_PX))
    return layered


def changed_table(comparison: Json) -> pd.DataFrame:
    """The questions that moved most: id, question, change score and declines in each run."""
    rows = [
        {
            "Id": str(q.get("id", "")),
            "Question": str(q.get("question", "")),
            "Change": float(q.get("change", 0.0)),
            "Declined (base)": bool(q.get("declined_a", False)),
            "Declined (head)": bool(q.get("declined_b", False)),
        }
        for q in comparison.get("changed") or []
    ]
    columns = ["Id", "Question", "Change", "Declined (base)", "Declined (head)"]
    return pd.DataFrame(rows, columns=columns)


def metric_pairs(question: Json) -> pd.DataFrame:
    """One changed question's metrics in both runs (metrics either run scored)."""
    base = question.get("metrics_a") or {}
    head = question.get("metrics_b") or {}
    names = [k for k in LABELS if k in base or k in head]
    names += sorted((set(base) | set(head)) - set(names))
    rows = [
        {"Metric": label(name), "Base": base.get(name), "Head": head.get(name)} for name in names
    ]
    return pd.DataFrame(rows, columns=["Metric", "Base", "Head"])


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def config_table(comparison: Json) -> pd.DataFrame:
    """The settings that differ between the runs: setting, base value, head value."""
    rows = [
        {"Setting": key, "Base": _show(pair[0]), "Head": _show(pair[1])}
        for key, pair in (comparison.get("config_changes") or {}).items()
        if isinstance(pair, list | tuple) and len(pair) == 2
    ]
    return pd.DataFrame(rows, columns=["Setting", "Base", "Head"])
