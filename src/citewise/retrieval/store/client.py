"""Server backend: a Qdrant server (or cluster) through `qdrant-client`.

Two tenancy modes (``StoreSchema.tenancy``): a collection per tenant, or one
collection shared by every tenant (Qdrant's payload partitioning: a ``tenant_id``
keyword index with ``is_tenant=true``, HNSW built per tenant only with ``m=0,
payload_m=16``, BM25 IDF counted over the tenant's own points). Every read,
write and delete filters on ``tenant_id`` in both modes; point ids are uuid5 of
tenant, document, version and chunk, so tenants never share one.

The same code runs against ``QdrantClient(":memory:")``, which the contract tests
use; that local mode is for tests and demos only (it scans every point).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import structlog
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from citewise.core.errors import VectorIndexError
from citewise.core.schemas import Chunk, ScoredChunk, SparseVector
from citewise.core.tenancy import validate_tenant_id
from citewise.retrieval.store.base import (
    PAYLOAD_INDEXES,
    FusionMethod,
    PayloadIndexKind,
    StoreSchema,
    as_floats,
    check_query,
    check_upsert,
    chunk_from_payload,
    chunk_payload,
    fused_fetch_limit,
    matches_nothing,
    ranked,
    tally_versions,
)

log = structlog.get_logger(__name__)

UPSERT_BATCH = 256
SCROLL_PAGE = 2048
"""Points per upsert request."""


def _is_missing(exc: Exception) -> bool:
    """True when ``exc`` says the collection does not exist (server 404, or local mode)."""
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code == 404
    return isinstance(exc, ValueError) and "not found" in str(exc)


def _index_schema(kind: PayloadIndexKind) -> models.PayloadSchemaType | models.KeywordIndexParams:
    if kind == "tenant":
        return models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
    if kind == "keyword":
        return models.PayloadSchemaType.KEYWORD
    return models.PayloadSchemaType.INTEGER


SHARED_HNSW = models.HnswConfigDiff(m=0, payload_m=16)
"""HNSW of a shared collection: no global graph, a graph per tenant (``is_tenant`` field)."""


def _tenant(tenant_id: str) -> models.FieldCondition:
    return models.FieldCondition(key="tenant_id", match=models.MatchValue(value=tenant_id))


def _scope(
    tenant_id: str, acl_groups: Sequence[str], doc_ids: Sequence[str] | None
) -> models.Filter:
    """The filter of every query: tenant, visible ACL groups, optional documents."""
    must: list[models.Condition] = [
        _tenant(tenant_id),
        models.FieldCondition(key="acl_groups", match=models.MatchAny(any=list(acl_groups))),
    ]
    if doc_ids is not None:
        must.append(models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids))))
    return models.Filter(must=must)


def _to_sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


class QdrantClientStore:
    """`VectorStore` on a Qdrant server through an existing `QdrantClient`.

    Args:
        client: The client (``QdrantClient(url=...)``, or ``QdrantClient(":memory:")``
            in tests).
        schema: Vector names, dimensions, naming of collections and tenancy mode.
        owns_client: Close the client in `close`.
    """

    def __init__(
        self, client: QdrantClient, schema: StoreSchema, *, owns_client: bool = False
    ) -> None:
        self.client = client
        self.schema = schema
        self._owns_client = owns_client
        self.shared = schema.tenancy == "shared"

    def collection_name(self, tenant_id: str) -> str:
        """Collection of a tenant: its own, or the shared one (the id is validated)."""
        name = self.schema.collection_name(tenant_id)
        return self.schema.shared_name if self.shared else name

    def _sparse_params(self, tenant_id: str) -> models.SearchParams | None:
        """In a shared collection, BM25's IDF counted over the tenant's points only.

        Collection-wide statistics would let other tenants' documents change a
        tenant's scores (and hint at their vocabulary); needs Qdrant >= 1.19.
        """
        if not self.shared:
            return None
        corpus = models.Filter(must=[_tenant(tenant_id)])
        return models.SearchParams(idf=models.IdfCorpusParams(corpus=corpus))

    def ensure_namespace(self, tenant_id: str) -> None:
        """Create the tenant's collection (or the shared one) and payload indexes if missing.

        A 409 from a collection created concurrently by another replica is fine.
        """
        name = self.collection_name(tenant_id)
        try:
            if self.client.collection_exists(name):
                return
            self.client.create_collection(
                name,
                vectors_config={
                    self.schema.dense_vector: models.VectorParams(
                        size=self.schema.dimensions, distance=models.Distance.COSINE
                    )
                },
                sparse_vectors_config={
                    self.schema.sparse_vector: models.SparseVectorParams(
                        modifier=models.Modifier.IDF
                    )
                },
                shard_number=self.schema.shard_number,
                replication_factor=self.schema.replication_factor,
                hnsw_config=SHARED_HNSW if self.shared else None,
            )
            for field, kind in PAYLOAD_INDEXES.items():
                self.client.create_payload_index(
                    name, field, field_schema=_index_schema(kind), wait=True
                )
        except UnexpectedResponse as exc:
            if exc.status_code == 409:  # created concurrently by another replica
                return
            raise VectorIndexError(f"cannot create collection {name}: {exc}") from exc
        log.info("namespace_created", backend="qdrant-client", collection=name, shared=self.shared)

    def drop_namespace(self, tenant_id: str) -> None:
        """Delete the tenant's collection, or only its points from the shared collection."""
        name = self.collection_name(tenant_id)
        try:
            if self.shared:
                selector = models.FilterSelector(filter=models.Filter(must=[_tenant(tenant_id)]))
                self.client.delete(name, points_selector=selector, wait=True)
            else:
                self.client.delete_collection(name)
        except Exception as exc:
            if self.shared and _is_missing(exc):
                return
            raise VectorIndexError(f"cannot drop {tenant_id!r} from {name}: {exc}") from exc
        log.info("namespace_dropped", backend="qdrant-client", collection=name, tenant=tenant_id)

    def upsert(
        self,
        tenant_id: str,
        chunks: Sequence[Chunk],
        dense: Sequence[Sequence[float]],
        sparse: Sequence[SparseVector],
    ) -> None:
        """Insert or replace chunks (point id = ``chunk.point_id``); creates the collection."""
        check_upsert(tenant_id, chunks, dense, sparse, self.schema.dimensions)
        if not chunks:
            return
        self.ensure_namespace(tenant_id)
        name = self.collection_name(tenant_id)
        for start in range(0, len(chunks), UPSERT_BATCH):
            points = [
                models.PointStruct(
                    id=chunk.point_id,
                    vector={
                        self.schema.dense_vector: as_floats(vector),
                        self.schema.sparse_vector: _to_sparse(terms),
                    },
                    payload=chunk_payload(chunk),
                )
                for chunk, vector, terms in zip(
                    chunks[start : start + UPSERT_BATCH],
                    dense[start : start + UPSERT_BATCH],
                    sparse[start : start + UPSERT_BATCH],
                    strict=True,
                )
            ]
            try:
                self.client.upsert(name, points=points, wait=True)
            except Exception as exc:
                raise VectorIndexError(f"cannot upsert into {name}: {exc}") from exc

    def delete_document(
        self, tenant_id: str, doc_id: str, *, except_version: int | None = None
    ) -> None:
        """Delete a document's points, or all of them but ``except_version``'s."""
        name = self.collection_name(tenant_id)
        selector = models.Filter(
            must=[
                _tenant(tenant_id),
                models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id)),
            ],
            must_not=(
                [
                    models.FieldCondition(
                        key="version", match=models.MatchValue(value=except_version)
                    )
                ]
                if except_version is not None
                else None
            ),
        )
        try:
            self.client.delete(
                name, points_selector=models.FilterSelector(filter=selector), wait=True
            )
        except Exception as exc:
            if _is_missing(exc):
                return
            raise VectorIndexError(f"cannot delete from {name}: {exc}") from exc

    def optimize(self, tenant_id: str) -> None:
        """No-op: a Qdrant server optimizes its segments in the background."""
        self.collection_name(tenant_id)

    def _query(
        self,
        tenant_id: str,
        *,
        query: list[float] | models.SparseVector | models.Query,
        using: str | None,
        prefetch: list[models.Prefetch] | None,
        scope: models.Filter,
        limit: int,
        fetch: int | None = None,
        params: models.SearchParams | None = None,
    ) -> list[ScoredChunk]:
        name = self.collection_name(tenant_id)
        try:
            response = self.client.query_points(
                name,
                query=query,
                using=using,
                prefetch=prefetch,
                query_filter=scope,
                search_params=params,
                limit=fetch or limit,
                with_payload=True,
            )
        except Exception as exc:
            if _is_missing(exc):
                return []
            raise VectorIndexError(f"cannot query {name}: {exc}") from exc
        return ranked(
            [
                ScoredChunk(chunk=chunk_from_payload(point.payload), score=point.score)
                for point in response.points
            ],
            limit,
        )

    def hybrid_query(
        self,
        tenant_id: str,
        *,
        dense: Sequence[float],
        sparse: SparseVector,
        acl_groups: Sequence[str],
        limit: int,
        prefetch_dense: int,
        prefetch_sparse: int,
        fusion: FusionMethod = "rrf",
        doc_ids: Sequence[str] | None = None,
    ) -> list[ScoredChunk]:
        """Dense and sparse prefetches fused by the server (RRF with ``schema.rrf_k``, or DBSF).

        A sparse query without terms contributes no prefetch.
        """
        check_query(dense, limit, self.schema.dimensions, (prefetch_dense, prefetch_sparse))
        validate_tenant_id(tenant_id)
        if matches_nothing(acl_groups, doc_ids):
            return []
        scope = _scope(tenant_id, acl_groups, doc_ids)
        prefetch = [
            models.Prefetch(
                query=as_floats(dense),
                using=self.schema.dense_vector,
                filter=scope,
                limit=prefetch_dense,
            )
        ]
        if sparse.indices:
            prefetch.append(
                models.Prefetch(
                    query=_to_sparse(sparse),
                    using=self.schema.sparse_vector,
                    filter=scope,
                    params=self._sparse_params(tenant_id),
                    limit=prefetch_sparse,
                )
            )
        method: models.Query = (
            models.RrfQuery(rrf=models.Rrf(k=self.schema.rrf_k))
            if fusion == "rrf"
            else models.FusionQuery(fusion=models.Fusion.DBSF)
        )
        return self._query(
            tenant_id,
            query=method,
            using=None,
            prefetch=prefetch,
            scope=scope,
            limit=limit,
            fetch=fused_fetch_limit(limit, prefetch_dense, prefetch_sparse),
        )

    def dense_query(
        self,
        tenant_id: str,
        *,
        dense: Sequence[float],
        acl_groups: Sequence[str],
        limit: int,
        doc_ids: Sequence[str] | None = None,
    ) -> list[ScoredChunk]:
        """Nearest chunks by cosine similarity."""
        check_query(dense, limit, self.schema.dimensions)
        validate_tenant_id(tenant_id)
        if matches_nothing(acl_groups, doc_ids):
            return []
        return self._query(
            tenant_id,
            query=as_floats(dense),
            using=self.schema.dense_vector,
            prefetch=None,
            scope=_scope(tenant_id, acl_groups, doc_ids),
            limit=limit,
        )

    def sparse_query(
        self,
        tenant_id: str,
        *,
        sparse: SparseVector,
        acl_groups: Sequence[str],
        limit: int,
        doc_ids: Sequence[str] | None = None,
    ) -> list[ScoredChunk]:
        """Best chunks by BM25: stored term weights times query weights times IDF."""
        check_query(None, limit, self.schema.dimensions)
        validate_tenant_id(tenant_id)
        if matches_nothing(acl_groups, doc_ids) or not sparse.indices:
            return []
        return self._query(
            tenant_id,
            query=_to_sparse(sparse),
            using=self.schema.sparse_vector,
            prefetch=None,
            scope=_scope(tenant_id, acl_groups, doc_ids),
            limit=limit,
            params=self._sparse_params(tenant_id),
        )

    def count(self, tenant_id: str, *, doc_id: str | None = None) -> int:
        """Exact count of the tenant's points, optionally of one document."""
        name = self.collection_name(tenant_id)
        must: list[models.Condition] = [_tenant(tenant_id)]
        if doc_id is not None:
            must.append(models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id)))
        try:
            return self.client.count(name, count_filter=models.Filter(must=must), exact=True).count
        except Exception as exc:
            if _is_missing(exc):
                return 0
            raise VectorIndexError(f"cannot count {name}: {exc}") from exc

    def _payloads(self, tenant_id: str, fields: list[str] | None) -> Iterator[dict[str, Any]]:
        """Every point's payload of the tenant (only `fields`; None: all), page by page."""
        name = self.collection_name(tenant_id)
        scope = models.Filter(must=[_tenant(tenant_id)])
        offset: Any = None
        while True:
            try:
                records, offset = self.client.scroll(
                    name,
                    scroll_filter=scope,
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=True if fields is None else fields,
                    with_vectors=False,
                )
            except Exception as exc:
                if _is_missing(exc):
                    return
                raise VectorIndexError(f"cannot scroll {name}: {exc}") from exc
            yield from (dict(r.payload or {}) for r in records)
            if offset is None:
                return

    def document_counts(self, tenant_id: str) -> dict[str, dict[int, int]]:
        """Points per document and version, read by scrolling ``doc_id`` and ``version``."""
        counts: dict[str, dict[int, int]] = {}
        tally_versions(counts, self._payloads(tenant_id, ["doc_id", "version"]))
        return counts

    def chunks(self, tenant_id: str) -> list[Chunk]:
        """Every chunk of the tenant, read by scrolling payloads (no vectors)."""
        return [chunk_from_payload(payload) for payload in self._payloads(tenant_id, None)]

    def close(self) -> None:
        """Close the client if this store owns it."""
        if self._owns_client:
            self.client.close()
