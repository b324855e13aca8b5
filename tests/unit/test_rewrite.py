from citewise.answer.rewrite import QueryRewriter, Turn, needs_context, rule_rewrite

HISTORY = [
    Turn(role="user", content="How many vacation days do full-time employees get?"),
    Turn(role="assistant", content="Full-time employees receive 23 days of paid leave [1]."),
]


def test_standalone_questions_are_left_alone() -> None:
    question = "How long must my password be?"
    assert not needs_context(question, HISTORY)
    assert QueryRewriter().rewrite(question, HISTORY) == (question, "none")


def test_first_question_never_needs_context() -> None:
    assert not needs_context("And for contractors?", [])


def test_follow_ups_carry_the_previous_question() -> None:
    for follow_up in ["And for contractors?", "What about after five years?", "Is it paid?"]:
        assert needs_context(follow_up, HISTORY)
        query, method = QueryRewriter().rewrite(follow_up, HISTORY)
        assert method == "rule"
        assert query == f"How many vacation days do full-time employees get? {follow_up}"


def test_rule_uses_the_latest_user_turn() -> None:
    history = [*HISTORY, Turn(role="user", content="What is the per-mile rate for my car?")]
    assert rule_rewrite("And for a motorbike?", history).startswith("What is the per-mile rate")


def test_rewriter_without_llm_keeps_working_over_long_histories() -> None:
    history = [Turn(role="user", content=f"question {i} about leave") for i in range(30)]
    query, method = QueryRewriter().rewrite("and that?", history)
    assert method == "rule" and query == "question 29 about leave and that?"
