"""The question-answering pipeline: retrieve -> gate -> generate (tiers) -> verify -> cite.

`QAPipeline.ask` returns one `Answer`; `QAPipeline.stream` yields the same
answer as events (``meta``, ``token``, ``fallback``, ``final``). Both number
the passages before any tier runs, so citation numbers are the same in the
stream, its final event and the non-streaming response.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial

import structlog
from langchain_core.runnables import RunnableLambda

from citewise.answer.citations import cited_numbers, locate_quote, with_marks
from citewise.answer.extractive import RankedSentence, compose_extractive, rank_sentences
from citewise.answer.prompt import NOT_FOUND, build_messages
from citewise.answer.rewrite import QueryRewriter, Turn
from citewise.answer.sentences import split_sentences
from citewise.answer.stream import (
    AnswerEvent,
    FallbackEvent,
    FinalEvent,
    MetaEvent,
    TokenEvent,
)
from citewise.answer.support import SupportScorer
from citewise.answer.tiers import ChatTier, Generation, Messages, TierFailedError, TierStatus
from citewise.core.errors import AnswerError
from citewise.core.models import Embedder
from citewise.core.schemas import Answer, AnswerSentence, Citation, ScoredChunk, TierAttempt
from citewise.core.settings import AnswerSettings, LLMTier
from citewise.core.tenancy import Principal
from citewise.core.timing import StageTimer
from citewise.retrieval.search import Retriever

log = structlog.get_logger(__name__)

DECLINE_MESSAGE = "I could not find this in your documents."
MAX_QUESTION_CHARS = 2000
EXTRACTIVE = "extractive"
SKIP_REASONS = frozenset({"breaker_open", "unavailable"})


@dataclass
class _Request:
    """One question on its way through the pipeline."""

    question: str
    query: str
    passages: list[Citation]
    ranked: list[RankedSentence]
    timer: StageTimer
    plan: list[tuple[LLMTier, ChatTier | None]]
    gate_passed: bool
    attempts: list[TierAttempt] = field(default_factory=list)

    @property
    def numbers(self) -> set[int]:
        """The citation numbers a tier may use."""
        return {p.number for p in self.passages}


@dataclass
class _Outcome:
    """What the tier that answered produced."""

    tier: str
    sentences: list[AnswerSentence]
    declined: bool = False
    usage: dict[str, int] = field(default_factory=dict)
    first_token_at: float | None = None


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

        The tiers form one LangChain runnable, each tier a fallback of the one
        before (``with_fallbacks``): a tier that fails, is skipped (breaker open)
        or whose answer verification rejects raises `TierFailedError` and the
        next one runs. The answer names the tier and is ``degraded`` when an
        earlier tier did not answer.

        Args:
            question: The employee's question.
            principal: Who asks (tenant, user, groups); scopes every lookup.
            history: Earlier turns of the conversation; a follow-up question is
                rewritten into a standalone query first.
            use_llm: Whether generating tiers may be used (else extractive only).

        Returns:
            The answer with resolved citations, the tier that answered, the tiers
            tried, timings (``ttft``: time to the answering tier's first token) and usage.

        Raises:
            AnswerError: The question is empty or too long.
        """
        request = self._prepare(question, principal, history, use_llm)
        if not request.gate_passed:
            return self._declined(request, "gate")
        if not request.plan:
            return self._declined(request, "none")
        messages = self._messages(request)
        tiers = [
            RunnableLambda(partial(self._run_tier, request, tier, chat), name=f"tier:{tier.name}")
            for tier, chat in request.plan
        ]
        chain = tiers[0].with_fallbacks(tiers[1:], exceptions_to_handle=(TierFailedError,))
        try:
            outcome = chain.invoke(messages)
        except TierFailedError:
            return self._declined(request, "none")
        return self._finish(request, outcome)

    def stream(
        self,
        question: str,
        principal: Principal,
        *,
        history: Sequence[Turn] = (),
        use_llm: bool = True,
    ) -> Iterator[AnswerEvent]:
        """Retrieve now, then return the answer's events (generation runs as they are read).

        The tiers are walked by an explicit loop rather than ``with_fallbacks``:
        a tier can fail after its first tokens were sent (``with_fallbacks``
        only falls back before the first chunk) and the client must be told to
        discard them, with a ``fallback`` event. Streams are not retried.

        Raises:
            AnswerError: The question is empty or too long (before any event).
        """
        request = self._prepare(question, principal, history, use_llm)
        return self._events(request)

    def tier_status(self) -> list[TierStatus]:
        """Every configured tier with its endpoint and circuit breaker state."""
        status = []
        for tier in self.settings.tiers:
            chat = self.chat_tiers.get(tier.name)
            if chat is not None:
                status.append(chat.status())
            else:
                status.append(
                    TierStatus(
                        name=tier.name,
                        kind=tier.kind,
                        model=tier.model,
                        endpoint=tier.base_url,
                        available=tier.kind == EXTRACTIVE,
                    )
                )
        return status

    # --- stages shared by ask and stream ---------------------------------------------------

    def _prepare(
        self, question: str, principal: Principal, history: Sequence[Turn], use_llm: bool
    ) -> _Request:
        """Validate, rewrite, retrieve, number the passages and apply the relevance gate."""
        question = " ".join(question.split())
        if not question:
            raise AnswerError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise AnswerError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        timer = StageTimer()
        rewriter = QueryRewriter(self._first_chat() if use_llm else None)
        query, _method = rewriter.rewrite(question, history)
        timer.lap("rewrite")
        reranker = self.retriever.reranker
        depth = self.settings.max_passages
        if reranker is not None:
            depth = max(depth, self.retriever.settings.rerank.depth)
        hits = self.retriever.search(query, principal, top_k=depth, mode="hybrid")
        timer.lap("retrieve")
        if reranker is not None:
            hits = self.retriever.rerank(query, hits, self.settings.max_passages)
            timer.lap("rerank")
        passages = [_citation(hit, number) for number, hit in enumerate(hits, start=1)]
        ranked = rank_sentences(query, passages, self.embedder)
        timer.lap("rank")
        best = ranked[0].relevance if ranked else 0.0
        gate_passed = best >= self.settings.min_relevance
        if not gate_passed:
            log.info("answer_declined", reason="low_relevance", best=best)
        return _Request(
            question=question,
            query=query,
            passages=passages,
            ranked=ranked,
            timer=timer,
            plan=self._plan(use_llm),
            gate_passed=gate_passed,
        )

    def _plan(self, use_llm: bool) -> list[tuple[LLMTier, ChatTier | None]]:
        """The tiers to try, in order, up to the extractive one (which cannot fail)."""
        plan: list[tuple[LLMTier, ChatTier | None]] = []
        for tier in self.settings.tiers:
            if tier.kind == EXTRACTIVE:
                plan.append((tier, None))
                break
            if use_llm:
                plan.append((tier, self.chat_tiers.get(tier.name)))
        return plan

    def _messages(self, request: _Request) -> Messages:
        return build_messages(
            request.question, request.passages, max_chars=self.settings.passage_max_chars
        )

    def _run_tier(
        self, request: _Request, tier: LLMTier, chat: ChatTier | None, messages: Messages
    ) -> _Outcome:
        """One tier's turn (non-streaming); raises `TierFailedError` to fall back."""
        if tier.kind == EXTRACTIVE:
            return self._extractive(request, tier)
        started = time.perf_counter()
        try:
            chat = self._available(tier, chat)
            generation = chat.generate(messages, passage_numbers=request.numbers)
            request.timer.lap(f"generate_{tier.name}")
            return self._judge(request, tier.name, generation, started)
        except TierFailedError as exc:
            self._failed(request, tier.name, exc, started)
            raise

    def _events(self, request: _Request) -> Iterator[AnswerEvent]:
        plan = request.plan
        yield MetaEvent(
            question=request.question,
            search_query=request.query,
            tier=plan[0][0].name if plan and request.gate_passed else "none",
            tiers=[tier.name for tier, _ in plan],
            passages=request.passages,
        )
        if not request.gate_passed:
            yield FinalEvent(answer=self._declined(request, "gate"))
            return
        messages = self._messages(request)
        for index, (tier, chat) in enumerate(plan):
            if tier.kind == EXTRACTIVE:
                answer = self._finish(request, self._extractive(request, tier))
                if not answer.declined:
                    yield TokenEvent(tier=tier.name, text=answer.answer)
                yield FinalEvent(answer=answer)
                return
            started = time.perf_counter()
            sent = False
            try:
                chat = self._available(tier, chat)
                generation: Generation | None = None
                items = chat.stream(messages, passage_numbers=request.numbers)
                with closing(_held_back(items)) as held:
                    for item in held:
                        if isinstance(item, Generation):
                            generation = item
                        else:
                            sent = True
                            yield TokenEvent(tier=tier.name, text=item)
                request.timer.lap(f"generate_{tier.name}")
                assert generation is not None  # ChatTier.stream ends with it or raises
                outcome = self._judge(request, tier.name, generation, started)
            except TierFailedError as exc:
                self._failed(request, tier.name, exc, started)
                following = plan[index + 1][0].name if index + 1 < len(plan) else None
                yield FallbackEvent(tier=tier.name, reason=exc.reason, next=following, discard=sent)
                continue
            yield FinalEvent(answer=self._finish(request, outcome))
            return
        yield FinalEvent(answer=self._declined(request, "none"))

    def _available(self, tier: LLMTier, chat: ChatTier | None) -> ChatTier:
        if chat is None:
            log.warning("tier_unavailable", tier=tier.name)
            raise TierFailedError(tier.name, "unavailable", "no client (local server not started)")
        return chat

    def _extractive(self, request: _Request, tier: LLMTier) -> _Outcome:
        started = time.perf_counter()
        sentences = compose_extractive(
            request.ranked,
            max_sentences=self.settings.extractive_sentences,
            min_relevance=self.settings.min_relevance,
        )
        request.timer.lap("extractive")
        done = time.perf_counter()
        request.attempts.append(
            TierAttempt(
                tier=tier.name,
                outcome="answered" if sentences else "declined",
                ms=round((done - started) * 1000, 1),
            )
        )
        return _Outcome(tier=tier.name, sentences=sentences, first_token_at=done)

    def _judge(
        self, request: _Request, tier: str, generation: Generation, started: float
    ) -> _Outcome:
        """Decline on NOT_FOUND, else verify; a reply with nothing supported fails the tier."""
        outcome = _Outcome(
            tier=tier,
            sentences=[],
            usage=generation.usage,
            first_token_at=generation.first_token_at,
        )
        if generation.text.strip().rstrip(".").upper() == NOT_FOUND:
            log.info("answer_declined", reason="model_not_found", tier=tier)
            outcome.declined = True
        else:
            outcome.sentences = self._verified(generation.text, request.passages)
            request.timer.lap("verify")
            if not outcome.sentences:
                log.warning("tier_unsupported", tier=tier, text=generation.text[:200])
                raise TierFailedError(tier, "unsupported", generation.text[:120])
        request.attempts.append(
            TierAttempt(
                tier=tier,
                outcome="declined" if outcome.declined else "answered",
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        )
        return outcome

    @staticmethod
    def _failed(request: _Request, tier: str, exc: TierFailedError, started: float) -> None:
        log.warning("tier_failed", tier=tier, reason=exc.reason, error=str(exc))
        if exc.reason != "unsupported":  # else generation and verification were timed
            request.timer.lap(f"generate_{tier}")
        request.attempts.append(
            TierAttempt(
                tier=tier,
                outcome="skipped" if exc.reason in SKIP_REASONS else "failed",
                reason=exc.reason,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        )

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

    def _finish(self, request: _Request, outcome: _Outcome) -> Answer:
        """The answer of the tier that answered (or declined)."""
        if outcome.declined or not outcome.sentences:
            answer = self._declined(request, outcome.tier)
            answer.usage = outcome.usage
            return answer
        by_number = {p.number: p for p in request.passages}
        citations: dict[int, Citation] = {}
        for sentence in outcome.sentences:
            for number in sentence.citations:
                if number not in citations:
                    citations[number] = locate_quote(sentence.text, by_number[number])
        request.timer.lap("cite")
        timings = dict(request.timer.laps)
        if outcome.first_token_at is not None:
            timings["ttft"] = request.timer.since_start(outcome.first_token_at)
        timings["total"] = request.timer.total()
        return Answer(
            question=request.question,
            search_query=request.query,
            answer=" ".join(s.text for s in outcome.sentences),
            declined=False,
            sentences=outcome.sentences,
            citations=sorted(citations.values(), key=lambda c: c.number),
            tier=outcome.tier,
            degraded=_degraded(request),
            passages=request.passages,
            timings_ms=timings,
            usage=outcome.usage,
            attempts=list(request.attempts),
        )

    def _declined(self, request: _Request, tier: str) -> Answer:
        return Answer(
            question=request.question,
            search_query=request.query,
            answer=DECLINE_MESSAGE,
            declined=True,
            tier=tier,
            degraded=_degraded(request),
            passages=request.passages,
            timings_ms={**request.timer.laps, "total": request.timer.total()},
            attempts=list(request.attempts),
        )


def _degraded(request: _Request) -> bool:
    """Whether a tier before the one that ended the request failed or was skipped."""
    return any(a.outcome in {"failed", "skipped"} for a in request.attempts)


def _held_back(
    items: Iterator[str | Generation],
) -> Generator[str | Generation, None, None]:
    """Pass a tier's stream through, holding text back while it may still be ``NOT_FOUND``.

    A model that declines says exactly NOT_FOUND; the client should see a
    decline, not that word streaming in.
    """
    pending: str | None = ""
    try:
        for item in items:
            if pending is not None and isinstance(item, str):
                pending += item
                head = pending.strip().upper()
                if not head or NOT_FOUND.startswith(head) or head.rstrip(".") == NOT_FOUND:
                    continue
                item, pending = pending, None
            elif pending and isinstance(item, Generation):
                if pending.strip().upper().rstrip(".") != NOT_FOUND:
                    yield pending
                pending = None
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


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
