"""LLM-judged ragas metrics with Citewise's own judge model and embedder, never a hosted default.

The judge is a LangChain ``ChatOpenAI`` on the configured judge tier's endpoint (the
embedded llama.cpp server for a ``local`` tier), wrapped in ragas'
``LangchainLLMWrapper``; embeddings wrap Citewise's `Embedder` in a small LangChain
``Embeddings`` adapter. Both are passed explicitly to every metric.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import SecretStr

from citewise.core.errors import ConfigError
from citewise.core.models import Embedder
from citewise.core.schemas import Answer
from citewise.eval.answer_metrics import ragas_sample
from citewise.eval.datasets import QAItem
from citewise.runtime import Runtime

LLM_METRICS = (
    "faithfulness",
    "answer_relevancy",
    "llm_context_precision",
    "llm_context_recall",
    "factual_correctness",
)


class CitewiseEmbeddings(Embeddings):
    """LangChain embeddings backed by Citewise's embedder (the same model as retrieval)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages."""
        return [[float(x) for x in row] for row in self.embedder.embed(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return [float(x) for x in self.embedder.embed_query(text)]


@dataclass(frozen=True)
class JudgeEndpoint:
    """Where the judge model is served."""

    base_url: str
    model: str
    api_key: SecretStr
    timeout_s: float


def judge_endpoint(runtime: Runtime, *, timeout_s: float = 600.0) -> JudgeEndpoint:
    """The endpoint of ``answer.verification.judge_tier`` (local: the embedded server).

    `timeout_s` bounds one judge call (a ragas metric makes several; on two CPU cores one
    call of the embedded 1.5B model took up to 5 minutes under load).

    Raises:
        ConfigError: The tier is missing, extractive, or local without a running server.
    """
    settings = runtime.settings
    name = settings.answer.verification.judge_tier
    tier = next((t for t in settings.answer.tiers if t.name == name), None)
    if tier is None or tier.kind == "extractive":
        raise ConfigError(f"judge tier {name!r} is not a configured LLM tier")
    if tier.kind == "local":
        base_url = runtime.llm_server.base_url if runtime.llm_server is not None else None
        if runtime.llm_server is None or base_url is None:
            raise ConfigError("the local judge needs the embedded LLM server (it is not running)")
        return JudgeEndpoint(
            base_url,
            runtime.llm_server.model_name,
            SecretStr("not-needed"),
            timeout_s,
        )
    if not tier.base_url or not tier.model:
        raise ConfigError(f"judge tier {name!r} needs base_url and model")
    return JudgeEndpoint(
        tier.base_url, tier.model, tier.api_key or SecretStr("not-needed"), timeout_s
    )


class LLMJudgedMetrics:
    """Faithfulness, answer relevancy, LLM context precision/recall and factual correctness."""

    def __init__(self, endpoint: JudgeEndpoint, embedder: Embedder) -> None:
        os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # ragas reads only the environment
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from langchain_openai import ChatOpenAI
            from ragas.embeddings import LangchainEmbeddingsWrapper
            from ragas.llms import LangchainLLMWrapper
            from ragas.metrics._answer_relevance import ResponseRelevancy
            from ragas.metrics._context_precision import LLMContextPrecisionWithReference
            from ragas.metrics._context_recall import LLMContextRecall
            from ragas.metrics._factual_correctness import FactualCorrectness
            from ragas.metrics._faithfulness import Faithfulness
            from ragas.run_config import RunConfig

            chat = ChatOpenAI(
                model=endpoint.model,
                base_url=endpoint.base_url,
                api_key=endpoint.api_key,
                temperature=0.0,
                max_tokens=512,
                timeout=endpoint.timeout_s,
                max_retries=1,
            )
            llm = LangchainLLMWrapper(chat)
            embeddings = LangchainEmbeddingsWrapper(CitewiseEmbeddings(embedder))
            self.metrics: dict[str, Any] = {
                "faithfulness": Faithfulness(llm=llm),
                "answer_relevancy": ResponseRelevancy(llm=llm, embeddings=embeddings, strictness=1),
                "llm_context_precision": LLMContextPrecisionWithReference(llm=llm),
                "llm_context_recall": LLMContextRecall(llm=llm),
                "factual_correctness": FactualCorrectness(llm=llm),
            }
            config = RunConfig(timeout=int(endpoint.timeout_s) * 4, max_retries=1, max_workers=1)
            for metric in self.metrics.values():
                metric.init(config)

    def score(self, item: QAItem, answer: Answer) -> tuple[dict[str, float | None], dict[str, str]]:
        """The LLM-judged metrics of one answered question (None where not applicable).

        Declined and unanswerable questions are not judged: there is no answer to judge.
        A metric the judge fails on (malformed output, timeout) is None and its error
        is returned in the second dict.
        """
        scores: dict[str, float | None] = dict.fromkeys(LLM_METRICS)
        errors: dict[str, str] = {}
        if not item.answerable or answer.declined or not answer.passages:
            return scores, errors
        sample = ragas_sample(item, answer)
        for name, metric in self.metrics.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    value = float(metric.single_turn_score(sample))
            except Exception as exc:  # noqa: BLE001 - a judge failure leaves it unscored
                errors[name] = f"{type(exc).__name__}: {exc}"[:300]
                value = float("nan")
            scores[name] = None if value != value else value
        return scores, errors
