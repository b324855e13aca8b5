"""A self-contained HTML report of a run comparison, with matplotlib plots embedded as PNG."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from citewise.eval.compare import CONFIDENCE, Comparison


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(comparison: Comparison) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: list[tuple[str, str]] = []
    quality = [m for m in comparison.metrics if m.metric not in ("latency_ms", "tokens")]
    if quality:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(quality) + 1.2))
        names = [m.metric for m in quality]
        deltas = [m.delta for m in quality]
        errors = [[m.delta - m.ci_low for m in quality], [m.ci_high - m.delta for m in quality]]
        colours = [
            "#2e7d32" if m.verdict == "better" else "#c62828" if m.verdict == "worse" else "#888888"
            for m in quality
        ]
        ax.barh(names, deltas, xerr=errors, color=colours, capsize=3)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.invert_yaxis()
        ax.set_xlabel(f"mean change B − A, {int(CONFIDENCE * 100)}% paired bootstrap CI")
        plots.append(("Metric changes", _png(fig)))
        plt.close(fig)
    latency = [
        s
        for s in comparison.summary
        if s.metric.startswith("latency.") and s.metric.endswith(".p50")
    ]
    if latency:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        stages = [s.metric.split(".")[1] for s in latency]
        positions = range(len(stages))
        ax.bar([p - 0.2 for p in positions], [s.a for s in latency], width=0.4, label="A")
        ax.bar([p + 0.2 for p in positions], [s.b for s in latency], width=0.4, label="B")
        ax.set_xticks(list(positions), stages, rotation=30, ha="right")
        ax.set_ylabel("p50 ms")
        ax.legend()
        plots.append(("Latency per stage (p50)", _png(fig)))
        plt.close(fig)
    for name in ("rouge_l", "id_context_recall"):
        delta = next((m for m in comparison.metrics if m.metric == name), None)
        if delta is None:
            continue
        movers = comparison.changed
        if not movers:
            continue
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(movers) + 1.2))
        labels = [q.id for q in movers]
        a = [q.metrics_a.get(name) or 0.0 for q in movers]
        b = [q.metrics_b.get(name) or 0.0 for q in movers]
        ax.scatter(a, labels, label="A", marker="o")
        ax.scatter(b, labels, label="B", marker="x")
        ax.invert_yaxis()
        ax.set_xlabel(name)
        ax.legend()
        plots.append((f"{name} of the questions that changed most", _png(fig)))
        plt.close(fig)
    return plots


def html_report(comparison: Comparison) -> str:
    """The comparison as one HTML page (no external resources)."""
    esc = html.escape
    rows = "".join(
        f"<tr class='{esc(m.verdict.split()[0])}'><td>{esc(m.metric)}"
        f"{'' if m.higher_is_better else ' ↓'}</td><td>{m.n}</td><td>{m.a:.4f}</td>"
        f"<td>{m.b:.4f}</td><td>{m.delta:+.4f}</td><td>[{m.ci_low:+.4f}, {m.ci_high:+.4f}]</td>"
        f"<td>{esc(m.verdict)}</td></tr>"
        for m in comparison.metrics
    )
    summary = "".join(
        f"<tr><td>{esc(s.metric)}</td><td>{s.a:.4f}</td><td>{s.b:.4f}</td><td>{s.delta:+.4f}</td></tr>"
        for s in comparison.summary
    )
    changes = (
        "".join(
            f"<li><code>{esc(k)}</code>: {esc(repr(va))} → {esc(repr(vb))}</li>"
            for k, (va, vb) in comparison.config_changes.items()
        )
        or "<li>none</li>"
    )
    movers = "".join(
        f"<tr><td>{esc(q.id)}</td><td>{esc(q.question)}</td><td>{q.change:.3f}</td>"
        f"<td>{'declined' if q.declined_a else esc(q.answer_a)}</td>"
        f"<td>{'declined' if q.declined_b else esc(q.answer_b)}</td></tr>"
        for q in comparison.changed
    )
    figures = "".join(
        f"<h2>{esc(title)}</h2><img alt='{esc(title)}' src='data:image/png;base64,{data}'>"
        for title, data in _plots(comparison)
    )
    differ = "" if comparison.dataset_match else " · <b>datasets differ</b>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Citewise eval: {esc(comparison.run_a)} vs {esc(comparison.run_b)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 75em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }}
tr.better td {{ background: #e8f5e9; }} tr.worse td {{ background: #ffebee; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Run comparison</h1>
<p>A: <code>{esc(comparison.run_a)}</code> · B: <code>{esc(comparison.run_b)}</code> ·
{comparison.paired_questions} paired questions{differ}</p>
<h2>Configuration changes</h2><ul>{changes}</ul>
<h2>Per-question metrics (↓: lower is better)</h2>
<table><tr><th>metric</th><th>n</th><th>A</th><th>B</th><th>Δ</th>
<th>{int(CONFIDENCE * 100)}% CI</th><th>verdict</th></tr>{rows}</table>
{figures}
<h2>Questions that changed most</h2>
<table><tr><th>id</th><th>question</th><th>change</th><th>answer A</th>
<th>answer B</th></tr>{movers}</table>
<h2>Summary figures</h2>
<table><tr><th>figure</th><th>A</th><th>B</th><th>Δ</th></tr>{summary}</table>
</body></html>
"""
