"""Two real evaluation runs on disk (RunDir) over the sample QA set, for the Evaluation page tests.

The results are written, not computed by the pipeline (that takes minutes): real
`QuestionResult` values over real dataset questions, with metrics that differ
between a base and a head run in known ways (head: better ROUGE-L, top_k 8 → 12).
"""

from __future__ import annotations

from pathlib import Path

from citewise.eval.compare import Comparison, compare_runs
from citewise.eval.datasets import load_dataset
from citewise.eval.runs import QuestionResult, RunDir, RunRecord

DATASET = Path(__file__).resolve().parents[2] / "samples" / "kestrel-qa.jsonl"
BASE_ID = "20261120-090000-aaaaaa"
HEAD_ID = "20261121-090000-bbbbbb"


def _results(variant: str) -> list[QuestionResult]:
    dataset = load_dataset(DATASET)
    answerable = [i for i in dataset.items if i.answerable][:10]
    unanswerable = [i for i in dataset.items if not i.answerable][:4]
    head = variant == "head"
    results = []
    for n, item in enumerate(answerable + unanswerable):
        if item.answerable:
            # head declines nothing; base wrongly declines the first answerable question
            declined = not head and n == 0
            rouge = 0.0 if declined else round(0.30 + 0.04 * n + (0.15 if head else 0.0), 4)
            metrics: dict[str, float | None] = {
                "rouge_l": rouge,
                "string_similarity": round(rouge * 0.9, 4),
                "id_context_recall": 1.0 if n % 3 else 0.5,
                "groundedness": None if declined else (0.9 if head else 0.8),
                "citation_validity": None if declined else 1.0,
                "false_decline": 1.0 if declined else 0.0,
            }
        else:
            declined = not (head and n == 12)  # head answers one unanswerable question
            metrics = {"correct_decline": 1.0 if declined else 0.0}
        metrics["latency_ms"] = 400.0 + 10 * n + (50.0 if head else 0.0)
        results.append(
            QuestionResult(
                id=item.id,
                question=item.question,
                tags=item.tags,
                answerable=item.answerable,
                reference=item.reference,
                answer="" if declined else f"{item.reference or 'A guess.'} ({variant})",
                declined=declined,
                decline_reason="gate" if declined else "",
                tier="extractive",
                timings_ms={"retrieve": 40.0 + n, "total": 400.0 + 10 * n + (50 if head else 0)},
                usage={"prompt": 300 + n, "completion": 0},
                metrics=metrics,
            )
        )
    return results


def write_run(runs_root: Path, variant: str, *, tenant: str = "acme") -> RunRecord:
    """Write the ``base`` or ``head`` run under `runs_root` and return its finished record."""
    run_id = HEAD_ID if variant == "head" else BASE_ID
    config = {
        "fusion": "rrf",
        "top_k": 12 if variant == "head" else 8,
        "prompt_version": "abc123def456",
        "tiers_running": ["extractive"],
    }
    directory = RunDir(runs_root / run_id)
    record = directory.start(
        run_id=run_id,
        dataset=load_dataset(DATASET),
        dataset_path=DATASET,
        tenant=tenant,
        config=config,
    )
    results = _results(variant)
    for result in results:
        directory.append(result)
    return directory.finish(record, directory.results())


def comparison(runs_root: Path) -> Comparison:
    """`compare_runs` of the two written runs (base, head)."""
    return compare_runs(RunDir(runs_root / BASE_ID), RunDir(runs_root / HEAD_ID))
