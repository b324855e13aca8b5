"""The tier chain with the real embedded model: broken endpoint -> llama.cpp -> extractive.

One module-scoped llama.cpp server (starting it costs ~20 s); few, short generations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from citewise.answer.pipeline import QAPipeline
from citewise.answer.tiers import build_chat_tier
from citewise.api.app import create_app
from citewise.core.llm_server import LocalLLMServer
from citewise.core.settings import LLMTier
from citewise.core.tenancy import Principal
from tests.auth import user_headers
from tests.broken_llm import BrokenLLM, primary
from tests.conftest import MODELS_DIR
from tests.sse import read_events

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.llm]

DEMO = Principal(tenant_id="demo")
QUESTION = "How long must my password be?"


@pytest.fixture(scope="module")
def local_server(demo_runtime) -> Iterator[LocalLLMServer]:  # type: ignore[no-untyped-def]
    with LocalLLMServer(demo_runtime.settings.llm, MODELS_DIR) as server:
        yield server


@pytest.fixture
def broken() -> Iterator[BrokenLLM]:
    server = BrokenLLM("hang").start()
    yield server
    server.stop()


@pytest.fixture
def chain(demo_runtime, local_server, broken) -> QAPipeline:  # type: ignore[no-untyped-def]
    """Tiers: the broken server, the embedded model, the extractive tier."""
    assert local_server.base_url is not None
    local = LLMTier(
        name="local", kind="local", model=local_server.model_name, max_tokens=60, timeout_s=60
    )
    tiers = [primary(broken), local, LLMTier(name="extractive", kind="extractive")]
    return QAPipeline(
        demo_runtime.settings.answer.model_copy(update={"tiers": tiers}),
        retriever=demo_runtime.retriever,
        embedder=demo_runtime.embedder,
        chat_tiers={
            "primary": build_chat_tier(tiers[0]),
            "local": build_chat_tier(local, local_base_url=local_server.base_url),
        },
    )


def test_a_hanging_endpoint_falls_back_to_the_local_model(chain: QAPipeline) -> None:
    answer = chain.ask(QUESTION, DEMO)
    assert [(a.tier, a.outcome, a.reason) for a in answer.attempts] == [
        ("primary", "failed", "timeout"),
        ("local", "answered", ""),
    ]
    assert answer.attempts[0].ms < 1500
    assert answer.tier == "local" and answer.degraded and "14" in answer.answer
    assert answer.usage["prompt_tokens"] > 100 and 0 < answer.usage["completion_tokens"] <= 60
    timings = answer.timings_ms
    # Time to first token: retrieval, the 1 s timeout, then the local model's prefill.
    assert timings["retrieve"] + 1000 < timings["ttft"] < timings["total"]
    for citation in answer.citations:
        assert citation.passage[citation.start : citation.end] == citation.quote


def test_local_tokens_stream_after_a_mid_stream_failure(
    chain: QAPipeline, demo_runtime, broken: BrokenLLM
) -> None:
    broken.mode = "hang_mid_stream"
    runtime = dataclasses.replace(demo_runtime, pipeline=chain)
    app = create_app(demo_runtime.settings, runtime=runtime)
    with TestClient(app, headers=user_headers(demo_runtime, "demo")) as client:
        events = read_events(client, {"question": QUESTION})
    names = [e[0] for e in events]
    assert names[:3] == ["meta", "token", "fallback"] and names[-1] == "final"
    assert events[2][1]["next"] == "local" and events[2][1]["discard"]
    local_tokens = [e for e in events if e[0] == "token" and e[1]["tier"] == "local"]
    assert local_tokens  # released a verified sentence at a time
    final = events[-1][1]
    assert "".join(e[1]["text"] for e in local_tokens).strip() == final["answer"]
    assert final["tier"] == "local" and final["degraded"] and "14" in final["answer"]
    assert 0 < final["timings_ms"]["ttft"] < final["timings_ms"]["total"]
    offered = {p["number"] for p in events[0][1]["passages"]}
    assert {c["number"] for c in final["citations"]} <= offered
    assert final["usage"]["completion_tokens"] > 0
