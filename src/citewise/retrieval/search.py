"""Hybrid retrieval: dense and BM25 prefetch fused in one Qdrant query, scoped to a principal.

With a reranker configured, the fused candidates are re-scored by it (``hybrid+rerank``).
"""

from __future__ import annotations

from typing import Literal

from citewise.core.errors import ConfigError
from citewise.core.models import Embedder
from citewise.core.schemas import ScoredChunk
from citewise.core.settings import RetrievalSettings
from citewise.core.tenancy import Principal
from citewise.retrieval.rerank import Reranker, rerank_hits
from citewise.retrieval.sparse import BM25Encoder
from citewise.retrieval.store.base import VectorStore

SearchMode = Literal["hybrid", "dense", "bm25", "hybrid+rerank"]


class Retriever:
    """Finds the passages a principal may read that best match a query.

    Args:
        settings: Prefetch depths, fusion constant and default depth.
        embedder: Dense query embedder.
        store: The vector store.
        reranker: Optional second stage for ``hybrid+rerank``.
    """

    def __init__(
        self,
        settings: RetrievalSettings,
        *,
        embedder: Embedder,
        store: VectorStore,
        reranker: Reranker | None = None,
    ):
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.reranker = reranker
        self.encoder = BM25Encoder()

    @property
    def default_mode(self) -> SearchMode:
        """``hybrid+rerank`` when a reranker is configured, else ``hybrid``."""
        return "hybrid+rerank" if self.reranker is not None else "hybrid"

    def search(
        self,
        query: str,
        principal: Principal,
        *,
        top_k: int | None = None,
        mode: SearchMode | None = None,
    ) -> list[ScoredChunk]:
        """Search the principal's tenant, filtered by the principal's ACL groups.

        Args:
            query: The (rewritten) question.
            principal: Who asks; fixes tenant and visible groups.
            top_k: Number of results (defaults to settings).
            mode: ``hybrid`` (fused), ``dense`` or ``bm25`` alone, or ``hybrid+rerank``
                (defaults to `default_mode`).

        Returns:
            Results, best first.

        Raises:
            ConfigError: ``hybrid+rerank`` without a configured reranker.
        """
        mode = mode or self.default_mode
        limit = top_k or self.settings.top_k
        if mode == "hybrid+rerank":
            if self.reranker is None:
                raise ConfigError("hybrid+rerank needs retrieval.rerank.backend to be set")
            depth = max(limit, self.settings.rerank.depth)
            return self.rerank(
                query, self.search(query, principal, top_k=depth, mode="hybrid"), limit
            )
        tenant, groups = principal.tenant_id, principal.visible_groups
        if mode == "bm25":
            return self.store.sparse_query(
                tenant, sparse=self.encoder.encode_query(query), acl_groups=groups, limit=limit
            )
        dense = self.embedder.embed_query(query).tolist()
        if mode == "dense":
            return self.store.dense_query(tenant, dense=dense, acl_groups=groups, limit=limit)
        return self.store.hybrid_query(
            tenant,
            dense=dense,
            sparse=self.encoder.encode_query(query),
            acl_groups=groups,
            limit=limit,
            prefetch_dense=max(self.settings.prefetch_dense, limit),
            prefetch_sparse=max(self.settings.prefetch_sparse, limit),
            fusion=self.settings.fusion,
        )

    def rerank(self, query: str, hits: list[ScoredChunk], top_k: int) -> list[ScoredChunk]:
        """Re-score the first-stage `hits` with the reranker (if any); keep the best `top_k`."""
        if self.reranker is None:
            return hits[:top_k]
        rerank = self.settings.rerank
        ranked = rerank_hits(query, hits, self.reranker, depth=rerank.depth, blend=rerank.blend)
        return ranked[:top_k]
