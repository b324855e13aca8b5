"""The question-answering pipeline: retrieve -> gate -> generate (tiers) -> verify -> cite."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from citewise.answer.citations import cited_numbers, locate_quote, with_marks
from citewise.answer.extractive import compose_extractive, rank_sentences
from citewise.answer.prompt import NOT_FOUND, build_messages
from citewise.answer.rewrite import QueryRewriter, Turn
from citewise.answer.sentences import split_sentences
from citewise.answer.support import SupportScorer
from citewise.answer.tiers import ChatTier
from citewise.core.errors import AnswerError
from citewise.core.models import Embedder
from citewise.core.schemas import Answer, AnswerSentence, Citation, ScoredChunk
from citewise.core.settings import AnswerSettings
from citewise.core.tenancy import Principal
from citewise.core.timing import StageTimer
from citewise.retrieval.search import Retriever

log = structlog.get_logger(__name__)

DECLINE_MESSAGE = "I could not find this in your documents."
MAX_QUESTION_CHARS = 2000
EXTRACTIVE = "extractive"


class QAPipeline:
    """Answers a principal's question from the documents they may read.

    Args:
        settings: Answer settings (tiers order, passages, thresholds).
        retriever: Hybrid retriever.
        embedder: Dense embedder (sentence ranking and support scores).
        chat_tiers: Generating tiers by name; configured tiers missing here are skipped.
    """

    def __init__(
        self,
        settings: AnswerSettings,
        *,
        retriever: Retriever,
        embedder: Embedder,
        chat_tiers: dict[str, ChatTier],
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.embedder = embedder
        self.chat_tiers = chat_tiers
        self.scorer = SupportScorer(embedder)

    def ask(
        self,
        question: str,
        principal: Principal,
        *,
        history: Sequence[Turn] = (),
        use_llm: bool = True,
    ) -> Answer:
        """Answer `question` for `principal`, or decline when the documents lack support.

        Args:
            question: The employee's question.
            principal: Who asks (tenant, user, groups); scopes every lookup.
            history: Earlier turns of the conversation; a follow-up question is
                rewritten into a standalone query first.
            use_llm: Whether generating tiers may be used (else extractive only).

        Returns:
            The answer with resolved citations, the tier that answered and timings.

        Raises:
            AnswerError: The question is empty or too long.
        """
        question = " ".join(question.split())
        if not question:
            raise AnswerError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise AnswerError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        timer = StageTimer()
        rewriter = QueryRewriter(self._first_chat() if use_llm else None)
        query, _method = rewriter.rewrite(question, history)
        timer.lap("rewrite")
        hits = self.retriever.search(query, principal, top_k=self.settings.max_passages)
        timer.lap("retrieve")
        passages = [_citation(hit, number) for number, hit in enumerate(hits, start=1)]
        ranked = rank_sentences(query, passages, self.embedder)
        timer.lap("rank")
        best = ranked[0].relevance if ranked else 0.0
        if best < self.settings.min_relevance:
            log.info("answer_declined", reason="low_relevance", best=best)
            return self._declined((question, query), passages, "gate", timer)

        degraded = False
        usage: dict[str, int] = {}
        for tier in self.settings.tiers:
            if tier.kind == EXTRACTIVE:
                sentences = compose_extractive(
                    ranked,
                    max_sentences=self.settings.extractive_sentences,
                    min_relevance=self.settings.min_relevance,
                )
                timer.lap("extractive")
                return self._answer(
                    (question, query), sentences, passages, tier.name, degraded, timer
                )
            chat = self.chat_tiers.get(tier.name)
            if not use_llm:
                continue
            if chat is None:
                log.warning("tier_unavailable", tier=tier.name)
                degraded = True
                continue
            messages = build_messages(question, passages, max_chars=self.settings.passage_max_chars)
            try:
                generation = chat.generate(messages)
            except Exception as exc:  # any client failure moves on to the next tier
                log.warning("tier_failed", tier=tier.name, error=repr(exc))
                degraded = True
                timer.lap(f"generate_{tier.name}")
                continue
            timer.lap(f"generate_{tier.name}")
            usage = generation.usage
            if generation.text.strip().rstrip(".").upper() == NOT_FOUND:
                log.info("answer_declined", reason="model_not_found", tier=tier.name)
                return self._declined((question, query), passages, tier.name, timer)
            sentences = self._verified(generation.text, passages)
            timer.lap("verify")
            if sentences:
                answer = self._answer(
                    (question, query), sentences, passages, tier.name, degraded, timer
                )
                answer.usage = usage
                return answer
            log.warning("tier_unsupported", tier=tier.name, text=generation.text[:200])
            degraded = True
        return self._declined((question, query), passages, "none", timer)

    def _first_chat(self) -> ChatTier | None:
        """The first configured generating tier that is available."""
        for tier in self.settings.tiers:
            if tier.name in self.chat_tiers:
                return self.chat_tiers[tier.name]
        return None

    def _verified(self, text: str, passages: list[Citation]) -> list[AnswerSentence]:
        """Keep generated sentences whose resolving citations support them.

        Citations that do not resolve are dropped; an uncited sentence borrows
        the passage that supports it best; unsupported sentences are removed.
        """
        by_number = {p.number: p for p in passages}
        raw = [s.text for s in split_sentences(text.replace(NOT_FOUND, "")) if len(s.text) > 2]
        if not raw:
            return []
        pairs: list[tuple[int, int]] = []  # (sentence index, passage number)
        for index, sentence in enumerate(raw):
            numbers = [n for n in cited_numbers(sentence) if n in by_number] or list(by_number)
            pairs.extend((index, n) for n in numbers)
        scores = self.scorer.score_many(
            [raw[i] for i, _ in pairs], [by_number[n].passage for _, n in pairs]
        )
        kept: list[AnswerSentence] = []
        for index, sentence in enumerate(raw):
            scored = [(s, n) for (i, n), s in zip(pairs, scores, strict=True) if i == index]
            cited = [n for n in cited_numbers(sentence) if n in by_number]
            support = [(s, n) for s, n in scored if n in cited] or [max(scored)]
            good = [n for s, n in support if s >= self.settings.min_sentence_support]
            if not good:
                continue
            kept.append(
                AnswerSentence(
                    text=with_marks(sentence, good),
                    citations=good,
                    support=max(s for s, _ in support),
                )
            )
        return kept

    def _answer(
        self,
        asked: tuple[str, str],
        sentences: list[AnswerSentence],
        passages: list[Citation],
        tier: str,
        degraded: bool,
        timer: StageTimer,
    ) -> Answer:
        if not sentences:
            return self._declined(asked, passages, tier, timer)
        by_number = {p.number: p for p in passages}
        citations: dict[int, Citation] = {}
        for sentence in sentences:
            for number in sentence.citations:
                if number not in citations:
                    citations[number] = locate_quote(sentence.text, by_number[number])
        timer.lap("cite")
        timings = {**timer.laps, "total": timer.total()}
        return Answer(
            question=asked[0],
            search_query=asked[1],
            answer=" ".join(s.text for s in sentences),
            declined=False,
            sentences=sentences,
            citations=sorted(citations.values(), key=lambda c: c.number),
            tier=tier,
            degraded=degraded,
            passages=passages,
            timings_ms=timings,
        )

    def _declined(
        self, asked: tuple[str, str], passages: list[Citation], tier: str, timer: StageTimer
    ) -> Answer:
        return Answer(
            question=asked[0],
            search_query=asked[1],
            answer=DECLINE_MESSAGE,
            declined=True,
            tier=tier,
            passages=passages,
            timings_ms={**timer.laps, "total": timer.total()},
        )


def _citation(hit: ScoredChunk, number: int) -> Citation:
    chunk = hit.chunk
    return Citation(
        number=number,
        doc_id=chunk.doc_id,
        version=chunk.version,
        source=chunk.source,
        title=chunk.title,
        section=chunk.section,
        page=chunk.page,
        chunk_index=chunk.chunk_index,
        passage=chunk.text,
    )
