"""Reranker training data from a labelled dataset, and held-out evaluation by query folds.

Hard negatives are mined from Citewise's own first-stage retrieval: the passages
hybrid search ranks highest for a query that belong to no relevant document.
Queries are split into folds by a stable hash of their id, so a model trained on
some folds is only ever scored on the others.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from citewise.core.schemas import ScoredChunk
from citewise.core.tenancy import Principal
from citewise.eval.beir import BeirDataset
from citewise.eval.retrieval import ModeResult, mode_result, rank_queries
from citewise.retrieval.rerank import Reranker, passage_text
from citewise.retrieval.rerank.cross_encoder import CrossEncoderReranker
from citewise.retrieval.rerank.factory import trained_reranker_dir
from citewise.retrieval.rerank.training import (
    TrainingConfig,
    TrainingExample,
    TrainingReport,
    read_training_report,
    train_cross_encoder,
)
from citewise.retrieval.search import Retriever
from citewise.runtime import Runtime

MINE_DEPTH = 30  # first-stage chunks inspected per query
NEGATIVE_POOL = 12  # hard negatives are sampled from this many top non-relevant documents


def fold_of(query_id: str, folds: int) -> int:
    """The fold (0..folds-1) a query belongs to; stable across runs and machines."""
    digest = hashlib.blake2b(query_id.encode(), digest_size=4).hexdigest()
    return int(digest, 16) % folds


def split_folds(query_ids: Iterable[str], folds: int, held_out: int) -> tuple[list[str], list[str]]:
    """(training ids, held-out ids) for fold `held_out` of `folds`."""
    train: list[str] = []
    test: list[str] = []
    for query_id in query_ids:
        (test if fold_of(query_id, folds) == held_out else train).append(query_id)
    return train, test


def examples_from_hits(
    query_id: str,
    query: str,
    hits: list[ScoredChunk],
    relevant: Collection[str],
    *,
    negatives: int,
    positives: int = 2,
    rng: random.Random,
) -> list[TrainingExample]:
    """Training examples for one query from its first-stage hits.

    Each of the best-ranked chunks of relevant documents (up to `positives`)
    becomes one example with `negatives` chunks sampled from the top
    non-relevant documents (one chunk per document). Returns nothing when
    retrieval found no relevant chunk or too few negatives.
    """
    pos = [h for h in hits if h.chunk.doc_id in relevant][:positives]
    seen: set[str] = set()
    pool: list[ScoredChunk] = []
    for hit in hits:
        if hit.chunk.doc_id in relevant or hit.chunk.doc_id in seen:
            continue
        seen.add(hit.chunk.doc_id)
        pool.append(hit)
    pool = pool[:NEGATIVE_POOL]
    if not pos or len(pool) < negatives:
        return []
    return [
        TrainingExample(
            query_id=query_id,
            query=query,
            positive=passage_text(p.chunk),
            negatives=tuple(passage_text(n.chunk) for n in rng.sample(pool, negatives)),
        )
        for p in pos
    ]


def mine_examples(
    runtime: Runtime,
    dataset: BeirDataset,
    query_ids: Collection[str],
    *,
    tenant: str,
    negatives: int = 3,
    seed: int = 13,
    on_query: Callable[[], None] | None = None,
) -> list[TrainingExample]:
    """Mine training examples for `query_ids` with hybrid search over the ingested corpus."""
    principal = Principal(tenant_id=tenant, user_id="reranker-training")
    rng = random.Random(seed)
    examples: list[TrainingExample] = []
    for query_id in sorted(query_ids):
        relevant = {d for d, grade in dataset.qrels.get(query_id, {}).items() if grade > 0}
        if relevant:
            query = dataset.queries[query_id]
            hits = runtime.retriever.search(query, principal, top_k=MINE_DEPTH, mode="hybrid")
            examples += examples_from_hits(
                query_id, query, hits, relevant, negatives=negatives, rng=rng
            )
        if on_query is not None:
            on_query()
    return examples


@dataclass
class FoldResult:
    """One fold of a cross-validation: trained on the other folds, scored on this one."""

    fold: int
    train_queries: int
    test_queries: int
    examples: int
    train_seconds: float
    ndcg_hybrid: float
    ndcg_rerank: float


def evaluate_fold(
    runtime: Runtime,
    dataset: BeirDataset,
    reranker: Reranker,
    test_ids: Collection[str],
    *,
    tenant: str,
    runs: dict[str, tuple[dict[str, list[str]], list[float]]],
    on_query: Callable[[], None] | None = None,
) -> tuple[float, float]:
    """Rank held-out queries with ``hybrid`` and ``hybrid+rerank``; merge into `runs`.

    Returns:
        nDCG@10 of hybrid and of hybrid+rerank on this fold.
    """
    retriever = Retriever(
        runtime.settings.retrieval,
        embedder=runtime.embedder,
        store=runtime.store,
        reranker=reranker,
    )
    scores = []
    for mode in ("hybrid", "hybrid+rerank"):
        run, latencies = rank_queries(
            retriever, dataset, mode, tenant=tenant, query_ids=test_ids, on_query=on_query
        )
        merged_run, merged_latencies = runs.setdefault(mode, ({}, []))
        merged_run.update(run)
        merged_latencies.extend(latencies)
        scores.append(mode_result(mode, run, latencies, dataset).metrics["ndcg@10"])
    return scores[0], scores[1]


def merged_results(
    runs: dict[str, tuple[dict[str, list[str]], list[float]]], dataset: BeirDataset
) -> list[ModeResult]:
    """Mode results over every held-out query of every fold."""
    return [mode_result(mode, run, lat, dataset) for mode, (run, lat) in runs.items()]


Progress = Callable[[str, int, int], None]
"""Progress callback: (task description, completed, total)."""


@dataclass
class RerankerTraining:
    """Outcome of `train_reranker`: where the model is and how it scored on held-out queries."""

    model_dir: Path
    report: TrainingReport
    folds: list[FoldResult] = field(default_factory=list)
    results: list[ModeResult] = field(default_factory=list)


def train_reranker(
    runtime: Runtime,
    dataset: BeirDataset,
    *,
    tenant: str,
    name: str,
    config: TrainingConfig,
    folds: int,
    held_out: Collection[int],
    negatives: int = 3,
    progress: Progress | None = None,
) -> RerankerTraining:
    """Mine hard negatives, train fold models, score them on held-out folds, train the model.

    For each fold in `held_out`, a model is trained on every other fold and
    scored on that fold alone (``hybrid`` vs ``hybrid+rerank``); the fold models
    are saved as ``NAME-foldK``. The model saved as ``NAME`` is trained on the
    folds outside `held_out`, so the scores reported never include a query it
    was trained on. With an empty `held_out` it is trained on every query and
    nothing is scored.
    """
    report = _no_progress if progress is None else progress
    judged = [q for q in dataset.queries if q in dataset.qrels]
    mined = 0

    def on_query() -> None:
        nonlocal mined
        mined += 1
        report("mine hard negatives", mined, len(judged))

    examples = mine_examples(
        runtime, dataset, judged, tenant=tenant, negatives=negatives, on_query=on_query
    )
    runs: dict[str, tuple[dict[str, list[str]], list[float]]] = {}
    fold_results: list[FoldResult] = []
    models_dir = runtime.settings.models_dir
    for fold in sorted(held_out):
        train_ids, test_ids = split_folds(judged, folds, fold)
        fold_dir = trained_reranker_dir(models_dir, f"{name}-fold{fold}")
        fold_report = _train(
            examples, set(train_ids), config, fold_dir, dataset, folds, f"train fold {fold}", report
        )
        reranker = CrossEncoderReranker(str(fold_dir), quantize=False)
        done = 0

        def on_test() -> None:
            nonlocal done
            done += 1
            report(f"score fold {fold}", done, 2 * len(test_ids))  # noqa: B023

        hybrid, reranked = evaluate_fold(
            runtime, dataset, reranker, set(test_ids), tenant=tenant, runs=runs, on_query=on_test
        )
        fold_results.append(
            FoldResult(
                fold=fold,
                train_queries=len(train_ids),
                test_queries=len(test_ids),
                examples=fold_report.examples,
                train_seconds=fold_report.seconds,
                ndcg_hybrid=round(hybrid, 4),
                ndcg_rerank=round(reranked, 4),
            )
        )
    final_ids = {q for q in judged if fold_of(q, folds) not in set(held_out)}
    model_dir = trained_reranker_dir(models_dir, name)
    if len(held_out) == 1:
        # The single fold model was trained on exactly the final model's queries.
        only = trained_reranker_dir(models_dir, f"{name}-fold{next(iter(held_out))}")
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.copytree(only, model_dir)
        final = read_training_report(model_dir)
        assert final is not None
    else:
        final = _train(examples, final_ids, config, model_dir, dataset, folds, "train", report)
    return RerankerTraining(
        model_dir=model_dir,
        report=final,
        folds=fold_results,
        results=merged_results(runs, dataset) if runs else [],
    )


def _train(
    examples: list[TrainingExample],
    query_ids: set[str],
    config: TrainingConfig,
    out_dir: Path,
    dataset: BeirDataset,
    folds: int,
    label: str,
    report: Progress,
) -> TrainingReport:
    chosen = [e for e in examples if e.query_id in query_ids]
    return train_cross_encoder(
        chosen,
        config,
        out_dir,
        trained_on={
            "dataset": dataset.name,
            "split": dataset.split,
            "corpus_fingerprint": dataset.fingerprint(),
            "folds": folds,
            "query_ids": sorted(query_ids),
        },
        on_step=lambda step, total: report(label, step, total),
    )


def _no_progress(_task: str, _done: int, _total: int) -> None:
    return None
