"""Cited answers from the embedded LLM tier (Qwen2.5-1.5B on llama.cpp), verified."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from citewise.answer.pipeline import QAPipeline
from citewise.answer.tiers import build_chat_tier
from citewise.core.llm_server import LocalLLMServer
from citewise.core.settings import LLMTier
from citewise.core.tenancy import Principal
from tests.conftest import MODELS_DIR
from tests.netguard import outbound_attempts

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.llm]

DEMO = Principal(tenant_id="demo")


@pytest.fixture(scope="module")
def llm_pipeline(demo_runtime) -> Iterator[QAPipeline]:  # type: ignore[no-untyped-def]
    settings = demo_runtime.settings
    with LocalLLMServer(settings.llm, MODELS_DIR) as server:
        assert server.base_url is not None
        tier = build_chat_tier(
            LLMTier(name="local", kind="local", model=server.model_name, max_tokens=120),
            local_base_url=server.base_url,
        )
        yield QAPipeline(
            settings.answer,
            retriever=demo_runtime.retriever,
            embedder=demo_runtime.embedder,
            chat_tiers={"local": tier},
        )


def test_llm_answer_is_cited_verified_and_offline(llm_pipeline: QAPipeline) -> None:
    with outbound_attempts() as net:
        answer = llm_pipeline.ask("How long must my password be?", DEMO)
    assert net.outbound == []
    assert answer.tier in {"local", "extractive"}
    assert not answer.declined
    assert "14" in answer.answer
    assert answer.citations
    assert any(
        c.source == "information-security-policy.pdf" and c.page == 3 for c in answer.citations
    )
    for sentence in answer.sentences:
        assert sentence.citations and sentence.support > 0
    if answer.tier == "local":
        assert answer.usage["prompt_tokens"] > 0 and answer.usage["completion_tokens"] > 0
        assert "generate_local" in answer.timings_ms


def test_llm_declines_unanswerable_questions(llm_pipeline: QAPipeline) -> None:
    questions = [
        "How many trucks are in Kestrel Harbor's road fleet?",
        "What is the dress code at the Port Alder headquarters?",
        "How many parking spaces are there at the Brackenridge distribution center?",
    ]
    declined = [llm_pipeline.ask(q, DEMO).declined for q in questions]
    assert sum(declined) >= 2, declined


def test_llm_rewrites_a_follow_up_into_a_standalone_query(llm_pipeline: QAPipeline) -> None:
    from citewise.answer.rewrite import QueryRewriter, Turn

    rewriter = QueryRewriter(llm_pipeline.chat_tiers["local"])
    history = [
        Turn(role="user", content="What is the name of the new VPN client?"),
        Turn(role="assistant", content="The new client is Kestrel SecureLink [1]."),
    ]
    query, method = rewriter.rewrite("When do we have to switch to it?", history)
    assert method in {"llm", "rule"}
    assert "vpn" in query.lower() or "securelink" in query.lower()
