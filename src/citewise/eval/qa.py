"""Answer-quality evaluation: every dataset question through the real QA pipeline.

Each question is asked as the API asks it (`QAPipeline.ask` with a principal of the
tenant), scored (`answer_metrics.question_metrics`, plus the LLM-judged ragas
metrics when enabled) and appended to the run's ``results.jsonl`` before the
next one starts; questions already there are skipped, so a run resumes.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from citewise.answer.pipeline import QAPipeline
from citewise.core.errors import CitewiseError, ConfigError
from citewise.core.tenancy import Principal
from citewise.eval.answer_metrics import question_metrics
from citewise.eval.datasets import QADataset, QAItem
from citewise.eval.ragas_llm import LLMJudgedMetrics, judge_endpoint
from citewise.eval.runs import (
    QuestionResult,
    RunDir,
    RunRecord,
    config_snapshot,
    new_run_id,
)
from citewise.retrieval.store.base import VectorStore
from citewise.runtime import Runtime


@dataclass
class QARun:
    """What an evaluation run needs: the pipeline to ask and where results go."""

    pipeline: QAPipeline
    store: VectorStore
    tenant: str
    use_llm: bool
    judge: LLMJudgedMetrics | None = None
    groups: frozenset[str] = frozenset()


def check_tenant(store: VectorStore, tenant: str) -> int:
    """The tenant's chunk count.

    Raises:
        ConfigError: The tenant has no indexed documents.
    """
    try:
        chunks = store.count(tenant)
    except CitewiseError:
        chunks = 0
    if chunks == 0:
        raise ConfigError(
            f"tenant {tenant!r} has no indexed documents; ingest them first "
            f"(e.g. citewise ingest samples/kestrel --tenant {tenant})"
        )
    return chunks


def evaluate_item(run: QARun, item: QAItem) -> QuestionResult:
    """Ask one question and score its answer; an exception becomes the result's ``error``."""
    principal = Principal(tenant_id=run.tenant, user_id="citewise-eval", groups=run.groups)
    result = QuestionResult(
        id=item.id,
        question=item.question,
        tags=item.tags,
        answerable=item.answerable,
        reference=item.reference,
    )
    try:
        answer = run.pipeline.ask(item.question, principal, use_llm=run.use_llm)
    except CitewiseError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    except Exception as exc:  # noqa: BLE001 - recorded per question; the run goes on
        result.error = "".join(traceback.format_exception_only(exc)).strip()
        return result
    metrics = question_metrics(item, answer)
    judge_errors: dict[str, str] = {}
    if run.judge is not None:
        judged, judge_errors = run.judge.score(item, answer)
        metrics.update(judged)
    return result.model_copy(
        update={
            "answer": answer.answer,
            "declined": answer.declined,
            "decline_reason": answer.decline_reason,
            "tier": answer.tier,
            "retrieved_doc_ids": [p.doc_id for p in answer.passages],
            "cited_doc_ids": [c.doc_id for c in answer.citations],
            "timings_ms": {k: round(v, 2) for k, v in answer.timings_ms.items()},
            "usage": dict(answer.usage),
            "metrics": metrics,
            "judge_errors": judge_errors,
        }
    )


def run_qa(
    run: QARun,
    dataset: QADataset,
    run_dir: RunDir,
    record: RunRecord,
    *,
    on_question: Callable[[QuestionResult], None] | None = None,
) -> tuple[RunRecord, list[QuestionResult]]:
    """Evaluate every dataset question not yet in the run; write the summary.

    Args:
        run: Pipeline, tenant and options.
        dataset: The questions (already limited).
        run_dir: The run directory (started with `RunDir.start`).
        record: The run record `RunDir.start` returned.
        on_question: Called after each question (progress), also for skipped ones.

    Returns:
        The finished record (with the summary) and the results of the dataset's questions.
    """
    done = {r.id: r for r in run_dir.results()}
    results: list[QuestionResult] = []
    pending = [i for i in dataset.items if i.id not in done or done[i.id].error]
    if pending:  # one untimed extractive question warms the index and the models
        principal = Principal(tenant_id=run.tenant, user_id="citewise-eval", groups=run.groups)
        run.pipeline.ask(pending[0].question, principal, use_llm=False)
    for item in dataset.items:
        result = done.get(item.id)
        if result is None or result.error:
            result = evaluate_item(run, item)
            run_dir.append(result)
        results.append(result)
        if on_question is not None:
            on_question(result)
    return run_dir.finish(record, results), results


def default_runs_root(data_dir: Path) -> Path:
    """``<data_dir>/eval-runs``."""
    return data_dir / "eval-runs"


def evaluate_dataset(
    runtime: Runtime,
    dataset: QADataset,
    dataset_path: Path,
    *,
    tenant: str,
    use_llm: bool,
    llm_metrics: bool = False,
    run_dir: Path | None = None,
    run_id: str | None = None,
    judge_timeout_s: float = 600.0,
    on_question: Callable[[QuestionResult], None] | None = None,
) -> tuple[RunDir, RunRecord, list[QuestionResult]]:
    """Run (or resume) an evaluation of `dataset` on `runtime`'s pipeline.

    Args:
        runtime: The opened runtime (the same wiring as the API).
        dataset: The questions (already limited).
        dataset_path: Where they came from (recorded).
        tenant: The tenant whose documents answer them.
        use_llm: Let the generating tiers answer (else extractive only).
        llm_metrics: Also score the LLM-judged ragas metrics with the judge tier's model.
        run_dir: The run directory (default ``<data_dir>/eval-runs/<run_id>``).
        run_id: The run id (default: a timestamp and the configuration hash); giving an
            existing one resumes it.
        judge_timeout_s: Timeout of one LLM judge call.
        on_question: Progress callback.

    Raises:
        ConfigError: Empty tenant, an existing run of another configuration, no judge.
    """
    check_tenant(runtime.store, tenant)
    config = config_snapshot(
        runtime.settings,
        use_llm=use_llm,
        llm_metrics=llm_metrics,
        tiers=sorted(runtime.chat_tiers),
    )
    if run_dir is None:
        run_id = run_id or new_run_id(config)
        run_dir = default_runs_root(runtime.settings.data_dir) / run_id
    run_id = run_id or run_dir.name
    directory = RunDir(run_dir)
    record = directory.start(
        run_id=run_id, dataset=dataset, dataset_path=dataset_path, tenant=tenant, config=config
    )
    judge = (
        LLMJudgedMetrics(judge_endpoint(runtime, timeout_s=judge_timeout_s), runtime.embedder)
        if llm_metrics
        else None
    )
    runtime.warm_up()  # models loaded before the first question, not timed with it
    run = QARun(
        pipeline=runtime.pipeline,
        store=runtime.store,
        tenant=tenant,
        use_llm=use_llm,
        judge=judge,
    )
    record, results = run_qa(run, dataset, directory, record, on_question=on_question)
    return directory, record, results
