"""Second-stage reranking: a cross-encoder or an LLM judge re-scores the fused candidates."""

from citewise.retrieval.rerank.base import Reranker, passage_text, rerank_hits
from citewise.retrieval.rerank.factory import build_reranker, resolve_reranker_model

__all__ = ["Reranker", "build_reranker", "passage_text", "rerank_hits", "resolve_reranker_model"]
