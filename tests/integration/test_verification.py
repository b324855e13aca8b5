"""Every served answer is verified: remove, mark and decline policies through the real pipeline.

The generating tier is a real OpenAI-compatible server on loopback whose reply
the test scripts (one grounded sentence from passage 1, plus invented ones).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from citewise.answer.pipeline import DECLINE_MESSAGE, QAPipeline
from citewise.answer.tiers import build_chat_tier
from citewise.answer.verify import UNVERIFIED_MARK
from citewise.core.settings import LLMTier, VerificationSettings
from citewise.core.tenancy import Principal
from tests.broken_llm import BrokenLLM, grounded_sentence, primary

pytestmark = pytest.mark.integration

DEMO = Principal(tenant_id="demo")
QUESTION = "How long must my password be?"
INVENTED = "The CFO resets every password on Fridays at 17:30 [1]."


@pytest.fixture
def server() -> Iterator[BrokenLLM]:
    broken = BrokenLLM("scripted").start()
    yield broken
    broken.stop()


def pipeline(runtime, server: BrokenLLM, **verification: object) -> QAPipeline:  # type: ignore[no-untyped-def]
    tiers = [primary(server), LLMTier(name="extractive", kind="extractive")]
    settings = runtime.settings.answer.model_copy(
        update={"tiers": tiers, "verification": VerificationSettings(**verification)}
    )
    return QAPipeline(
        settings,
        retriever=runtime.retriever,
        embedder=runtime.embedder,
        chat_tiers={"primary": build_chat_tier(tiers[0])},
    )


def test_an_invented_sentence_is_removed_and_reported(demo_runtime, server: BrokenLLM) -> None:
    server.reply = lambda prompt: f"{grounded_sentence(prompt)} [1]. {INVENTED}"
    answer = pipeline(demo_runtime, server).ask(QUESTION, DEMO)
    assert answer.tier == "primary" and not answer.declined
    assert "14" in answer.answer and "CFO" not in answer.answer
    assert [s.supported for s in answer.sentences] == [True]
    report = answer.verification
    assert report is not None and report.verifier == "fast" and report.policy == "remove"
    assert (report.sentences, report.supported, report.removed) == (2, 1, 1)
    assert "verify" in answer.timings_ms


def test_mark_policy_serves_it_marked(demo_runtime, server: BrokenLLM) -> None:
    server.reply = lambda prompt: f"{grounded_sentence(prompt)} [1]. {INVENTED}"
    answer = pipeline(demo_runtime, server, policy="mark").ask(QUESTION, DEMO)
    good, bad = answer.sentences
    assert good.supported and not bad.supported and "cfo" in bad.missing
    assert bad.text.endswith(UNVERIFIED_MARK) and answer.answer.endswith(UNVERIFIED_MARK)
    assert answer.verification is not None and answer.verification.marked == 1


def test_an_unsupported_answer_declines_with_the_closest_passages(
    demo_runtime, server: BrokenLLM
) -> None:
    server.reply = lambda prompt: INVENTED
    answer = pipeline(demo_runtime, server, on_unsupported="decline").ask(QUESTION, DEMO)
    assert answer.declined and answer.decline_reason == "unsupported"
    assert answer.answer == DECLINE_MESSAGE and not answer.citations
    assert answer.passages and "14" in answer.passages[0].passage  # the closest passages
    assert answer.verification is not None and answer.verification.supported == 0


def test_fallback_lets_the_extractive_tier_answer_instead(demo_runtime, server: BrokenLLM) -> None:
    server.reply = lambda prompt: INVENTED
    answer = pipeline(demo_runtime, server).ask(QUESTION, DEMO)  # fallback is the default
    assert answer.tier == "extractive" and answer.degraded and not answer.declined
    assert [(a.tier, a.reason) for a in answer.attempts][0] == ("primary", "unsupported")
    assert answer.verification is not None and answer.verification.supported >= 1


def test_the_model_saying_not_found_is_a_model_decline(demo_runtime, server: BrokenLLM) -> None:
    server.reply = lambda prompt: "NOT_FOUND"
    answer = pipeline(demo_runtime, server).ask(QUESTION, DEMO)
    assert answer.declined and answer.decline_reason == "model" and answer.tier == "primary"
