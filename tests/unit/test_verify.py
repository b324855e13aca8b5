"""Groundedness verification: key facts, the fast checker on the labelled set, the policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from citewise.answer.judge import LLMJudge
from citewise.answer.support import FastVerifier, missing_facts, names_in, numbers_in
from citewise.answer.verify import UNVERIFIED_MARK, AnswerVerifier
from citewise.core.schemas import Citation
from citewise.core.settings import VerificationSettings
from citewise.eval.verifier import _change_number, evaluate_verifier, sample_claims
from tests.servers import free_port

CLAIMS = Path(__file__).resolve().parents[2] / "samples" / "verifier_claims.json"
PASSWORDS = (
    "Passwords must be at least 14 characters long. Accounts lock after 8 failed sign-in "
    "attempts in a row. The Information Security Officer, Ingrid Salvesen, approves exceptions."
)
VPN = "Kestrel SecureLink replaces the old VPN client on 9 November. It starts automatically."


def _passages() -> list[Citation]:
    return [
        Citation(
            number=n,
            doc_id=f"d{n}",
            version=1,
            source=f"d{n}.md",
            title="",
            section="",
            page=None,
            chunk_index=0,
            passage=text,
        )
        for n, text in ((1, PASSWORDS), (2, VPN))
    ]


def test_key_facts_are_numbers_and_names_not_sentence_starts() -> None:
    assert numbers_in("Lock after eight or 8 tries, 1,200 ms [3].") == {"8", "1200"}
    assert numbers_in("One day of leave") == set()  # "one" is rarely a quantity
    assert names_in("Passwords are approved by Ingrid Salvesen in Port Alder.") == {
        "ingrid",
        "salvesen",
        "port",
        "alder",
    }
    assert names_in("HR approves it. SecureLink starts.") == {"hr", "securelink"}
    assert missing_facts("Accounts lock after 10 attempts; HR approves.", PASSWORDS) == [
        "10",
        "hr",
    ]
    assert missing_facts("Ingrid Salvesen approves exceptions after 8 attempts.", PASSWORDS) == []


def test_the_fast_checker_separates_the_labelled_sample_claims(embedder) -> None:  # type: ignore[no-untyped-def]
    claims = sample_claims(CLAIMS)
    assert len(claims) >= 50 and {c.label for c in claims} == {True, False}
    result = evaluate_verifier(FastVerifier(embedder), claims, threshold=0.5, dataset="samples")
    assert result.precision >= 0.85 and result.recall >= 0.95, result
    # Changed numbers, names and dates are caught by the key-fact check.
    for kind in ("number", "name", "date"):
        assert result.pass_rate_by_kind[kind] <= 0.15, (kind, result.pass_rate_by_kind)
    without_facts = evaluate_verifier(
        FastVerifier(embedder, check_facts=False), claims, threshold=0.5, dataset="samples"
    )
    assert without_facts.precision < result.precision - 0.2


def test_remove_policy_keeps_only_supported_sentences_with_their_citations(embedder) -> None:  # type: ignore[no-untyped-def]
    verifier = AnswerVerifier(VerificationSettings(), FastVerifier(embedder))
    verified = verifier.verify(
        [
            "Passwords must be at least 14 characters long [1][2].",  # [2] does not support it
            "Accounts lock after 3 failed attempts [1].",  # wrong number
            "SecureLink replaces the old VPN client on 9 November.",  # uncited: borrows [2]
            "Accounts lock after 8 failed sign-in attempts [7].",  # [7] does not resolve
        ],
        _passages(),
    )
    texts = [s.text for s in verified.sentences]
    assert texts == [
        "Passwords must be at least 14 characters long [1].",
        "SecureLink replaces the old VPN client on 9 November [2].",
        "Accounts lock after 8 failed sign-in attempts [1].",
    ]
    report = verified.verification
    assert (report.sentences, report.supported, report.removed, report.marked) == (4, 3, 1, 0)
    assert verified.enough and 0 < report.score < 1 and report.verifier == "fast"


def test_mark_policy_shows_unsupported_sentences_marked_with_what_is_missing(embedder) -> None:  # type: ignore[no-untyped-def]
    verifier = AnswerVerifier(VerificationSettings(policy="mark"), FastVerifier(embedder))
    verified = verifier.verify(
        ["Passwords need 14 characters [1].", "Accounts lock after 3 failed attempts [1]."],
        _passages(),
    )
    good, bad = verified.sentences
    assert good.supported and not good.missing
    assert not bad.supported and bad.text.endswith(UNVERIFIED_MARK) and bad.missing == ["3"]
    assert bad.citations == [1] and verified.verification.marked == 1


def test_too_little_support_is_not_enough_to_serve(embedder) -> None:  # type: ignore[no-untyped-def]
    verifier = AnswerVerifier(VerificationSettings(min_supported=0.6), FastVerifier(embedder))
    verified = verifier.verify(
        ["Passwords need 14 characters [1].", "The CFO resets passwords on Fridays [1]."],
        _passages(),
    )
    assert not verified.enough and verified.verification.supported == 1
    assert not verifier.verify(["The CEO earns 2 million [1]."], _passages()).enough


def test_an_unreachable_judge_falls_back_to_the_fast_checker_and_says_so(embedder) -> None:  # type: ignore[no-untyped-def]
    judge = LLMJudge(f"http://127.0.0.1:{free_port()}/v1", "none", timeout_s=2, loopback=True)
    verifier = AnswerVerifier(
        VerificationSettings(verifier="fast+llm"), FastVerifier(embedder), judge
    )
    verified = verifier.verify(["Passwords need 14 characters [1]."], _passages())
    assert verified.enough and verified.verification.verifier == "fast (judge unavailable)"


@pytest.mark.parametrize(
    ("claim", "passage", "changed"),
    [
        (
            "Aspirin cuts risk by 30 percent.",
            "Risk fell by 30 percent.",
            "Aspirin cuts risk by 60 percent.",
        ),
        ("Aspirin cuts risk by 30 percent.", "Risk fell.", None),
        (
            "0 deaths were seen in 12 trials.",
            "There were 0 deaths.",
            "1 deaths were seen in 12 trials.",
        ),
    ],
)
def test_number_perturbation_changes_a_number_the_passage_states(
    claim: str, passage: str, changed: str | None
) -> None:
    assert _change_number(claim, passage) == changed
