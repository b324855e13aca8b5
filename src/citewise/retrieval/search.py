"""Hybrid retrieval: dense and BM25 prefetch fused in one Qdrant query, scoped to a principal."""

from __future__ import annotations

from typing import Literal

from citewise.core.models import Embedder
from citewise.core.schemas import ScoredChunk
from citewise.core.settings import RetrievalSettings
from citewise.core.tenancy import Principal
from citewise.retrieval.sparse import BM25Encoder
from citewise.retrieval.store.base import VectorStore

SearchMode = Literal["hybrid", "dense", "bm25"]


class Retriever:
    """Finds the passages a principal may read that best match a query.

    Args:
        settings: Prefetch depths, fusion constant and default depth.
        embedder: Dense query embedder.
        store: The vector store.
    """

    def __init__(self, settings: RetrievalSettings, *, embedder: Embedder, store: VectorStore):
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.encoder = BM25Encoder()

    def search(
        self,
        query: str,
        principal: Principal,
        *,
        top_k: int | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[ScoredChunk]:
        """Search the principal's tenant, filtered by the principal's ACL groups.

        Args:
            query: The (rewritten) question.
            principal: Who asks; fixes tenant and visible groups.
            top_k: Number of results (defaults to settings).
            mode: ``hybrid`` (fused), ``dense`` or ``bm25`` alone.

        Returns:
            Results, best first.
        """
        limit = top_k or self.settings.top_k
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
