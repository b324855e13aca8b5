"""End-to-end figures on the sample set: ingestion vs raw embedding, query latencies.

Not a test. Prints the hardware, then:
- ingestion chunks/s end to end (parse, chunk, embed, index) against the raw
  embedding throughput of the same chunk texts in the same run (the ratio is
  the figure to watch: the embedder should be the limit);
- hybrid retrieval and full extractive-answer latency (p50/p99) over the
  sample questions.

Usage: .venv/bin/python bench/bench_pipeline.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench_store import hardware, percentile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "kestrel"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="passes over the questions")
    args = parser.parse_args()

    from citewise.core.logging import configure_logging
    from citewise.core.settings import load_settings
    from citewise.core.tenancy import Principal
    from citewise.ingest.pipeline import doc_id_for, index_text
    from citewise.runtime import Runtime

    configure_logging("WARNING")
    print(f"hardware: {hardware()}")
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime.open(load_settings(data_dir=Path(tmp)), start_llm=False)
        runtime.embedder.warm_up()
        runtime.embedder.embed(["warm up"])
        files = sorted(SAMPLES.iterdir())
        for path in files:  # warm the parsers' one-time imports outside the timing
            from citewise.ingest.parse import parse_file

            parse_file(path, max_bytes=50 << 20)

        start = time.perf_counter()
        chunks = 0
        for path in files:
            outcome = runtime.ingestor.ingest_file(
                path, tenant_id="bench", doc_id=doc_id_for(path, SAMPLES)
            )
            chunks += outcome.chunks
        ingest_s = time.perf_counter() - start
        runtime.store.optimize("bench")

        # Every indexed chunk: a dense query with a limit above the chunk count.
        hits = runtime.store.dense_query(
            "bench", dense=[1.0] + [0.0] * 383, acl_groups=["*"], limit=chunks + 10
        )
        all_texts = [index_text(hit.chunk) for hit in hits]
        start = time.perf_counter()
        runtime.embedder.embed(all_texts)
        embed_s = time.perf_counter() - start

        print(
            f"ingest: {len(files)} files, {chunks} chunks in {ingest_s:.2f} s "
            f"= {chunks / ingest_s:.1f} chunks/s end to end"
        )
        print(
            f"raw embedding of the same {len(all_texts)} texts: {embed_s:.2f} s "
            f"= {len(all_texts) / embed_s:.1f} chunks/s"
        )
        print(f"ratio end-to-end / raw embedding: {embed_s / ingest_s:.2f}")

        questions = json.loads((ROOT / "samples" / "questions.json").read_text())
        principal = Principal(tenant_id="bench")
        retrieve_ms: list[float] = []
        answer_ms: list[float] = []
        for _ in range(args.repeat):
            for q in questions:
                t0 = time.perf_counter()
                runtime.retriever.search(q["question"], principal)
                retrieve_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                runtime.pipeline.ask(q["question"], principal, use_llm=False)
                answer_ms.append((time.perf_counter() - t0) * 1000)
        n = len(retrieve_ms)
        print(
            f"hybrid retrieval (embed query + Qdrant Edge), {n} queries over {chunks} chunks: "
            f"p50 {statistics.median(retrieve_ms):.1f} ms, "
            f"p99 {percentile(retrieve_ms, 99):.1f} ms"
        )
        print(
            f"full answer, extractive tier, {n} questions: "
            f"p50 {statistics.median(answer_ms):.1f} ms, p99 {percentile(answer_ms, 99):.1f} ms"
        )
        runtime.close()


if __name__ == "__main__":
    main()
