"""Benchmark the vector store: upsert rate and filtered hybrid query latency.

Loads N random 384-d chunks with ~30-term BM25-like sparse vectors into Qdrant Edge,
optimizes, and times filtered hybrid queries (dense + sparse prefetch, RRF, tenant and
ACL filter, a quarter of them also filtered on documents). The same runs on
qdrant-client's in-process ``:memory:`` mode at a smaller N as a baseline, with Edge
at that same N for a like-for-like ratio.

    python bench/bench_store.py               # 20k chunks (about a minute on 2 cores)
    python bench/bench_store.py --n 100000    # the 100k target
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import structlog
from qdrant_client import QdrantClient

from citewise.core.schemas import Chunk, SparseVector
from citewise.retrieval.store.base import StoreSchema, VectorStore
from citewise.retrieval.store.client import QdrantClientStore
from citewise.retrieval.store.edge import EdgeStore

TENANT = "bench"
VOCAB = 30_000
DIM = 384
SCHEMA = StoreSchema(dimensions=DIM)
TEXT = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 8)[
    :640
]


def hardware() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as handle:
        mem_kb = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
    usable = len(os.sched_getaffinity(0))
    return (
        f"{model}; {os.cpu_count()} logical CPUs ({usable} usable); "
        f"{mem_kb / 1024**2:.1f} GiB RAM; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def zipf_terms(rng: np.random.Generator, count: int) -> list[int]:
    """Distinct term ids drawn from a Zipf-like distribution over the vocabulary."""
    terms: set[int] = set()
    while len(terms) < count:
        terms.update(int(t) % VOCAB for t in rng.zipf(1.3, size=count * 2))
    return sorted(terms)[:count]


def make_data(n: int, seed: int) -> tuple[list[Chunk], np.ndarray, list[SparseVector], list[str]]:
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((n, DIM)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    doc_ids = [f"doc{i}" for i in range(max(1, n // 20))]  # 20 chunks per document
    chunks = [
        Chunk(
            tenant_id=TENANT,
            doc_id=doc_ids[i // 20],
            version=1,
            chunk_index=i % 20,
            text=TEXT,
            title=f"Document {i // 20}",
            section="Section",
            page=1 + (i % 20) // 3,
            acl_groups=["hr"] if (i // 20) % 5 == 0 else ["*"],  # a fifth is HR-only
            source=f"doc{i // 20}.pdf",
        )
        for i in range(n)
    ]
    sparse = []
    for _ in range(n):
        terms = zipf_terms(rng, int(rng.integers(20, 41)))
        sparse.append(
            SparseVector(
                indices=terms, values=[float(v) for v in rng.uniform(0.3, 2.5, len(terms))]
            )
        )
    return chunks, dense, sparse, doc_ids


def load(
    store: VectorStore, chunks: list[Chunk], dense: np.ndarray, sparse: list[SparseVector]
) -> float:
    """Upsert in ingest-sized batches; returns points per second (namespace creation excluded)."""
    batch = 1000
    store.ensure_namespace(TENANT)
    started = time.perf_counter()
    dense_rows = dense.tolist()
    for start in range(0, len(chunks), batch):
        end = start + batch
        store.upsert(TENANT, chunks[start:end], dense_rows[start:end], sparse[start:end])
    return len(chunks) / (time.perf_counter() - started)


def time_queries(store: VectorStore, queries: int, doc_ids: list[str], seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    latencies = []
    for q in range(queries):
        dense = rng.standard_normal(DIM).astype(np.float32)
        dense /= np.linalg.norm(dense)
        sparse = SparseVector(indices=zipf_terms(rng, 6), values=[1.0] * 6)
        docs = (
            list(rng.choice(doc_ids, size=min(50, len(doc_ids)), replace=False))
            if q % 4 == 0
            else None
        )
        started = time.perf_counter()
        hits = store.hybrid_query(
            TENANT,
            dense=dense.tolist(),
            sparse=sparse,
            acl_groups=["*"],
            limit=6,
            prefetch_dense=40,
            prefetch_sparse=40,
            doc_ids=docs,
        )
        latencies.append((time.perf_counter() - started) * 1000)
        assert hits and all(h.chunk.acl_groups == ["*"] for h in hits)
    return latencies


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def report(label: str, n: int, rate: float, latencies: list[float]) -> float:
    p50 = statistics.median(latencies)
    print(
        f"{label:<34} N={n:>7,}  upsert {rate:>8,.0f} points/s  "
        f"hybrid p50 {p50:7.2f} ms  p99 {percentile(latencies, 99):7.2f} ms"
    )
    return p50


def run_edge(n: int, queries: int, seed: int) -> tuple[float, float, list[float]]:
    chunks, dense, sparse, doc_ids = make_data(n, seed)
    with tempfile.TemporaryDirectory(prefix="citewise-bench-") as tmp:
        store = EdgeStore(Path(tmp), SCHEMA)
        try:
            rate = load(store, chunks, dense, sparse)
            started = time.perf_counter()
            store.optimize(TENANT)
            optimize_s = time.perf_counter() - started
            time_queries(store, 10, doc_ids, seed + 1)  # warm-up
            latencies = time_queries(store, queries, doc_ids, seed + 2)
        finally:
            store.close()
    return rate, optimize_s, latencies


def run_client(n: int, queries: int, seed: int) -> tuple[float, list[float]]:
    chunks, dense, sparse, doc_ids = make_data(n, seed)
    store = QdrantClientStore(QdrantClient(location=":memory:"), SCHEMA, owns_client=True)
    try:
        rate = load(store, chunks, dense, sparse)
        time_queries(store, 3, doc_ids, seed + 1)
        latencies = time_queries(store, queries, doc_ids, seed + 2)
    finally:
        store.close()
    return rate, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="chunks loaded into Edge")
    parser.add_argument("--client-n", type=int, default=2_000, help="chunks for the baseline")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--client-queries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    warnings.filterwarnings("ignore", message="Payload indexes have no effect")

    print(f"hardware: {hardware()}")
    print(
        f"query: hybrid dense+sparse prefetch 40/40, RRF, limit 6, filter tenant + acl "
        f"(80% of points visible), 1 in 4 also on 50 doc_ids; {args.queries} queries"
    )
    rate, optimize_s, latencies = run_edge(args.n, args.queries, args.seed)
    edge_p50 = report("Qdrant Edge (optimized)", args.n, rate, latencies)
    print(f"{'':<34} optimize() took {optimize_s:.1f} s")

    small_rate, _, small_lat = run_edge(args.client_n, args.client_queries, args.seed)
    edge_small_p50 = report("Qdrant Edge (optimized)", args.client_n, small_rate, small_lat)
    client_rate, client_lat = run_client(args.client_n, args.client_queries, args.seed)
    client_p50 = report("qdrant-client :memory: (baseline)", args.client_n, client_rate, client_lat)
    print(
        f"ratio at N={args.client_n:,}: Edge answers {client_p50 / edge_small_p50:.0f}x faster "
        f"(p50), loads at {small_rate / client_rate:.1f}x the baseline's rate; Edge at "
        f"N={args.n:,} answers {client_p50 / edge_p50:.0f}x faster than the baseline at "
        f"N={args.client_n:,}"
    )


if __name__ == "__main__":
    main()
