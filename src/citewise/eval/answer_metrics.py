"""Per-question answer metrics: ragas' non-LLM metrics and Citewise's own.

ragas metrics come from its legacy single-turn API (``SingleTurnSample`` and
``single_turn_score``), imported from their modules so that no deprecation shim runs.
Retrieved contexts are the passages the pipeline showed the model; their ids are
the passages' document ids. ragas' string-based context metrics compare whole
strings (Levenshtein), so a short quoted reference never matches a 900-character
passage; `quote_recall` (Citewise) checks instead whether each quoted reference
context occurs inside a retrieved passage (case, spacing and punctuation ignored).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

from citewise.core.schemas import Answer
from citewise.eval.datasets import QAItem

# metric -> True when higher is better. Summary keys derived from these keep the direction.
DIRECTIONS: dict[str, bool] = {
    "id_context_precision": True,
    "id_context_recall": True,
    "string_context_precision": True,
    "string_context_recall": True,
    "quote_recall": True,
    "string_similarity": True,
    "rouge_l": True,
    "citation_validity": True,
    "cited_doc_recall": True,
    "groundedness": True,
    "correct_decline": True,
    "false_decline": False,
    "latency_ms": False,
    "tokens": False,
    "faithfulness": True,
    "answer_relevancy": True,
    "llm_context_precision": True,
    "llm_context_recall": True,
    "factual_correctness": True,
}
_NON_WORD = re.compile(r"[\W_]+")


def higher_is_better(metric: str) -> bool:
    """Direction of a metric or of a summary key built on one (``latency.total.p50``...)."""
    if metric.startswith(("latency", "tokens")):
        return False
    base = metric.removesuffix("_rate")
    return DIRECTIONS.get(base, True)


@cache
def _ragas() -> dict[str, Any]:
    """The ragas non-LLM metric objects (imported once; ragas import takes seconds)."""
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # ragas reads only the environment
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ragas.dataset_schema import SingleTurnSample
        from ragas.metrics._context_precision import (
            IDBasedContextPrecision,
            NonLLMContextPrecisionWithReference,
        )
        from ragas.metrics._context_recall import IDBasedContextRecall, NonLLMContextRecall
        from ragas.metrics._rouge_score import RougeScore
        from ragas.metrics._string import NonLLMStringSimilarity

    return {
        "sample": SingleTurnSample,
        "id_context_precision": IDBasedContextPrecision(),
        "id_context_recall": IDBasedContextRecall(),
        "string_context_precision": NonLLMContextPrecisionWithReference(),
        "string_context_recall": NonLLMContextRecall(),
        "string_similarity": NonLLMStringSimilarity(),
        "rouge_l": RougeScore(rouge_type="rougeL"),
    }


def ragas_sample(item: QAItem, answer: Answer) -> Any:
    """The ragas ``SingleTurnSample`` of one answered question."""
    sample_cls: Callable[..., Any] = _ragas()["sample"]
    return sample_cls(
        user_input=item.question,
        response=answer.answer,
        reference=item.reference or None,
        retrieved_contexts=[p.passage for p in answer.passages],
        reference_contexts=item.reference_contexts or None,
        retrieved_context_ids=[p.doc_id for p in answer.passages],
        reference_context_ids=item.reference_doc_ids or None,
    )


def question_metrics(item: QAItem, answer: Answer) -> dict[str, float | None]:
    """Every non-LLM metric of one question; None where it does not apply."""
    metrics: dict[str, float | None] = dict.fromkeys(
        (
            "id_context_precision",
            "id_context_recall",
            "string_context_precision",
            "string_context_recall",
            "quote_recall",
            "string_similarity",
            "rouge_l",
            "citation_validity",
            "cited_doc_recall",
            "groundedness",
            "correct_decline",
            "false_decline",
        )
    )
    metrics["latency_ms"] = answer.timings_ms.get("total")
    metrics["tokens"] = float(sum(answer.usage.values())) if answer.usage else 0.0
    if not item.answerable:
        metrics["correct_decline"] = 1.0 if answer.declined else 0.0
        return metrics
    metrics["false_decline"] = 1.0 if answer.declined else 0.0
    ragas = _ragas()
    sample = ragas_sample(item, answer)
    if answer.passages and item.reference_doc_ids:
        metrics["id_context_precision"] = _score(ragas["id_context_precision"], sample)
        metrics["id_context_recall"] = _score(ragas["id_context_recall"], sample)
    if answer.passages and item.reference_contexts:
        metrics["string_context_precision"] = _score(ragas["string_context_precision"], sample)
        metrics["string_context_recall"] = _score(ragas["string_context_recall"], sample)
        metrics["quote_recall"] = quote_recall(
            item.reference_contexts, [p.passage for p in answer.passages]
        )
    metrics["string_similarity"] = _score(ragas["string_similarity"], sample)
    metrics["rouge_l"] = _score(ragas["rouge_l"], sample)
    if not answer.declined:
        metrics["citation_validity"] = citation_validity(answer)
        if answer.verification is not None:
            metrics["groundedness"] = answer.verification.score
        if item.reference_doc_ids:
            cited = {c.doc_id for c in answer.citations}
            found = sum(1 for d in item.reference_doc_ids if d in cited)
            metrics["cited_doc_recall"] = found / len(item.reference_doc_ids)
    return metrics


def _score(metric: Any, sample: Any) -> float | None:
    value = float(metric.single_turn_score(sample))
    return None if value != value else value  # NaN: ragas could not score it


def citation_validity(answer: Answer) -> float | None:
    """Share of the answer's citations that resolve to a passage it was given (None: none cited).

    A citation resolves when a passage has its number, document, version and chunk, and
    its quote (when located) lies inside that passage's text.
    """
    cited = {n for s in answer.sentences for n in s.citations} | {
        c.number for c in answer.citations
    }
    if not cited:
        return None
    passages = {p.number: p for p in answer.passages}
    by_number = {c.number: c for c in answer.citations}
    valid = 0
    for number in cited:
        passage = passages.get(number)
        citation = by_number.get(number)
        if passage is None or citation is None:
            continue
        same = (citation.doc_id, citation.version, citation.chunk_index) == (
            passage.doc_id,
            passage.version,
            passage.chunk_index,
        )
        quote_ok = not citation.quote or citation.quote in passage.passage
        valid += same and quote_ok
    return valid / len(cited)


def quote_recall(references: list[str], passages: list[str]) -> float:
    """Share of quoted reference contexts found in a passage (case, spacing, punctuation ignored).

    Exact otherwise: a quote with one number changed is not found.
    """
    texts = [_norm(p) for p in passages]
    found = 0
    for reference in references:
        needle = _norm(reference)
        if needle.strip() and any(needle in text for text in texts):
            found += 1
    return found / len(references) if references else 0.0


def _norm(text: str) -> str:
    return f" {_NON_WORD.sub(' ', text).strip().lower()} "
