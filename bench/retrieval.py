"""Retrieval benchmark: filtered hybrid latency at scale, keyword search against rank-bm25.

Not a test. Prints the hardware, then
1. hybrid query latency (dense + BM25 prefetch, fused, tenant and ACL filter) on
   Qdrant Edge at each size in --sizes (synthetic chunks, see bench_store.py);
2. keyword search at --keyword-n documents of synthetic Zipf text: Citewise's BM25
   (Qdrant Edge sparse vectors with the IDF modifier, tenant and ACL filter)
   against rank-bm25's BM25Okapi over the same tokens, same queries, same run,
   reported as a speed ratio.

    python bench/retrieval.py                          # 10k and 100k chunks, 100k docs
    python bench/retrieval.py --sizes 10000 --keyword-n 20000   # quicker
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from bench_store import SCHEMA, TENANT, hardware, percentile, report, run_edge
from citewise.core.logging import configure_logging
from citewise.core.schemas import Chunk
from citewise.retrieval.sparse import BM25Encoder, tokenize
from citewise.retrieval.store.edge import EdgeStore

WORDS = 20_000


def synthetic_texts(n: int, seed: int) -> list[str]:
    """Documents of 60-120 words drawn from a Zipf distribution over a fixed vocabulary."""
    rng = np.random.default_rng(seed)
    vocab = [f"term{i}" for i in range(WORDS)]
    texts = []
    for _ in range(n):
        ids = rng.zipf(1.2, size=int(rng.integers(60, 121))) % WORDS
        texts.append(" ".join(vocab[i] for i in ids))
    return texts


def keyword_benchmark(n: int, queries: int, seed: int) -> None:
    texts = synthetic_texts(n, seed)
    rng = np.random.default_rng(seed + 1)
    query_texts = [
        " ".join(f"term{int(t)}" for t in rng.integers(20, 3000, size=4)) for _ in range(queries)
    ]
    encoder = BM25Encoder(avg_len=90.0)

    started = time.perf_counter()
    tokens = [tokenize(t) for t in texts]  # shared: both sides index the same terms
    tokenize_s = time.perf_counter() - started
    started = time.perf_counter()
    reference = BM25Okapi(tokens, k1=1.2, b=0.75)
    ref_build = time.perf_counter() - started
    ref_ms = []
    for text in query_texts:
        started = time.perf_counter()
        scores = reference.get_scores(tokenize(text))
        np.argpartition(-scores, 10)[:10]
        ref_ms.append((time.perf_counter() - started) * 1000)

    with tempfile.TemporaryDirectory(prefix="citewise-bench-") as tmp:
        store = EdgeStore(Path(tmp), SCHEMA)
        try:
            started = time.perf_counter()
            store.ensure_namespace(TENANT)
            zeros = [0.0] * (SCHEMA.dimensions - 1) + [1.0]
            for start in range(0, n, 2000):
                batch = texts[start : start + 2000]
                chunks = [
                    Chunk(
                        tenant_id=TENANT,
                        doc_id=f"d{start + i}",
                        version=1,
                        chunk_index=0,
                        text=t[:200],
                        acl_groups=["*"],
                    )  # fmt: skip
                    for i, t in enumerate(batch)
                ]
                sparse = [encoder.encode_terms(t) for t in tokens[start : start + 2000]]
                store.upsert(TENANT, chunks, [zeros] * len(batch), sparse)
            store.optimize(TENANT)
            ours_build = time.perf_counter() - started
            ours_ms = []
            for text in query_texts:
                started = time.perf_counter()
                store.sparse_query(
                    TENANT, sparse=encoder.encode_query(text), acl_groups=["*"], limit=10
                )
                ours_ms.append((time.perf_counter() - started) * 1000)
        finally:
            store.close()

    ours, ref = statistics.median(ours_ms), statistics.median(ref_ms)
    print(f"keyword search, {n:,} documents, {queries} queries (top 10); "
          f"tokenizing (shared, not in build times) {tokenize_s:.1f} s:")  # fmt: skip
    print(f"  rank-bm25 BM25Okapi     build {ref_build:6.1f} s  p50 {ref:8.2f} ms  "
          f"p99 {percentile(ref_ms, 99):8.2f} ms")  # fmt: skip
    print(f"  Citewise (Qdrant Edge)  build {ours_build:6.1f} s  p50 {ours:8.2f} ms  "
          f"p99 {percentile(ours_ms, 99):8.2f} ms")  # fmt: skip
    print(f"  speed-up at p50: {ref / ours:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keyword-n", type=int, default=100_000)
    parser.add_argument("--keyword-queries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    configure_logging("WARNING")
    print(f"hardware: {hardware()}")
    for n in args.sizes:
        rate, optimize_s, latencies = run_edge(n, args.queries, args.seed)
        report("Qdrant Edge hybrid, filtered", n, rate, latencies)
        print(f"{'':<34} optimize {optimize_s:.1f} s")
    keyword_benchmark(args.keyword_n, args.keyword_queries, args.seed)


if __name__ == "__main__":
    main()
