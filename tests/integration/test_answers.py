"""End to end on the sample set: real parser, embedder, Qdrant Edge, extractive tier."""

from __future__ import annotations

import pytest

from citewise.core.tenancy import Principal

pytestmark = pytest.mark.integration

DEMO = Principal(tenant_id="demo")


def _answerable(questions: list[dict[str, object]]) -> list[dict[str, object]]:
    return [q for q in questions if q.get("answerable", True)]


def test_known_answers_cite_the_right_document_and_page(demo_runtime, sample_questions) -> None:
    questions = _answerable(sample_questions)
    correct = 0
    for q in questions:
        answer = demo_runtime.pipeline.ask(str(q["question"]), DEMO, use_llm=False)
        sources = {(c.source, c.page) for c in answer.citations}
        expected_page = q.get("page")
        right_doc = any(
            s == q["source"] and (expected_page is None or p == expected_page) for s, p in sources
        )
        cited_text = " ".join(c.passage for c in answer.citations).lower()
        facts = all(str(f).lower() in cited_text for f in q["answer_contains"])
        correct += (not answer.declined) and right_doc and facts
    # The extractive tier on MiniLM retrieval: most questions must be fully right.
    assert correct / len(questions) >= 0.75, f"{correct}/{len(questions)} answered correctly"


def test_every_citation_resolves_to_a_passage(demo_runtime, sample_questions) -> None:
    for q in _answerable(sample_questions)[:6]:
        answer = demo_runtime.pipeline.ask(str(q["question"]), DEMO, use_llm=False)
        numbers = {c.number for c in answer.citations}
        for sentence in answer.sentences:
            assert sentence.citations, sentence
            assert set(sentence.citations) <= numbers
        for citation in answer.citations:
            assert (
                citation.quote and citation.passage[citation.start : citation.end] == citation.quote
            )


def test_unanswerable_questions_are_declined(demo_runtime, sample_questions) -> None:
    unanswerable = [q for q in sample_questions if q.get("answerable") is False]
    declined = [
        demo_runtime.pipeline.ask(str(q["question"]), DEMO, use_llm=False).declined
        for q in unanswerable
    ]
    # The extractive tier can only judge topical relevance; these questions are on-topic
    # for the company on purpose, so it declines the clearly unsupported ones. The LLM
    # tier (test_llm_answers.py) must decline most of them.
    assert sum(declined) >= 3, declined


def test_another_tenant_sees_nothing(demo_runtime, sample_questions) -> None:
    q = _answerable(sample_questions)[0]
    answer = demo_runtime.pipeline.ask(str(q["question"]), Principal(tenant_id="other"))
    assert answer.declined and answer.passages == []


def test_follow_up_question_is_answered_in_context(demo_runtime) -> None:
    from citewise.answer.rewrite import Turn

    history = [
        Turn(role="user", content="What is the most the company pays per night for a hotel?"),
        Turn(role="assistant", content="It depends on the city [1]."),
    ]
    answer = demo_runtime.pipeline.ask("And in Nordhaven?", DEMO, history=history, use_llm=False)
    assert answer.search_query.startswith("What is the most the company pays per night")
    assert not answer.declined
    assert any(c.source == "travel-and-expense-policy.docx" for c in answer.citations)
    assert "190" in " ".join(c.passage for c in answer.citations)
