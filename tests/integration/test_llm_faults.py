"""Tier faults against a real, deliberately broken OpenAI-compatible server on loopback.

The broken server is tier 1 and the extractive tier the fallback: every fault
falls back within the tier's time budget, marks the answer degraded, opens the
tier's breaker after `breaker_failures` failures (then the tier is skipped
without a request) and closes it again through a half-open probe once the
endpoint heals.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from citewise.answer.pipeline import QAPipeline
from citewise.answer.tiers import TierFailedError, build_chat_tier
from citewise.core.schemas import Answer
from citewise.core.settings import LLMTier
from citewise.core.tenancy import Principal
from tests.broken_llm import FAILURES, RESET_S, TIMEOUT_S, BrokenLLM, make_pipeline, primary

pytestmark = pytest.mark.integration

DEMO = Principal(tenant_id="demo")
QUESTION = "How long must my password be?"


@pytest.fixture
def broken() -> Iterator[BrokenLLM]:
    server = BrokenLLM().start()
    yield server
    server.stop()


def with_fallback(runtime, server: BrokenLLM) -> QAPipeline:  # type: ignore[no-untyped-def]
    return make_pipeline(runtime, [primary(server), LLMTier(name="extractive", kind="extractive")])


def breaker_state(pipeline: QAPipeline) -> str:
    status = pipeline.tier_status()[0]
    assert status.breaker is not None
    return status.breaker.state


def wait_for_probe(pipeline: QAPipeline) -> None:
    breaker = pipeline.tier_status()[0].breaker
    assert breaker is not None and breaker.retry_in_s is not None
    time.sleep(breaker.retry_in_s + 0.01)


def assert_extractive_fallback(answer: Answer, reason: str) -> None:
    assert answer.tier == "extractive" and answer.degraded and not answer.declined
    assert "14" in answer.answer and answer.citations
    first, last = answer.attempts
    assert (first.tier, first.reason) == ("primary", reason), answer.attempts
    assert (last.tier, last.outcome) == ("extractive", "answered")
    assert "generate_primary" in answer.timings_ms and "ttft" in answer.timings_ms


def test_a_healthy_endpoint_answers_first_with_ttft_and_usage(demo_runtime, broken) -> None:
    pipeline = with_fallback(demo_runtime, broken)
    answer = pipeline.ask(QUESTION, DEMO)
    assert answer.tier == "primary" and not answer.degraded and not answer.declined
    assert [a.outcome for a in answer.attempts] == ["answered"]
    assert answer.citations and answer.citations[0].number == 1
    assert answer.usage == {"prompt_tokens": 50, "completion_tokens": 9}
    timings = answer.timings_ms
    assert timings["retrieve"] < timings["ttft"] < timings["total"]
    request = broken.requests[-1]  # what the tier sends
    assert request["stream"] is True and request["max_completion_tokens"] == 40
    assert breaker_state(pipeline) == "closed"


FAULTS = [
    # mode, reason, requests per ask (transient errors are retried: attempts=2)
    ("down", "connection", 0),
    ("hang", "timeout", 1),
    ("malformed", "malformed", 1),
    ("empty", "empty", 1),
    ("invented", "invalid_citations", 1),
    ("http_503", "http_503", 2),
]


@pytest.mark.parametrize(("mode", "reason", "per_ask"), FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_falls_back_opens_the_breaker_and_recovers(
    demo_runtime, broken: BrokenLLM, mode: str, reason: str, per_ask: int
) -> None:
    pipeline = with_fallback(demo_runtime, broken)
    if mode == "down":
        broken.go_down()
    else:
        broken.mode = mode
    # Budget of one tier: its timeout (not retried) or fast retries with <= 0.4 s backoff.
    budget_ms = TIMEOUT_S * 1000 + 400
    for _ in range(FAILURES):
        answer = pipeline.ask(QUESTION, DEMO)
        assert_extractive_fallback(answer, reason)
        assert answer.attempts[0].outcome == "failed"
        assert answer.attempts[0].ms < budget_ms, answer.attempts
    assert len(broken.requests) == FAILURES * per_ask
    assert breaker_state(pipeline) == "open"

    # Open: the tier is skipped at once, without a request.
    answer = pipeline.ask(QUESTION, DEMO)
    assert_extractive_fallback(answer, "breaker_open")
    assert answer.attempts[0].outcome == "skipped" and answer.attempts[0].ms < 20
    assert len(broken.requests) == FAILURES * per_ask

    # The endpoint heals; after the reset period one probe closes the breaker.
    if mode == "down":
        broken.come_up("echo")
    else:
        broken.mode = "echo"
    wait_for_probe(pipeline)
    assert breaker_state(pipeline) == "half_open"
    answer = pipeline.ask(QUESTION, DEMO)
    assert answer.tier == "primary" and not answer.degraded
    assert breaker_state(pipeline) == "closed"
    assert len(broken.requests) == FAILURES * per_ask + 1


def test_a_failed_probe_reopens_and_concurrent_askers_do_not_wait_for_it(
    demo_runtime, broken: BrokenLLM
) -> None:
    pipeline = with_fallback(demo_runtime, broken)
    broken.mode = "hang"
    for _ in range(FAILURES):
        pipeline.ask(QUESTION, DEMO)
    wait_for_probe(pipeline)
    answers: dict[str, Answer] = {}
    probe = threading.Thread(target=lambda: answers.update(probe=pipeline.ask(QUESTION, DEMO)))
    probe.start()
    deadline = time.monotonic() + 5
    while len(broken.requests) < FAILURES + 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # the probe is now waiting on the hanging endpoint
    started = time.perf_counter()
    answers["other"] = pipeline.ask(QUESTION, DEMO)
    other_s = time.perf_counter() - started
    probe.join()
    assert_extractive_fallback(answers["other"], "breaker_open")
    assert other_s < TIMEOUT_S  # it did not queue behind the probe
    assert_extractive_fallback(answers["probe"], "timeout")
    assert len(broken.requests) == FAILURES + 1  # exactly one probe
    status = pipeline.tier_status()[0].breaker
    assert status is not None and status.state == "open" and status.opened_total == 2


def test_without_a_fallback_tier_every_failure_is_a_decline(demo_runtime, broken) -> None:
    broken.mode = "malformed"
    pipeline = make_pipeline(demo_runtime, [primary(broken)])
    answer = pipeline.ask(QUESTION, DEMO)
    assert answer.declined and answer.tier == "none" and answer.degraded
    assert [(a.tier, a.reason) for a in answer.attempts] == [("primary", "malformed")]


def test_an_abandoned_stream_is_no_verdict_on_the_endpoint(broken: BrokenLLM) -> None:
    tier = build_chat_tier(primary(broken))
    messages = [("user", '<passage id="1" source="x">\nThe old VPN stops on Monday.\n</passage>')]
    broken.mode = "malformed"
    for _ in range(FAILURES):
        with pytest.raises(TierFailedError, match="malformed"):
            list(tier.stream(messages, passage_numbers={1}))
    assert tier.breaker.snapshot().state == "open"
    broken.mode = "hang_mid_stream"
    time.sleep(RESET_S)
    probe = tier.stream(messages, passage_numbers={1})
    assert [next(probe), next(probe)] == ["The ", "old "]  # the probe is streaming
    assert tier.breaker.snapshot().state == "half_open"
    with pytest.raises(TierFailedError, match="breaker_open"):  # one probe at a time
        tier.generate(messages)
    probe.close()  # the client went away
    state = tier.breaker.snapshot()
    assert state.state == "half_open" and state.consecutive_failures == FAILURES
    broken.mode = "echo"
    assert tier.generate(messages, passage_numbers={1}).text == "The old VPN stops on Monday [1]."
    assert tier.breaker.snapshot().state == "closed"
