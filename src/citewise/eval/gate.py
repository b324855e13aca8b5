"""Regression gate: a run's summary metrics against a committed baseline with tolerances.

Baseline file (``samples/kestrel-qa-baseline.json``)::

    {"dataset": "kestrel-qa.jsonl", "tenant": "demo", "ids": ["hb-04", ...], "use_llm": false,
     "metrics": {"id_context_recall": {"value": 0.93, "tolerance": 0.05},
                 "false_decline_rate": {"value": 0.0, "tolerance": 0.1,
                                        "higher_is_better": false}}}

``dataset`` is relative to the baseline file. A metric fails when it is worse than
``value`` by more than ``tolerance`` in its direction (``higher_is_better``, default
from the metric's name), or when the run lacks it.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from citewise.core.errors import ConfigError
from citewise.eval.answer_metrics import higher_is_better


class Threshold(BaseModel):
    """One gated metric."""

    value: float
    tolerance: float = Field(ge=0)
    higher_is_better: bool | None = None


class Baseline(BaseModel):
    """The baseline file: what to run and the metrics to hold."""

    dataset: str = ""
    tenant: str = ""
    limit: int | None = None
    ids: list[str] | None = Field(None, description="Only these questions (before the limit).")
    use_llm: bool = False
    metrics: dict[str, Threshold]

    model_config = {"extra": "forbid"}

    def direction(self, metric: str) -> bool:
        """True when higher is better for `metric`."""
        explicit = self.metrics[metric].higher_is_better
        return higher_is_better(metric) if explicit is None else explicit


class GateCheck(BaseModel):
    """One metric's verdict."""

    metric: str
    baseline: float
    tolerance: float
    actual: float | None
    higher_is_better: bool
    passed: bool


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file.

    Raises:
        ConfigError: Unreadable or invalid.
    """
    try:
        return Baseline.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read baseline {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise ConfigError(f"{path}: {where}: {error['msg']}") from exc


def check(summary: dict[str, float], baseline: Baseline) -> list[GateCheck]:
    """Every baseline metric against the run's summary."""
    checks = []
    for name, threshold in baseline.metrics.items():
        higher = baseline.direction(name)
        actual = summary.get(name)
        if actual is None:
            passed = False
        elif higher:
            passed = actual >= threshold.value - threshold.tolerance - 1e-12
        else:
            passed = actual <= threshold.value + threshold.tolerance + 1e-12
        checks.append(
            GateCheck(
                metric=name,
                baseline=threshold.value,
                tolerance=threshold.tolerance,
                actual=actual,
                higher_is_better=higher,
                passed=passed,
            )
        )
    return checks


def baseline_from_summary(
    summary: dict[str, float],
    tolerances: dict[str, float],
    *,
    dataset: str = "",
    tenant: str = "",
    limit: int | None = None,
    use_llm: bool = False,
) -> Baseline:
    """A baseline holding `summary`'s values for the metrics named in `tolerances`."""
    missing = [m for m in tolerances if m not in summary]
    if missing:
        raise ConfigError(f"the run has no metric(s) {missing}")
    return Baseline(
        dataset=dataset,
        tenant=tenant,
        limit=limit,
        use_llm=use_llm,
        metrics={
            m: Threshold(
                value=round(summary[m], 4), tolerance=tol, higher_is_better=higher_is_better(m)
            )
            for m, tol in tolerances.items()
        },
    )


def write_baseline(baseline: Baseline, path: Path) -> None:
    """Write a baseline file (indented JSON)."""
    path.write_text(
        json.dumps(baseline.model_dump(exclude_none=True), indent=2) + "\n", encoding="utf-8"
    )


def markdown(checks: list[GateCheck]) -> str:
    """The verdicts as a Markdown table."""
    lines = ["| metric | baseline | tolerance | actual | result |", "|---|---|---|---|---|"]
    for c in checks:
        bound = "≥" if c.higher_is_better else "≤"
        limit = c.baseline - c.tolerance if c.higher_is_better else c.baseline + c.tolerance
        actual = "missing" if c.actual is None else f"{c.actual:.4f}"
        lines.append(
            f"| {c.metric} | {c.baseline:.4f} | {bound} {limit:.4f} | {actual} | "
            f"{'pass' if c.passed else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"


# What `citewise eval baseline` gates by default (absolute tolerances).
DEFAULT_TOLERANCES: dict[str, float] = {
    "id_context_recall": 0.05,
    "id_context_precision": 0.08,
    "quote_recall": 0.08,
    "rouge_l": 0.05,
    "string_similarity": 0.05,
    "citation_validity": 0.02,
    "groundedness": 0.05,
    "correct_decline_rate": 0.15,
    "false_decline_rate": 0.10,
}
