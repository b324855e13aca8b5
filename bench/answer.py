"""Answer latency per tier: time to first token (TTFT) and total, p50/p95, on the sample set.

Not a test. Prints the hardware, then for each tier and mode:
- ``extractive ask``: the extractive tier alone (``use_llm=False``);
- ``local ask``: tiers [local, extractive] through ``QAPipeline.ask`` (TTFT from the
  LLM's first streamed token, reported in ``timings_ms["ttft"]``);
- ``local stream``: the same through ``QAPipeline.stream``, TTFT measured by the
  consumer when the first ``token`` event arrives (streams release text a
  verified sentence at a time, so this is the first verified sentence).
Both TTFT and total count from the question's arrival (rewrite, retrieval and
ranking included); ``pre-gen`` is that part alone. The local rows include the
questions whose LLM answer verification declined (``declined:unsupported`` in
the per-question lines). Each LLM mode gets a fresh llama.cpp server, so no
mode profits from the other's prompt cache.

Usage: .venv/bin/python bench/answer.py [--limit 5] [--max-tokens 120] [--no-llm]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_store import hardware, percentile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "kestrel"
MODELS_DIR = ROOT / "data" / "models"  # where the tests keep the assembled GGUF


def pick(questions: list[dict[str, object]], limit: int) -> list[str]:
    """`limit` answerable questions spread over the set (every k-th)."""
    answerable = [str(q["question"]) for q in questions if q.get("answerable", True)]
    step = max(1, len(answerable) // max(1, limit))
    return answerable[::step][:limit]


def pregen_ms(timings: dict[str, float]) -> float:
    """Milliseconds before generation: rewrite, retrieval (and rerank), sentence ranking."""
    return sum(timings.get(k, 0.0) for k in ("rewrite", "retrieve", "rerank", "rank"))


def row(label: str, ttft: list[float], total: list[float], pregen: list[float], note: str) -> str:
    def p(values: list[float], pct: float) -> str:
        if not values:
            return "-"
        return f"{statistics.median(values) if pct == 50 else percentile(values, pct):8.0f}"

    return (
        f"{label:<18} {len(total):>3}  {p(pregen, 50)} {p(ttft, 50)} {p(ttft, 95)} "
        f"{p(total, 50)} {p(total, 95)}   {note}"
    )


@dataclass
class Result:
    """One question's figures (ms)."""

    tier: str
    ttft: float | None
    total: float
    pregen: float
    tokens: int
    failures: str = ""

    def __str__(self) -> str:
        ttft = f"{self.ttft:8.0f}" if self.ttft is not None else "       -"
        line = f"{self.tier:<10} ttft {ttft} total {self.total:8.0f} tokens {self.tokens:>4}"
        return f"{line} {self.failures:<18}"


def failures(answer: Any) -> str:
    """Why earlier tiers did not answer (``local:timeout``), and why it declined, if it did."""
    reasons = [f"{a.tier}:{a.reason}" for a in answer.attempts if a.reason]
    if answer.declined:
        reasons.append(f"declined:{answer.decline_reason}")
    return " ".join(reasons)


def measure_ask(pipeline: Any, question: str, principal: Any) -> Result:
    """``QAPipeline.ask``: TTFT as the pipeline reports it (the LLM's first streamed token)."""
    answer = pipeline.ask(question, principal)
    result = Result(
        tier=answer.tier,
        ttft=answer.timings_ms.get("ttft"),  # none for a decline
        total=answer.timings_ms["total"],
        pregen=pregen_ms(answer.timings_ms),
        tokens=answer.usage.get("completion_tokens", 0),
        failures=failures(answer),
    )
    print(f"  ask    {result}  {question[:50]}", flush=True)
    return result


def measure_stream(pipeline: Any, question: str, principal: Any) -> Result:
    """``QAPipeline.stream``: TTFT when the consumer receives the first ``token`` event."""
    from citewise.answer.stream import FinalEvent, TokenEvent

    started = time.perf_counter()
    first: float | None = None
    for event in pipeline.stream(question, principal):
        if isinstance(event, TokenEvent) and first is None:
            first = (time.perf_counter() - started) * 1000
        if isinstance(event, FinalEvent):
            answer = event.answer
    result = Result(
        tier=answer.tier,
        ttft=first,
        total=(time.perf_counter() - started) * 1000,
        pregen=pregen_ms(answer.timings_ms),
        tokens=answer.usage.get("completion_tokens", 0),
        failures=failures(answer),
    )
    print(f"  stream {result}  {question[:50]}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=5, help="questions (default 5)")
    parser.add_argument("--max-tokens", type=int, default=120, help="LLM answer limit")
    parser.add_argument("--no-llm", action="store_true", help="extractive tier only")
    args = parser.parse_args()

    from citewise.answer.pipeline import QAPipeline
    from citewise.answer.tiers import build_chat_tier
    from citewise.core.llm_server import LocalLLMServer
    from citewise.core.logging import configure_logging
    from citewise.core.settings import LLMTier, load_settings
    from citewise.core.tenancy import Principal
    from citewise.ingest.pipeline import doc_id_for
    from citewise.runtime import Runtime

    configure_logging("ERROR")
    print(f"hardware: {hardware()}")
    all_questions = json.loads((ROOT / "samples" / "questions.json").read_text())
    questions = pick(all_questions, args.limit)
    principal = Principal(tenant_id="bench")
    header = (
        f"{'tier / mode':<18} {'n':>3}  {'pre-gen':>8} {'ttft p50':>8} {'ttft p95':>8} "
        f"{'tot p50':>8} {'tot p95':>8}   (ms; p95 is nearest-rank)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp))
        runtime = Runtime.open(settings, start_llm=False)
        runtime.warm_up()
        for path in sorted(SAMPLES.iterdir()):
            runtime.ingestor.ingest_file(path, tenant_id="bench", doc_id=doc_id_for(path, SAMPLES))
        runtime.store.optimize("bench")
        runtime.pipeline.ask(questions[0], principal, use_llm=False)  # warm caches
        print(f"questions: {len(questions)} of {len(all_questions)} in samples/questions.json")
        print(header, flush=True)

        ttft, total, pregen = [], [], []
        for question in questions:
            answer = runtime.pipeline.ask(question, principal, use_llm=False)
            ttft.append(answer.timings_ms.get("ttft", answer.timings_ms["total"]))
            total.append(answer.timings_ms["total"])
            pregen.append(pregen_ms(answer.timings_ms))
        print(row("extractive ask", ttft, total, pregen, ""))

        if not args.no_llm:
            for mode in ("ask", "stream"):
                # A fresh server per mode: llama.cpp's prompt cache would make the second
                # pass over the same prompts skip their prefill.
                with LocalLLMServer(settings.llm, MODELS_DIR) as server:
                    assert server.base_url is not None
                    local = LLMTier(
                        name="local",
                        kind="local",
                        model=server.model_name,
                        max_tokens=args.max_tokens,
                    )
                    tiers = [local, LLMTier(name="extractive", kind="extractive")]
                    chat = build_chat_tier(local, local_base_url=server.base_url)
                    pipeline = QAPipeline(
                        settings.answer.model_copy(update={"tiers": tiers}),
                        retriever=runtime.retriever,
                        embedder=runtime.embedder,
                        chat_tiers={"local": chat},
                    )
                    if mode == "ask":
                        print(
                            f"local model: {server.model_name} (llama.cpp, "
                            f"{settings.llm.threads} threads), max_tokens {args.max_tokens}"
                        )
                    chat.generate([("user", "Say OK.")])  # weights into the page cache
                    measure = measure_ask if mode == "ask" else measure_stream
                    results = [measure(pipeline, q, principal) for q in questions]
                ttft = [r.ttft for r in results if r.ttft is not None]
                answered = sum(r.tier == "local" and "declined" not in r.failures for r in results)
                note = (
                    f"answered by local {answered}/{len(results)} (the rest declined), "
                    f"ttft of {len(ttft)}, {sum(r.tokens for r in results)} tokens generated"
                )
                totals = [r.total for r in results]
                print(row(f"local {mode}", ttft, totals, [r.pregen for r in results], note))
        runtime.close()


if __name__ == "__main__":
    main()
