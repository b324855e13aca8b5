"""Compare two evaluation runs: paired bootstrap confidence intervals and the questions that moved.

Per-question metrics are paired by question id (questions both runs scored);
the 95% interval of the mean difference B - A comes from 2,000 paired bootstrap
resamples with a fixed seed, so the same two runs always give the same report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from citewise.eval.answer_metrics import higher_is_better
from citewise.eval.runs import QuestionResult, RunDir, RunRecord

RESAMPLES = 2000
SEED = 20261123
CONFIDENCE = 0.95
# Per-question metrics whose change ranks the questions that moved most.
MOVERS = ("rouge_l", "string_similarity", "id_context_recall", "groundedness", "quote_recall")


class MetricDelta(BaseModel):
    """One metric in both runs: means over the paired questions and the bootstrap interval."""

    metric: str
    n: int
    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float
    higher_is_better: bool
    verdict: str = Field(description="better, worse or no significant change (CI spans 0).")


class SummaryDelta(BaseModel):
    """A summary figure (rates, percentiles, token totals) without an interval."""

    metric: str
    a: float
    b: float
    delta: float
    higher_is_better: bool


class ChangedQuestion(BaseModel):
    """A question whose answer changed most between the runs."""

    id: str
    question: str
    change: float
    declined_a: bool
    declined_b: bool
    answer_a: str
    answer_b: str
    metrics_a: dict[str, float | None]
    metrics_b: dict[str, float | None]


class Comparison(BaseModel):
    """Everything `citewise eval compare` reports."""

    run_a: str
    run_b: str
    paired_questions: int
    dataset_match: bool
    config_changes: dict[str, list[Any]]
    metrics: list[MetricDelta]
    summary: list[SummaryDelta]
    changed: list[ChangedQuestion]


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float, float]:
    """Mean of ``b - a`` and its percentile bootstrap interval (``CONFIDENCE``)."""
    diffs = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if diffs.size == 0:
        return 0.0, 0.0, 0.0
    rng = np.random.default_rng(seed)
    index = rng.integers(0, diffs.size, size=(resamples, diffs.size))
    means = diffs[index].mean(axis=1)
    tail = (1.0 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(diffs.mean()), float(low), float(high)


def _verdict(delta: float, low: float, high: float, higher: bool) -> str:
    if low <= 0.0 <= high or delta == 0.0:
        return "no significant change"
    return "better" if (delta > 0) == higher else "worse"


def compare_runs(
    run_a: RunDir, run_b: RunDir, *, top: int = 10, resamples: int = RESAMPLES, seed: int = SEED
) -> Comparison:
    """Per-metric deltas with paired bootstrap CIs, summary deltas and the top movers."""
    record_a, record_b = run_a.load_record(), run_b.load_record()
    results_a = {r.id: r for r in run_a.results()}
    results_b = {r.id: r for r in run_b.results()}
    common = [i for i in results_a if i in results_b]
    names = sorted(
        {k for i in common for k in results_a[i].metrics}
        | {k for i in common for k in results_b[i].metrics}
    )
    deltas = []
    for name in names:
        pairs = [
            (va, vb)
            for i in common
            if (va := results_a[i].metrics.get(name)) is not None
            and (vb := results_b[i].metrics.get(name)) is not None
        ]
        if not pairs:
            continue
        arr = np.asarray(pairs, dtype=np.float64)
        delta, low, high = paired_bootstrap(arr[:, 0], arr[:, 1], resamples=resamples, seed=seed)
        higher = higher_is_better(name)
        deltas.append(
            MetricDelta(
                metric=name,
                n=len(pairs),
                a=float(arr[:, 0].mean()),
                b=float(arr[:, 1].mean()),
                delta=delta,
                ci_low=low,
                ci_high=high,
                higher_is_better=higher,
                verdict=_verdict(delta, low, high, higher),
            )
        )
    summary = [
        SummaryDelta(
            metric=key,
            a=record_a.summary[key],
            b=record_b.summary[key],
            delta=record_b.summary[key] - record_a.summary[key],
            higher_is_better=higher_is_better(key),
        )
        for key in sorted(set(record_a.summary) & set(record_b.summary))
    ]
    return Comparison(
        run_a=record_a.run_id,
        run_b=record_b.run_id,
        paired_questions=len(common),
        dataset_match=record_a.dataset.get("sha256") == record_b.dataset.get("sha256"),
        config_changes=config_changes(record_a, record_b),
        metrics=deltas,
        summary=summary,
        changed=_movers([(results_a[i], results_b[i]) for i in common], top),
    )


def _movers(pairs: list[tuple[QuestionResult, QuestionResult]], top: int) -> list[ChangedQuestion]:
    scored = []
    for a, b in pairs:
        change = float(a.declined != b.declined)
        for name in MOVERS:
            va, vb = a.metrics.get(name), b.metrics.get(name)
            if va is not None and vb is not None:
                change += abs(vb - va)
        if change > 0:
            scored.append((change, a, b))
    scored.sort(key=lambda t: (-t[0], t[1].id))
    return [
        ChangedQuestion(
            id=a.id,
            question=a.question,
            change=round(change, 4),
            declined_a=a.declined,
            declined_b=b.declined,
            answer_a=a.answer,
            answer_b=b.answer,
            metrics_a=a.metrics,
            metrics_b=b.metrics,
        )
        for change, a, b in scored[:top]
    ]


def config_changes(a: RunRecord, b: RunRecord) -> dict[str, list[Any]]:
    """Configuration keys (dotted) whose values differ: ``{key: [value_a, value_b]}``."""
    flat_a, flat_b = _flatten(a.config), _flatten(b.config)
    return {
        key: [flat_a.get(key), flat_b.get(key)]
        for key in sorted(set(flat_a) | set(flat_b))
        if flat_a.get(key) != flat_b.get(key)
    }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def markdown(comparison: Comparison) -> str:
    """The comparison as Markdown tables (the CLI prints this)."""
    lines = [
        f"Run A `{comparison.run_a}` vs run B `{comparison.run_b}`: "
        f"{comparison.paired_questions} paired questions"
        + ("" if comparison.dataset_match else " (datasets differ!)"),
        "",
    ]
    if comparison.config_changes:
        lines += ["Configuration changes:", ""]
        lines += [f"- `{k}`: {va!r} → {vb!r}" for k, (va, vb) in comparison.config_changes.items()]
        lines.append("")
    lines += [
        f"| metric | n | A | B | Δ (B−A) | {int(CONFIDENCE * 100)}% CI | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in comparison.metrics:
        lines.append(
            f"| {m.metric}{'' if m.higher_is_better else ' ↓'} | {m.n} | {m.a:.4f} | {m.b:.4f} "
            f"| {m.delta:+.4f} | [{m.ci_low:+.4f}, {m.ci_high:+.4f}] | {m.verdict} |"
        )
    wanted = [s for s in comparison.summary if s.metric.endswith(("_rate", ".p50", ".p95"))]
    if wanted:
        lines += ["", "| summary | A | B | Δ |", "|---|---|---|---|"]
        lines += [f"| {s.metric} | {s.a:.4f} | {s.b:.4f} | {s.delta:+.4f} |" for s in wanted]
    if comparison.changed:
        lines += ["", "Questions that changed most:", ""]
        for q in comparison.changed:
            flip = ""
            if q.declined_a != q.declined_b:
                flip = f" (declined {q.declined_a} → {q.declined_b})"
            lines.append(f"- `{q.id}` Δ={q.change:.3f}{flip}: {q.question}")
    return "\n".join(lines) + "\n"
