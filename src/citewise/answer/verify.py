"""Groundedness verification of an answer, sentence by sentence, and the policy applied.

Each sentence is checked against the passages it cites (a sentence without a
resolving citation borrows the passage that supports it best). A sentence is
supported when one of them scores at least ``threshold``; it then keeps exactly
the citations that support it. Unsupported sentences are removed or kept and
marked (``policy``); when less than ``min_supported`` of the answer is
supported, the answer is not good enough to serve (the pipeline declines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from citewise.answer.citations import cited_numbers, with_marks
from citewise.answer.support import SupportCheck
from citewise.core.schemas import AnswerSentence, Citation, Verification
from citewise.core.settings import VerificationSettings

log = structlog.get_logger(__name__)

UNVERIFIED_MARK = "[unverified]"
"""Appended to a sentence kept under the ``mark`` policy."""


class SentenceChecker(Protocol):
    """Scores (sentence, passage) pairs."""

    name: str

    def check_many(self, sentences: Sequence[str], passages: Sequence[str]) -> list[SupportCheck]:
        """Support of each sentence by its paired passage (same index)."""
        ...


@dataclass(frozen=True)
class VerifiedAnswer:
    """The sentences to serve and the verification report."""

    sentences: list[AnswerSentence]
    verification: Verification
    enough: bool


class AnswerVerifier:
    """Verifies answers with the configured checkers and applies the policy.

    Args:
        settings: Threshold, policy and which checkers run.
        fast: The fast checker (always available).
        judge: The LLM judge, for ``llm`` and ``fast+llm``; without it those
            modes fall back to the fast checker and say so.
    """

    def __init__(
        self,
        settings: VerificationSettings,
        fast: SentenceChecker,
        judge: SentenceChecker | None = None,
    ) -> None:
        self.settings = settings
        self.fast = fast
        self.judge = judge

    def verify(
        self, sentences: Sequence[str], passages: Sequence[Citation], *, quotes: bool = False
    ) -> VerifiedAnswer:
        """Check `sentences` (with their ``[n]`` marks) against the numbered `passages`.

        Args:
            sentences: The answer's sentences.
            passages: The passages the answer could cite.
            quotes: The sentences are verbatim quotes of their passages (the
                extractive tier): the fast checker suffices, the judge is not asked.
        """
        by_number = {p.number: p for p in passages}
        pairs: list[tuple[int, int]] = []  # (sentence index, passage number)
        for index, sentence in enumerate(sentences):
            cited = [n for n in cited_numbers(sentence) if n in by_number]
            pairs.extend((index, n) for n in cited or by_number)
        checks, used = self.check_pairs(
            [sentences[i] for i, _ in pairs],
            [_evidence(by_number[n]) for _, n in pairs],
            mode="fast" if quotes else self.settings.verifier,
        )
        served: list[AnswerSentence] = []
        scores: list[float] = []
        removed = marked = supported = 0
        for index, sentence in enumerate(sentences):
            mine = [(c, n) for (i, n), c in zip(pairs, checks, strict=True) if i == index]
            if not mine:
                continue
            cited = [n for n in cited_numbers(sentence) if n in by_number]
            candidates = [(c, n) for c, n in mine if n in cited] or [
                max(mine, key=lambda pair: pair[0].score)
            ]
            best = max(candidates, key=lambda pair: pair[0].score)[0]
            scores.append(best.score)
            good = [n for c, n in candidates if c.score >= self.settings.threshold]
            if good:
                supported += 1
                served.append(
                    AnswerSentence(
                        text=with_marks(sentence, good), citations=good, support=best.score
                    )
                )
            elif self.settings.policy == "mark":
                marked += 1
                text = with_marks(sentence, cited) if cited else sentence
                served.append(
                    AnswerSentence(
                        text=f"{text} {UNVERIFIED_MARK}",
                        citations=cited,
                        support=best.score,
                        supported=False,
                        missing=best.missing,
                    )
                )
            else:
                removed += 1
                log.info("sentence_removed", support=best.score, missing=best.missing)
        total = len(scores)
        verification = Verification(
            verifier=used,
            policy=self.settings.policy,
            threshold=self.settings.threshold,
            score=round(sum(scores) / total, 4) if total else 0.0,
            sentences=total,
            supported=supported,
            removed=removed,
            marked=marked,
        )
        enough = supported > 0 and supported >= self.settings.min_supported * total
        return VerifiedAnswer(sentences=served, verification=verification, enough=enough)

    def check_pairs(
        self, sentences: Sequence[str], passages: Sequence[str], *, mode: str
    ) -> tuple[list[SupportCheck], str]:
        """Score (sentence, passage) pairs with the checkers of `mode` (fast, llm, fast+llm).

        Returns:
            The checks, and the name of what actually ran (the fast checker, with
            a note, when the judge is missing or fails).
        """
        fast = self.fast.check_many(sentences, passages) if mode != "llm" else []
        if mode == "fast" or not sentences:
            return fast, mode
        if self.judge is None:
            log.warning("judge_unavailable", verifier=mode)
            return fast or self.fast.check_many(sentences, passages), "fast (judge unavailable)"
        todo = [
            i
            for i in range(len(sentences))
            if mode == "llm" or fast[i].score >= self.settings.threshold
        ]
        try:
            judged = self.judge.check_many(
                [sentences[i] for i in todo], [passages[i] for i in todo]
            )
        except Exception as exc:  # any endpoint failure: verification must still happen
            log.warning("judge_failed", error=str(exc)[:200])
            return fast or self.fast.check_many(sentences, passages), "fast (judge unavailable)"
        if mode == "llm":
            return judged, mode
        merged = list(fast)
        for i, check in zip(todo, judged, strict=True):
            merged[i] = SupportCheck(score=min(fast[i].score, check.score), missing=fast[i].missing)
        return merged, mode


def _evidence(citation: Citation) -> str:
    """What a sentence citing `citation` may rely on: its heading path and its text."""
    head = " / ".join(part for part in (citation.title, citation.section) if part)
    return f"{head}\n{citation.passage}" if head else citation.passage
