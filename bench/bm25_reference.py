"""BM25 in Qdrant sparse vectors against the reference implementation (rank-bm25).

Scores a BEIR split with rank-bm25's BM25Okapi over Citewise's own tokenizer
(Snowball stemming, English stopwords; one document = title + text), in the
same run as the served BM25 (Qdrant IDF-modified sparse vectors over chunks,
documents ranked by their best chunk) read from an evaluation JSON written by
`citewise eval retrieval --json`. Prints nDCG@10 of both and their query times.

Usage: .venv/bin/python bench/bm25_reference.py --beir ../shared/data/scifact --split dev \
           [--citewise-json results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rank_bm25 import BM25Okapi

from citewise.eval.beir import load_beir
from citewise.eval.metrics import evaluate
from citewise.retrieval.sparse import tokenize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--citewise-json", type=Path, help="output of citewise eval retrieval")
    args = parser.parse_args()

    dataset = load_beir(args.beir, args.split)
    ids = [d.doc_id for d in dataset.corpus]
    start = time.perf_counter()
    index = BM25Okapi([tokenize(f"{d.title} {d.text}") for d in dataset.corpus], k1=1.2, b=0.75)
    build_s = time.perf_counter() - start
    run: dict[str, list[str]] = {}
    latencies = []
    for query_id, text in dataset.queries.items():
        start = time.perf_counter()
        scores = index.get_scores(tokenize(text))
        top = sorted(range(len(ids)), key=lambda i: -scores[i])[:100]
        latencies.append((time.perf_counter() - start) * 1000)
        run[query_id] = [ids[i] for i in top]
    metrics = evaluate(run, dataset.qrels)
    print(f"rank-bm25 (reference): nDCG@10 {metrics['ndcg@10']:.4f}, "
          f"recall@100 {metrics['recall@100']:.4f}, index {build_s:.1f} s, "
          f"query p50 {statistics.median(latencies):.1f} ms")  # fmt: skip
    if args.citewise_json:
        report = json.loads(args.citewise_json.read_text())
        for result in report["results"]:
            if result["mode"] == "bm25":
                m = result["metrics"]
                print(f"Citewise BM25 (Qdrant sparse, chunks): nDCG@10 {m['ndcg@10']:.4f}, "
                      f"recall@100 {m['recall@100']:.4f}, "
                      f"query p50 {result['latency_ms_p50']:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
