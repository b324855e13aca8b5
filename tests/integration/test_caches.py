"""Answer caches over the real runtime: hits, scoping by tenant/groups/corpus, invalidation.

The pipelines here share the session runtime's index, embedder and database;
the documents they add live in tenants of their own (``cache-*``).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from citewise.answer.cache import AnswerCache, CorpusVersions, cacheable
from citewise.answer.pipeline import QAPipeline
from citewise.answer.rewrite import Turn
from citewise.answer.stream import FinalEvent
from citewise.core.metrics import CACHE_LOOKUPS
from citewise.core.settings import CacheSettings, LLMTier
from citewise.core.tenancy import EVERYONE, Principal
from tests.broken_llm import BrokenLLM, primary

pytestmark = pytest.mark.integration

PASSWORD = "How long must my password be?"
SALARY = "What is the CEO's annual salary?"
DEMO = Principal(tenant_id="demo", user_id="alice")

POLICIES = {
    "hr": "Relocation policy. Employees who relocate for the company receive a relocation "
    "allowance of 4,200 euros, paid with the first salary after the move.",
    "finance": "Relocation budget. The finance department books every relocation allowance "
    "against cost center 7710 and reimburses receipts within 14 days.",
}
QUESTION = "How much is the relocation allowance?"


def _lookups(cache: str, result: str) -> float:
    return CACHE_LOOKUPS.labels(cache=cache, result=result)._value.get()  # type: ignore[no-any-return]


def _pipeline(runtime, settings: CacheSettings | None = None, tiers=None) -> QAPipeline:  # type: ignore[no-untyped-def]
    answer_settings = runtime.settings.answer
    chat_tiers = {}
    if tiers is not None:
        from citewise.answer.tiers import build_chat_tier

        answer_settings = answer_settings.model_copy(update={"tiers": tiers})
        chat_tiers = {t.name: build_chat_tier(t) for t in tiers if t.kind == "openai"}
    runtime.embedder.cache_queries(1024)
    return QAPipeline(
        answer_settings,
        retriever=runtime.retriever,
        embedder=runtime.embedder,
        chat_tiers=chat_tiers,
        cache=AnswerCache(
            settings or CacheSettings(),
            embedder=runtime.embedder,
            versions=CorpusVersions(runtime.db),
        ),
    )


@pytest.fixture
def pipeline(demo_runtime) -> QAPipeline:  # type: ignore[no-untyped-def]
    return _pipeline(demo_runtime)


@pytest.fixture
def tenants(demo_runtime, tmp_path: Path) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Two fresh tenants, each with an hr-only and a finance-only relocation document."""
    names = (f"cache-a-{uuid.uuid4().hex[:6]}", f"cache-b-{uuid.uuid4().hex[:6]}")
    for tenant in names:
        for group, text in POLICIES.items():
            path = tmp_path / tenant / f"{group}-relocation.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# {group.upper()} relocation\n\n{text} Valid at ({tenant}).\n")
            outcome = demo_runtime.ingestor.ingest_file(
                path, tenant_id=tenant, doc_id=f"{group}-relocation", acl_groups=[group]
            )
            assert outcome.status == "indexed", outcome
    yield names


def test_the_same_question_is_an_exact_hit_marked_and_without_usage(pipeline: QAPipeline) -> None:
    hits = _lookups("answer_exact", "hit")
    first = pipeline.ask(PASSWORD, DEMO, use_llm=False)
    assert first.cached is None and not first.declined
    again = pipeline.ask("  how LONG must my   password be?", DEMO, use_llm=False)
    assert again.cached == "exact"
    assert again.question == "how LONG must my password be?"
    assert again.answer == first.answer and again.citations == first.citations
    assert again.usage == {} and set(again.timings_ms) == {"cache", "total"}
    assert _lookups("answer_exact", "hit") == hits + 1
    # Another user with the same tenant and groups shares the answer; use_llm is part of the key.
    assert pipeline.ask(PASSWORD, DEMO.model_copy(update={"user_id": "bob"}), use_llm=False).cached
    assert pipeline.ask(PASSWORD, DEMO, use_llm=True).cached is None


def test_a_similar_question_is_a_semantic_hit_and_a_different_one_is_not(demo_runtime) -> None:  # type: ignore[no-untyped-def]
    settings = CacheSettings(semantic=True, semantic_threshold=0.95)
    pipeline = _pipeline(demo_runtime, settings)
    similar = "How long does my password have to be?"
    different = "How long are backups of production systems kept?"
    embed = demo_runtime.embedder.embed_query
    assert float(np.dot(embed(PASSWORD), embed(similar))) >= settings.semantic_threshold
    assert float(np.dot(embed(PASSWORD), embed(different))) < settings.semantic_threshold
    first = pipeline.ask(PASSWORD, DEMO, use_llm=False)
    hit = pipeline.ask(similar, DEMO, use_llm=False)
    assert hit.cached == "semantic" and hit.cached_question == PASSWORD
    assert hit.question == similar and hit.answer == first.answer
    assert pipeline.ask(different, DEMO, use_llm=False).cached is None
    # With conversation history only the exact cache applies (and the history is in its key).
    history = [Turn(role="user", content="Tell me about passwords.")]
    assert pipeline.ask(similar, DEMO, history=history, use_llm=False).cached is None
    assert pipeline.ask(similar, DEMO, history=history, use_llm=False).cached == "exact"
    other = [Turn(role="user", content="Tell me about laptops.")]
    assert pipeline.ask(similar, DEMO, history=other, use_llm=False).cached is None


def test_no_answer_is_ever_served_across_tenants_or_acl_groups(
    demo_runtime,  # type: ignore[no-untyped-def]
    tenants: tuple[str, str],
) -> None:
    """Every principal (2 tenants x 4 group sets), in every order, gets only what it may read."""
    # A permissive semantic cache, so that near questions of other principals are candidates.
    pipeline = _pipeline(demo_runtime, CacheSettings(semantic=True, semantic_threshold=0.8))
    group_sets = [
        frozenset(),
        frozenset({"hr"}),
        frozenset({"finance"}),
        frozenset({"hr", "finance"}),
    ]
    principals = [
        Principal(tenant_id=tenant, user_id="u", groups=groups)
        for tenant, groups in itertools.product(tenants, group_sets)
    ]
    questions = [QUESTION, "what is the relocation allowance?", "How much relocation allowance?"]
    served: dict[tuple[str, frozenset[str]], set[str]] = {}
    for _round in range(2):
        for principal in principals:
            for question in questions:
                answer = pipeline.ask(question, principal, use_llm=False)
                visible = set(principal.groups) | {EVERYONE}
                for passage in answer.passages + answer.citations:
                    group = passage.doc_id.split("-")[0]
                    assert group in visible, (principal, question, answer.cached)
                    assert f"({principal.tenant_id})" in passage.passage, (principal, answer.cached)
                served.setdefault((principal.tenant_id, principal.groups), set()).add(answer.answer)
    # The hr and finance answers differ, so a leak would have shown; and caching did happen.
    assert served[(tenants[0], frozenset({"hr"}))] != served[(tenants[0], frozenset({"finance"}))]
    assert pipeline.ask(QUESTION, principals[1], use_llm=False).cached == "exact"


def test_any_document_change_invalidates_the_tenants_answers(
    demo_runtime,  # type: ignore[no-untyped-def]
    tenants: tuple[str, str],
    tmp_path: Path,
) -> None:
    pipeline = _pipeline(demo_runtime)
    tenant, other = tenants
    hr = Principal(tenant_id=tenant, user_id="u", groups=frozenset({"hr"}))
    hr_other = Principal(tenant_id=other, user_id="u", groups=frozenset({"hr"}))
    versions = CorpusVersions(demo_runtime.db)

    def fresh_then_cached(principal: Principal) -> str:
        first = pipeline.ask(QUESTION, principal, use_llm=False)
        assert first.cached is None
        assert pipeline.ask(QUESTION, principal, use_llm=False).cached == "exact"
        return first.answer

    assert "4,200" in fresh_then_cached(hr)
    pipeline.ask(QUESTION, hr_other, use_llm=False)
    # A new version of a document (changed content).
    version = versions.version(tenant)
    path = tmp_path / "hr-relocation-v2.md"
    path.write_text(
        f"# HR relocation\n\n{POLICIES['hr'].replace('4,200', '5,300')} Valid at ({tenant}).\n"
    )
    outcome = demo_runtime.ingestor.ingest_file(
        path, tenant_id=tenant, doc_id="hr-relocation", acl_groups=["hr"]
    )
    assert outcome.status == "indexed" and versions.version(tenant) != version
    assert "5,300" in fresh_then_cached(hr)
    # The other tenant's answers are untouched.
    assert pipeline.ask(QUESTION, hr_other, use_llm=False).cached == "exact"
    # A new document.
    extra = tmp_path / "faq.md"
    extra.write_text(f"# FAQ ({tenant})\n\nThe canteen opens at 11:30 every working day.\n")
    demo_runtime.ingestor.ingest_file(extra, tenant_id=tenant, doc_id="faq")
    fresh_then_cached(hr)
    # A re-ingestion of the same content as a new version (force).
    demo_runtime.ingestor.ingest_file(
        path, tenant_id=tenant, doc_id="hr-relocation", acl_groups=["hr"], force=True
    )
    fresh_then_cached(hr)
    # A delete.
    admin = Principal(tenant_id=tenant, user_id="admin", role="admin")
    demo_runtime.service.delete_document(admin, "hr-relocation")
    after = pipeline.ask(QUESTION, hr, use_llm=False)
    assert after.cached is None and "5,300" not in after.answer
    # An unchanged upload changes nothing, so the answer stays cached.
    demo_runtime.ingestor.ingest_file(extra, tenant_id=tenant, doc_id="faq")
    assert pipeline.ask(QUESTION, hr, use_llm=False).cached == "exact"


def test_genuine_declines_are_cached_but_failures_never(demo_runtime) -> None:  # type: ignore[no-untyped-def]
    pipeline = _pipeline(demo_runtime)
    declined = pipeline.ask(SALARY, DEMO, use_llm=False)
    assert declined.declined and declined.decline_reason == "gate"
    assert pipeline.ask(SALARY, DEMO, use_llm=False).cached == "exact"

    server = BrokenLLM("down")  # nothing listens: every call fails to connect
    try:
        extractive = LLMTier(name="extractive", kind="extractive")
        # The LLM tier fails and the extractive tier answers: degraded, never cached.
        fallback = _pipeline(demo_runtime, tiers=[primary(server), extractive])
        degraded = fallback.ask(PASSWORD, DEMO)
        assert degraded.degraded and not cacheable(degraded)
        assert fallback.ask(PASSWORD, DEMO).cached is None
        # No tier answers at all: a decline caused by a failure, never cached.
        only_llm = _pipeline(demo_runtime, tiers=[primary(server)])
        failed = only_llm.ask(PASSWORD, DEMO)
        assert failed.declined and failed.decline_reason == "none"
        assert only_llm.ask(PASSWORD, DEMO).cached is None
    finally:
        server.stop()


def test_a_hit_is_served_as_a_stream_of_the_cached_answer(pipeline: QAPipeline) -> None:
    question = "How soon must a suspected security incident be reported?"
    events = list(pipeline.stream(question, DEMO, use_llm=False))
    final = events[-1]
    assert isinstance(final, FinalEvent) and final.answer.cached is None
    replay = list(pipeline.stream(question, DEMO, use_llm=False))
    assert [e.event for e in replay] == ["meta", "token", "final"]
    meta, token, last = replay
    assert isinstance(last, FinalEvent) and last.answer.cached == "exact"
    assert token.text == last.answer.answer == final.answer.answer  # type: ignore[union-attr]
    assert meta.passages == final.answer.passages  # type: ignore[union-attr]
    assert pipeline.ask(question, DEMO, use_llm=False).cached == "exact"


def test_the_query_embedding_cache_returns_the_same_vector(demo_runtime) -> None:  # type: ignore[no-untyped-def]
    embedder = demo_runtime.embedder
    embedder.cache_queries(16)
    hits = _lookups("embedding", "hit")
    vector = embedder.embed_query("Where is the   Saltmere office?")
    again = embedder.embed_query("Where is the Saltmere office?")
    assert again is vector and not again.flags.writeable
    assert _lookups("embedding", "hit") == hits + 1
    assert np.allclose(embedder.embed(["Where is the Saltmere office?"])[0], vector, atol=1e-6)


def test_a_similar_question_with_another_number_or_name_is_not_a_semantic_hit(demo_runtime) -> None:  # type: ignore[no-untyped-def]
    pipeline = _pipeline(demo_runtime, CacheSettings(semantic=True, semantic_threshold=0.8))
    six = "How many vacation days do I get once I have been with the company for six years?"
    two = "How many vacation days do I get once I have been with the company for two years?"
    embed = demo_runtime.embedder.embed_query
    assert float(np.dot(embed(six), embed(two))) >= 0.8
    pipeline.ask(six, DEMO, use_llm=False)
    assert pipeline.ask(two, DEMO, use_llm=False).cached is None
    reworded = "How many vacation days do I get when I have been at the company for 6 years?"
    assert pipeline.ask(reworded, DEMO, use_llm=False).cached == "semantic"


def test_key_terms_are_numbers_negations_directions_and_names() -> None:
    from citewise.answer.cache import key_terms

    assert key_terms("Can I fly premium economy on a seven-hour flight?") == {"7"}
    assert key_terms("Am I allowed premium economy for a 7 hour flight?") == {"7"}
    assert key_terms("Vitamin D doesn't increase IL-6 levels") == {"d", "not", "increas", "il", "6"}
    assert key_terms("Which office is closed on 11 November 2026?") == key_terms(
        "What office will be closed on November 11, 2026?"
    )
