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
from opentelemetry.context import Context

from citewise.answer.cache import AnswerCache, Lookup, settings_fingerprint
from citewise.answer.citations import locate_quote
from citewise.answer.extractive import RankedSentence, compose_extractive, rank_sentences
from citewise.answer.guard import REFUSAL, detect, strip_injections
from citewise.answer.observe import record_answer, trace_parent
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
from citewise.answer.support import FastVerifier
from citewise.answer.tiers import ChatTier, Generation, Messages, TierFailedError, TierStatus
from citewise.answer.verify import AnswerVerifier, SentenceChecker
from citewise.core.errors import AnswerError
from citewise.core.models import Embedder
from citewise.core.schemas import (
    Answer,
    AnswerSentence,
    Citation,
    ScoredChunk,
    TierAttempt,
    Verification,
)
from citewise.core.settings import AnswerSettings, LLMTier
from citewise.core.tenancy import Principal
from citewise.core.timing import StageTimer
from citewise.retrieval.search import Retriever

log = structlog.get_logger(__name__)

DECLINE_MESSAGE = "I could not find this in your documents."
MAX_QUESTION_CHARS = 2000
EXTRACTIVE = "extractive"
SKIP_REASONS = frozenset({"breaker_open", "unavailable"})
OUTPUT_FAULTS = frozenset({"empty", "invalid_citations", "malformed", "unsupported"})
"""Failure reasons whose error message quotes model output (kept out of logs)."""


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
    tenant: str = ""
    parent: Context = field(default_factory=trace_parent)  # the trace context of the request
    context: list[Citation] = field(default_factory=list)
    gate_reason: str = "gate"
    flags: list[str] = field(default_factory=list)
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
    decline_reason: str = ""
    verification: Verification | None = None
    usage: dict[str, int] = field(default_factory=dict)
    first_token_at: float | None = None


class QAPipeline:
    """Answers a principal's question from the documents they may read.

    Args:
        settings: Answer settings (tiers order, passages, thresholds).
        retriever: Hybrid retriever.
        embedder: Dense embedder (sentence ranking and support scores).
        chat_tiers: Generating tiers by name; configured tiers missing here are skipped.
        judge: The LLM judge for ``verification.verifier`` llm or fast+llm.
        cache: Exact and semantic answer caches (None: every question is answered afresh).
    """

    def __init__(
        self,
        settings: AnswerSettings,
        *,
        retriever: Retriever,
        embedder: Embedder,
        chat_tiers: dict[str, ChatTier],
        judge: SentenceChecker | None = None,
        cache: AnswerCache | None = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.embedder = embedder
        self.chat_tiers = chat_tiers
        self.verifier = AnswerVerifier(settings.verification, FastVerifier(embedder), judge)
        self.cache = cache
        self.fingerprint = settings_fingerprint(
            settings.model_dump_json(),
            retriever.settings.model_dump_json(),
            embedder.settings.model_dump_json(),
            ",".join(sorted(chat_tiers)),
            "judge" if judge is not None else "",
            str(retriever.reranker is not None),
        )

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
        lookup = self._lookup(question, principal, history, use_llm)
        if lookup is not None and lookup.hit is not None:
            return lookup.hit
        request = self._prepare(question, principal, history, use_llm)
        answer = self._observed(request, self._answer(request))
        if lookup is not None and self.cache is not None:
            self.cache.remember(lookup, answer)
        return answer

    def _answer(self, request: _Request) -> Answer:
        """The answer to a prepared question: the tiers as one runnable with fallbacks."""
        if not request.gate_passed:
            return self._declined(request, "gate", request.gate_reason)
        if not request.plan:
            return self._declined(request, "none", "none")
        messages = self._messages(request)
        tiers = [
            RunnableLambda(partial(self._run_tier, request, tier, chat), name=f"tier:{tier.name}")
            for tier, chat in request.plan
        ]
        chain = tiers[0].with_fallbacks(tiers[1:], exceptions_to_handle=(TierFailedError,))
        try:
            outcome = chain.invoke(messages)
        except TierFailedError:
            return self._declined(request, "none", "none")
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

        A cached answer is replayed as ``meta``, one ``token`` and ``final``.

        Raises:
            AnswerError: The question is empty or too long (before any event).
        """
        lookup = self._lookup(question, principal, history, use_llm)
        if lookup is not None and lookup.hit is not None:
            return _replay(lookup.hit)
        request = self._prepare(question, principal, history, use_llm)
        events = self._events(request)
        return events if lookup is None else self._remembered(events, lookup)

    # --- the answer cache ------------------------------------------------------------------

    def _lookup(
        self, question: str, principal: Principal, history: Sequence[Turn], use_llm: bool
    ) -> Lookup | None:
        """The cache lookup of a valid question (None without a cache; `_prepare` rejects)."""
        question = " ".join(question.split())
        if self.cache is None or not question or len(question) > MAX_QUESTION_CHARS:
            return None
        return self.cache.lookup(
            question, principal, history=history, use_llm=use_llm, fingerprint=self.fingerprint
        )

    def _remembered(self, events: Iterator[AnswerEvent], lookup: Lookup) -> Iterator[AnswerEvent]:
        """Pass a stream's events through, caching its final answer (if it may be reused)."""
        assert self.cache is not None
        with closing(_Closable(events)):
            for event in events:
                if isinstance(event, FinalEvent):
                    self.cache.remember(lookup, event.answer)
                yield event

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
        flags = [f"question:{kind}" for kind in detect(question).kinds]
        if flags:
            log.warning("injection_suspected", where="question", kinds=flags)
            if self.settings.guard.questions == "block":
                return _Request(
                    question=question,
                    query=question,
                    passages=[],
                    ranked=[],
                    timer=timer,
                    plan=[],
                    gate_passed=False,
                    tenant=principal.tenant_id,
                    gate_reason="injection",
                    flags=flags,
                )
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
        context = self._context(passages, flags)
        ranked = rank_sentences(query, context, self.embedder)
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
            tenant=principal.tenant_id,
            context=context,
            flags=flags,
        )

    def _context(self, passages: list[Citation], flags: list[str]) -> list[Citation]:
        """The passages as the model and the verifier see them: planted instructions cut out.

        Appends ``passage N:kind`` to `flags` for every passage that had some.
        """
        if self.settings.guard.passages == "off":
            return passages
        context = []
        for passage in passages:
            clean, kinds = strip_injections(passage.passage)
            if kinds:
                flags += [f"passage {passage.number}:{kind}" for kind in kinds]
                log.warning(
                    "injection_suspected", where="passage", doc_id=passage.doc_id, kinds=kinds
                )
            strip = kinds and self.settings.guard.passages == "strip"
            context.append(passage.model_copy(update={"passage": clean}) if strip else passage)
        return context

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
            request.question, request.context, max_chars=self.settings.passage_max_chars
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
            return self._accept(request, tier.name, generation, started)
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
            yield self._final(request, self._declined(request, "gate", request.gate_reason))
            return
        messages = self._messages(request)
        for index, (tier, chat) in enumerate(plan):
            if tier.kind == EXTRACTIVE:
                answer = self._finish(request, self._extractive(request, tier))
                if not answer.declined:
                    yield TokenEvent(tier=tier.name, text=answer.answer)
                yield self._final(request, answer)
                return
            started = time.perf_counter()
            sent = False
            try:
                chat = self._available(tier, chat)
                generation: Generation | None = None
                items = chat.stream(messages, passage_numbers=request.numbers)
                with closing(_held_back(items)) as held:
                    for item in self._sentence_gate(held, request.context):
                        if isinstance(item, Generation):
                            generation = item
                        else:
                            sent = True
                            yield TokenEvent(tier=tier.name, text=item)
                request.timer.lap(f"generate_{tier.name}")
                assert generation is not None  # ChatTier.stream ends with it or raises
                outcome = self._accept(request, tier.name, generation, started)
            except TierFailedError as exc:
                self._failed(request, tier.name, exc, started)
                following = plan[index + 1][0].name if index + 1 < len(plan) else None
                yield FallbackEvent(tier=tier.name, reason=exc.reason, next=following, discard=sent)
                continue
            yield self._final(request, self._finish(request, outcome))
            return
        yield self._final(request, self._declined(request, "none", "none"))

    def _final(self, request: _Request, answer: Answer) -> FinalEvent:
        """The ``final`` event of a stream, its answer observed (metrics, spans)."""
        return FinalEvent(answer=self._observed(request, answer))

    @staticmethod
    def _observed(request: _Request, answer: Answer) -> Answer:
        """`answer`, recorded once in the metrics and as spans of the request's trace."""
        record_answer(answer, request.timer, tenant=request.tenant, parent=request.parent)
        return answer

    def _sentence_gate(
        self, items: Iterator[str | Generation], passages: list[Citation]
    ) -> Iterator[str | Generation]:
        """Release a tier's stream a verified sentence at a time.

        Each sentence is held until the next one begins, then checked with the
        fast checker against the passages it cites: under ``remove`` an
        unsupported sentence is never sent, under ``mark`` it is sent marked.
        The final event's answer, verified with the configured verifier, is
        authoritative (a judge may still remove a sentence that was streamed).
        """
        buffer = ""
        for item in items:
            if isinstance(item, Generation):
                yield from self._gated(buffer, passages)
                buffer = ""
                yield item
                continue
            buffer += item
            sentences = split_sentences(buffer)
            if len(sentences) > 1:
                for sentence in sentences[:-1]:
                    yield from self._gated(sentence.text, passages)
                buffer = buffer[sentences[-1].start :]
        yield from self._gated(buffer, passages)

    def _gated(self, text: str, passages: list[Citation]) -> Iterator[str]:
        """The verified form of one streamed sentence (nothing if it is removed)."""
        if len(text.strip()) <= 2:
            return
        verified = self.verifier.verify([text.strip()], passages, quotes=True)
        for sentence in verified.sentences:
            yield f"{sentence.text} "

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
        verified = self.verifier.verify([s.text for s in sentences], request.context, quotes=True)
        request.timer.lap("verify")
        request.attempts.append(
            TierAttempt(
                tier=tier.name,
                outcome="answered" if sentences else "declined",
                ms=round((done - started) * 1000, 1),
            )
        )
        return _Outcome(
            tier=tier.name,
            sentences=verified.sentences,
            verification=verified.verification,
            first_token_at=done,
        )

    def _accept(
        self, request: _Request, tier: str, generation: Generation, started: float
    ) -> _Outcome:
        """Decline on NOT_FOUND, else verify the reply and apply the policy.

        An answer too little of which is supported declines (or, with
        ``on_unsupported = fallback``, fails the tier so the next one answers).
        """
        outcome = _Outcome(
            tier=tier,
            sentences=[],
            usage=generation.usage,
            first_token_at=generation.first_token_at,
        )
        if generation.text.strip().rstrip(".").upper() == NOT_FOUND:
            log.info("answer_declined", reason="model_not_found", tier=tier)
            outcome.declined, outcome.decline_reason = True, "model"
        else:
            raw = [s.text for s in split_sentences(generation.text.replace(NOT_FOUND, ""))]
            verified = self.verifier.verify([s for s in raw if len(s) > 2], request.context)
            request.timer.lap("verify")
            outcome.verification = verified.verification
            if verified.enough:
                outcome.sentences = verified.sentences
            else:
                log.warning("tier_unsupported", tier=tier, chars=len(generation.text))
                if self.settings.verification.on_unsupported == "fallback":
                    raise TierFailedError(tier, "unsupported", generation.text[:120])
                outcome.declined, outcome.decline_reason = True, "unsupported"
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
        detail = {} if exc.reason in OUTPUT_FAULTS else {"error": str(exc)}
        log.warning("tier_failed", tier=tier, reason=exc.reason, **detail)
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

    def _finish(self, request: _Request, outcome: _Outcome) -> Answer:
        """The answer of the tier that answered (or declined)."""
        if outcome.declined or not outcome.sentences:
            answer = self._declined(
                request, outcome.tier, outcome.decline_reason or "none", outcome.verification
            )
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
            verification=outcome.verification,
            citations=sorted(citations.values(), key=lambda c: c.number),
            tier=outcome.tier,
            degraded=_degraded(request),
            passages=request.passages,
            timings_ms=timings,
            usage=outcome.usage,
            attempts=list(request.attempts),
            flags=request.flags,
        )

    def _declined(
        self,
        request: _Request,
        tier: str,
        reason: str,
        verification: Verification | None = None,
    ) -> Answer:
        """A decline; its passages are the closest ones found, for the user to look at."""
        return Answer(
            question=request.question,
            search_query=request.query,
            answer=REFUSAL if reason == "injection" else DECLINE_MESSAGE,
            declined=True,
            decline_reason=reason,
            verification=verification,
            tier=tier,
            degraded=_degraded(request),
            passages=request.passages,
            timings_ms={**request.timer.laps, "total": request.timer.total()},
            attempts=list(request.attempts),
            flags=request.flags,
        )


def _replay(answer: Answer) -> Iterator[AnswerEvent]:
    """A cached answer as a stream: its passages, its text in one token, the answer."""
    yield MetaEvent(
        question=answer.question,
        search_query=answer.search_query,
        tier=answer.tier,
        tiers=[answer.tier],
        passages=answer.passages,
    )
    if not answer.declined:
        yield TokenEvent(tier=answer.tier, text=answer.answer)
    yield FinalEvent(answer=answer)


class _Closable:
    """`contextlib.closing` for an iterator that may or may not have ``close``."""

    def __init__(self, items: Iterator[AnswerEvent]) -> None:
        self.items = items

    def close(self) -> None:
        close = getattr(self.items, "close", None)
        if close is not None:
            close()


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
