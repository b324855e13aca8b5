"""Retrieval evaluation on a BEIR dataset through Citewise's real ingestion and search paths."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

from citewise.core.tenancy import Principal
from citewise.eval.beir import BeirDataset
from citewise.eval.metrics import evaluate
from citewise.ingest.pipeline import ProgressSink, TextDocument
from citewise.retrieval.rerank.cross_encoder import CrossEncoderReranker
from citewise.retrieval.rerank.training import read_training_report
from citewise.retrieval.search import Retriever, SearchMode
from citewise.runtime import Runtime

MODES: tuple[SearchMode, ...] = ("bm25", "dense", "hybrid", "hybrid+rerank")
INGEST_BATCH = 128
CHUNK_DEPTH = 200  # chunks retrieved per query before collapsing to documents
DOC_DEPTH = 100


@dataclass
class ModeResult:
    """Metrics and latency of one retrieval mode."""

    mode: str
    metrics: dict[str, float]
    queries: int
    latency_ms_p50: float
    latency_ms_p99: float


@dataclass
class RetrievalReport:
    """Results of an evaluation run over one dataset split."""

    dataset: str
    split: str
    tenant: str
    corpus_fingerprint: str
    documents: int
    chunks: int
    indexed_now: int = 0
    note: str = ""
    settings: dict[str, object] = field(default_factory=dict)
    results: list[ModeResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable form."""
        return asdict(self)

    def markdown(self) -> str:
        """The table of modes as Markdown."""
        lines = [
            f"Dataset `{self.dataset}` split `{self.split}`: {self.documents} documents, "
            f"{self.chunks} chunks, {self.results[0].queries if self.results else 0} queries.",
            *([self.note] if self.note else []),
            "",
            "| mode | nDCG@10 | recall@10 | recall@100 | MRR@10 | p50 ms | p99 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.results:
            m = r.metrics
            lines.append(
                f"| {r.mode} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | "
                f"{m['recall@100']:.4f} | {m['mrr@10']:.4f} | "
                f"{r.latency_ms_p50:.1f} | {r.latency_ms_p99:.1f} |"
            )
        return "\n".join(lines) + "\n"


def tenant_for(dataset: BeirDataset) -> str:
    """Default tenant id for a dataset's corpus, e.g. ``beir-scifact``."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", dataset.name.lower()).strip("-") or "dataset"
    return f"beir-{slug}"[:63]


def ingest_corpus(
    runtime: Runtime, dataset: BeirDataset, *, tenant: str, progress: ProgressSink | None = None
) -> tuple[int, int]:
    """Ingest the corpus, skipping unchanged documents.

    Returns:
        The tenant's chunk count and how many documents were (re)indexed now.
    """
    docs = [
        TextDocument(doc_id=d.doc_id, title=d.title, text=d.text or d.title, source=d.doc_id)
        for d in dataset.corpus
        if (d.text or d.title).strip()
    ]
    indexed = 0
    for start in range(0, len(docs), INGEST_BATCH):
        outcomes = runtime.ingestor.ingest_texts(
            docs[start : start + INGEST_BATCH], tenant_id=tenant, progress=progress
        )
        indexed += sum(o.status == "indexed" for o in outcomes)
    if indexed:
        runtime.store.optimize(tenant)
    return runtime.store.count(tenant), indexed


def rank_queries(
    retriever: Retriever,
    dataset: BeirDataset,
    mode: SearchMode,
    *,
    tenant: str,
    query_ids: Collection[str] | None = None,
    on_query: Callable[[], None] | None = None,
) -> tuple[dict[str, list[str]], list[float]]:
    """Rank documents (by their best chunk) for each query; also return per-query latency in ms."""
    principal = Principal(tenant_id=tenant, user_id="eval")
    run: dict[str, list[str]] = {}
    latencies: list[float] = []
    for query_id, text in dataset.queries.items():
        if query_ids is not None and query_id not in query_ids:
            continue
        start = time.perf_counter()
        hits = retriever.search(text, principal, top_k=CHUNK_DEPTH, mode=mode)
        latencies.append((time.perf_counter() - start) * 1000)
        ranking: list[str] = []
        for hit in hits:
            if hit.chunk.doc_id not in ranking:
                ranking.append(hit.chunk.doc_id)
        run[query_id] = ranking[:DOC_DEPTH]
        if on_query is not None:
            on_query()
    return run, latencies


def mode_result(
    mode: str, run: dict[str, list[str]], latencies: list[float], dataset: BeirDataset
) -> ModeResult:
    """Metrics of a run against the dataset's judgements, with latency percentiles."""
    ordered = sorted(latencies)
    return ModeResult(
        mode=mode,
        metrics=evaluate(run, {q: dataset.qrels[q] for q in run if q in dataset.qrels}),
        queries=len(run),
        latency_ms_p50=round(statistics.median(ordered), 2),
        latency_ms_p99=round(ordered[min(len(ordered) - 1, int(0.99 * (len(ordered) - 1)))], 2),
    )


def run_mode(
    runtime: Runtime,
    dataset: BeirDataset,
    mode: SearchMode,
    *,
    tenant: str,
    query_ids: Collection[str] | None = None,
    on_query: Callable[[], None] | None = None,
) -> ModeResult:
    """Search the judged queries (all, or `query_ids`) and score the ranking."""
    run, latencies = rank_queries(
        runtime.retriever, dataset, mode, tenant=tenant, query_ids=query_ids, on_query=on_query
    )
    return mode_result(mode, run, latencies, dataset)


def untrained_queries(retriever: Retriever, dataset: BeirDataset) -> set[str] | None:
    """The dataset's queries the configured reranker was not trained on.

    None when no reranker trained by Citewise on this dataset is configured (every
    query may be scored). Scores of a reranker on its own training queries are
    never reported: evaluation restricts every mode to the queries returned here.
    """
    reranker = retriever.reranker
    if not isinstance(reranker, CrossEncoderReranker):
        return None
    report = read_training_report(Path(reranker.source))
    if report is None or report.trained_on.get("dataset") != dataset.name:
        return None
    trained = set(report.trained_on.get("query_ids", []))
    return {q for q in dataset.queries if q not in trained}
