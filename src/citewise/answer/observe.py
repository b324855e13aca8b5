"""Metrics and trace spans of one answer, recorded once when the answer is complete.

The pipeline times its stages with a `StageTimer`; when an answer is final
(``ask`` returns, or a stream yields its ``final`` event) `record_answer` turns
the timer's laps into stage latency observations and into child spans of an
``answer`` span under the request's span (with the laps' own start and end
times), and counts the answer, its tier's time to first token, tokens and
groundedness. Recording after the fact keeps streamed and non-streamed answers
identical and never holds a span open across a stream's yields. Spans carry
counts, tiers and the tenant, never question or document text.
"""

from __future__ import annotations

import time

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from citewise.core.metrics import (
    ANSWERS,
    GROUNDEDNESS,
    LLM_TOKENS,
    STAGE_LATENCY,
    TIME_TO_FIRST_TOKEN,
)
from citewise.core.schemas import Answer
from citewise.core.timing import StageTimer
from citewise.core.tracing import tracer

STAGES = {
    "rewrite": "rewrite",
    "retrieve": "retrieval",
    "rerank": "rerank",
    "rank": "rank",
    "extractive": "extractive",
    "verify": "verification",
    "cite": "citation",
}
"""Timer lap names -> stage labels; ``generate_<tier>`` laps are stage ``generation``."""
GENERATE = "generate_"


def trace_parent() -> Context:
    """The current trace context (the request's span), to parent an answer's spans on."""
    return otel_context.get_current()


def stage_of(lap: str) -> tuple[str, str | None]:
    """The stage label of a timer lap and, for generation, its tier."""
    if lap.startswith(GENERATE):
        return "generation", lap[len(GENERATE) :]
    return STAGES.get(lap, lap), None


def record_answer(answer: Answer, timer: StageTimer, *, tenant: str, parent: Context) -> None:
    """Observe one complete answer: stage latencies, TTFT, tokens, outcome, groundedness, spans."""
    for lap, start, end in timer.stages:
        STAGE_LATENCY.labels(stage=stage_of(lap)[0]).observe(end - start)
    ttft = answer.timings_ms.get("ttft")
    if ttft is not None:
        TIME_TO_FIRST_TOKEN.labels(tier=answer.tier).observe(ttft / 1000)
    for key, direction in (("prompt_tokens", "prompt"), ("completion_tokens", "completion")):
        if answer.usage.get(key):
            LLM_TOKENS.labels(tier=answer.tier, direction=direction).inc(answer.usage[key])
    ANSWERS.labels(tier=answer.tier, decline_reason=answer.decline_reason or "none").inc()
    if answer.verification is not None:
        GROUNDEDNESS.observe(answer.verification.score)
    _spans(answer, timer, tenant, parent)


def _spans(answer: Answer, timer: StageTimer, tenant: str, parent: Context) -> None:
    """An ``answer`` span with one child per stage, placed at the laps' times."""
    offset = time.time_ns() - time.perf_counter_ns()

    def at(instant: float) -> int:
        return offset + int(instant * 1e9)

    spans = tracer("citewise.answer")
    root = spans.start_span(
        "answer",
        context=parent,
        start_time=at(timer.started),
        attributes={
            "citewise.tenant": tenant,
            "citewise.tier": answer.tier,
            "citewise.declined": answer.declined,
            "citewise.decline_reason": answer.decline_reason or "none",
            "citewise.degraded": answer.degraded,
            "citewise.passages": len(answer.passages),
            "citewise.citations": len(answer.citations),
        },
    )
    inside = trace.set_span_in_context(root, parent)
    for lap, start, end in timer.stages:
        stage, tier = stage_of(lap)
        span = spans.start_span(
            stage, context=inside, start_time=at(start), attributes=_attributes(answer, stage, tier)
        )
        span.end(end_time=at(end))
    root.end(end_time=at(time.perf_counter()))


def _attributes(answer: Answer, stage: str, tier: str | None) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {"citewise.stage": stage}
    if stage in ("retrieval", "rerank"):
        attributes["citewise.passages"] = len(answer.passages)
    elif stage == "generation" and tier is not None:
        attributes["citewise.tier"] = tier
        attempt = next((a for a in answer.attempts if a.tier == tier), None)
        if attempt is not None:
            attributes["citewise.outcome"] = attempt.outcome
            if attempt.reason:
                attributes["citewise.reason"] = attempt.reason
        if tier == answer.tier:
            attributes["gen_ai.usage.input_tokens"] = answer.usage.get("prompt_tokens", 0)
            attributes["gen_ai.usage.output_tokens"] = answer.usage.get("completion_tokens", 0)
    elif stage == "verification" and answer.verification is not None:
        attributes["citewise.sentences"] = answer.verification.sentences
        attributes["citewise.supported"] = answer.verification.supported
    return attributes
