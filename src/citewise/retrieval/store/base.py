"""The vector store interface shared by the Qdrant Edge and qdrant-client backends.

A tenant's chunks live in their own namespace (a Qdrant collection, or an Edge
shard directory) named ``<prefix>_<tenant>``, or, on a Qdrant server with
``tenancy="shared"``, every tenant's chunks share one collection. Every point
also carries its ``tenant_id`` and ``acl_groups`` in the payload and every
read, write and delete filters on the tenant (queries on both), so a mistake
in namespace routing cannot leak another tenant's or group's passages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, runtime_checkable

from citewise.core.errors import TenantError
from citewise.core.schemas import Chunk, ScoredChunk, SparseVector
from citewise.core.tenancy import validate_tenant_id

if TYPE_CHECKING:
    from citewise.core.settings import Settings

FusionMethod = Literal["rrf", "dbsf"]
"""Server-side fusion of the dense and sparse prefetches."""

PayloadIndexKind = Literal["tenant", "keyword", "integer"]

Tenancy = Literal["collection", "shared"]
"""A namespace per tenant, or one collection shared by every tenant (server only)."""

PAYLOAD_INDEXES: dict[str, PayloadIndexKind] = {
    "tenant_id": "tenant",
    "doc_id": "keyword",
    "acl_groups": "keyword",
    "version": "integer",
}
"""Payload fields indexed in every namespace. ``tenant`` is a keyword index with
``is_tenant=True``, which keeps the door open to many tenants per collection."""


@dataclass(frozen=True)
class StoreSchema:
    """What every namespace looks like: naming, vector names and sizes, fusion constant.

    Attributes:
        collection_prefix: Namespace names are ``f"{collection_prefix}_{tenant_id}"``.
        dense_vector: Name of the dense (cosine) vector.
        sparse_vector: Name of the sparse BM25 vector (IDF modifier on).
        dimensions: Size of the dense vectors.
        rrf_k: The ``k`` of reciprocal rank fusion, identical on both backends.
        shard_number: Shards of a new server collection (None: the server's default).
        replication_factor: Copies of each shard in a Qdrant cluster (None: default).
        tenancy: ``collection`` (a namespace per tenant) or ``shared`` (server backend
            only: one collection for every tenant, partitioned by ``tenant_id``).
        shared_collection: Name of the shared collection (None: ``<prefix>_shared``).
    """

    collection_prefix: str = "citewise"
    dense_vector: str = "dense"
    sparse_vector: str = "bm25"
    dimensions: int = 384
    rrf_k: int = 60
    shard_number: int | None = None
    replication_factor: int | None = None
    tenancy: Tenancy = "collection"
    shared_collection: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreSchema:
        """Build the schema from the application settings."""
        return cls(
            collection_prefix=settings.index.collection_prefix,
            dense_vector=settings.index.dense_vector,
            sparse_vector=settings.index.sparse_vector,
            dimensions=settings.embedding.dimensions,
            rrf_k=settings.retrieval.rrf_k,
            shard_number=settings.index.shard_number,
            replication_factor=settings.index.replication_factor,
            tenancy=settings.index.tenancy,
            shared_collection=settings.index.shared_collection,
        )

    def collection_name(self, tenant_id: str) -> str:
        """Namespace name of a tenant; raises `TenantError` on an invalid id."""
        return f"{self.collection_prefix}_{validate_tenant_id(tenant_id)}"

    @property
    def shared_name(self) -> str:
        """Name of the one collection of ``tenancy="shared"``."""
        return self.shared_collection or f"{self.collection_prefix}_shared"


@runtime_checkable
class VectorStore(Protocol):
    """Per-tenant hybrid (dense + BM25 sparse) vector index.

    Every query is filtered on ``tenant_id == tenant`` and on ``acl_groups``
    matching any of the caller's groups (plus ``doc_ids`` when given). Querying
    a tenant that has no namespace yet returns ``[]``.
    """

    def collection_name(self, tenant_id: str) -> str:
        """Namespace (collection or shard directory) name of a tenant."""
        ...

    def ensure_namespace(self, tenant_id: str) -> None:
        """Create the tenant's namespace with vectors and payload indexes if missing."""
        ...

    def upsert(
        self,
        tenant_id: str,
        chunks: Sequence[Chunk],
        dense: Sequence[Sequence[float]],
        sparse: Sequence[SparseVector],
    ) -> None:
        """Insert or replace chunks under their deterministic point ids (idempotent)."""
        ...

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
        """One query: dense and sparse prefetches fused by the engine."""
        ...

    def dense_query(
        self,
        tenant_id: str,
        *,
        dense: Sequence[float],
        acl_groups: Sequence[str],
        limit: int,
        doc_ids: Sequence[str] | None = None,
    ) -> list[ScoredChunk]:
        """Nearest chunks by cosine similarity of the dense vector."""
        ...

    def sparse_query(
        self,
        tenant_id: str,
        *,
        sparse: SparseVector,
        acl_groups: Sequence[str],
        limit: int,
        doc_ids: Sequence[str] | None = None,
    ) -> list[ScoredChunk]:
        """Best chunks by BM25 (sparse dot product with engine-side IDF)."""
        ...

    def delete_document(
        self, tenant_id: str, doc_id: str, *, except_version: int | None = None
    ) -> None:
        """Delete every point of a document, or all but one version of it."""
        ...

    def count(self, tenant_id: str, *, doc_id: str | None = None) -> int:
        """Exact number of the tenant's points (of one document when given)."""
        ...

    def document_counts(self, tenant_id: str) -> dict[str, dict[int, int]]:
        """Points per document and version: ``{doc_id: {version: count}}`` (exact)."""
        ...

    def chunks(self, tenant_id: str) -> list[Chunk]:
        """Every chunk of the tenant (payloads, no vectors), in point-id order."""
        ...

    def optimize(self, tenant_id: str) -> None:
        """Build indexes after a bulk load (a no-op where the engine does it itself)."""
        ...

    def drop_namespace(self, tenant_id: str) -> None:
        """Delete the tenant's namespace and everything in it."""
        ...

    def close(self) -> None:
        """Flush and release every resource; the store is unusable afterwards."""
        ...


def chunk_payload(chunk: Chunk) -> dict[str, Any]:
    """The payload stored with a chunk's point: every field of `Chunk`."""
    return chunk.model_dump(mode="json")


def chunk_from_payload(payload: dict[str, Any] | None) -> Chunk:
    """Rebuild a `Chunk` from a point's payload."""
    return Chunk.model_validate(payload or {})


def check_upsert(
    tenant_id: str,
    chunks: Sequence[Chunk],
    dense: Sequence[Sequence[float]],
    sparse: Sequence[SparseVector],
    dimensions: int,
) -> None:
    """Validate an upsert batch before it reaches the engine.

    Raises:
        TenantError: A chunk belongs to another tenant than the namespace.
        ValueError: The three sequences differ in length, a dense vector has the
            wrong size, or a sparse vector's indices and values differ in length.
    """
    if not len(chunks) == len(dense) == len(sparse):
        raise ValueError(
            f"upsert needs one dense and one sparse vector per chunk: got {len(chunks)} chunks, "
            f"{len(dense)} dense, {len(sparse)} sparse"
        )
    for chunk, vector, terms in zip(chunks, dense, sparse, strict=True):
        if chunk.tenant_id != tenant_id:
            raise TenantError(
                f"chunk {chunk.doc_id}#{chunk.chunk_index} belongs to tenant "
                f"{chunk.tenant_id!r}, not {tenant_id!r}"
            )
        if len(vector) != dimensions:
            raise ValueError(f"dense vector has {len(vector)} dimensions, expected {dimensions}")
        if len(terms.indices) != len(terms.values):
            raise ValueError("sparse vector indices and values differ in length")


def check_query(
    dense: Sequence[float] | None, limit: int, dimensions: int, prefetch: Sequence[int] = ()
) -> None:
    """Validate query arguments shared by the backends.

    Raises:
        ValueError: ``limit`` or a prefetch depth is below 1, or the dense vector has
            the wrong size.
    """
    if limit < 1 or any(depth < 1 for depth in prefetch):
        raise ValueError(f"limit and prefetch depths must be at least 1, got {limit}, {prefetch}")
    if dense is not None and len(dense) != dimensions:
        raise ValueError(f"dense query has {len(dense)} dimensions, expected {dimensions}")


TIE_MARGIN = 8
"""Extra fused results fetched so that ties at the cut-off are broken by `ranked`."""


def fused_fetch_limit(limit: int, prefetch_dense: int, prefetch_sparse: int) -> int:
    """How many fused results to ask the engine for to return ``limit`` of them.

    Fusion scores tie often (RRF gives ranks (1, 4) the same score as (4, 1)) and
    the engines break ties arbitrarily, also at the cut-off. Asking for a few more
    and cutting after `ranked` makes hybrid results repeatable and identical
    across backends, for the cost of a few more payloads read.
    """
    return max(limit, min(limit + TIE_MARGIN, prefetch_dense + prefetch_sparse))


def ranked(hits: list[ScoredChunk], limit: int | None = None) -> list[ScoredChunk]:
    """Order hits by score, ties broken by point id, and keep the first ``limit``."""
    ordered = sorted(hits, key=lambda hit: (-hit.score, hit.chunk.point_id))
    return ordered if limit is None else ordered[:limit]


def as_floats(vector: Sequence[float]) -> list[float]:
    """A dense vector as a list of Python floats, without copying one that already is.

    Accepts lists, tuples and NumPy arrays (``tolist`` converts those in C).
    """
    if isinstance(vector, list):
        return vector
    tolist = getattr(vector, "tolist", None)
    if tolist is not None:
        return cast(list[float], tolist())
    return [float(x) for x in vector]


def matches_nothing(acl_groups: Sequence[str], doc_ids: Sequence[str] | None) -> bool:
    """True when the filter can match no point (no visible group, or an empty doc list)."""
    return not acl_groups or (doc_ids is not None and not doc_ids)


def tally_versions(counts: dict[str, dict[int, int]], payloads: Iterable[dict[str, Any]]) -> None:
    """Add one point per payload to `counts[doc_id][version]` (shared by both backends)."""
    for payload in payloads:
        per_doc = counts.setdefault(str(payload.get("doc_id")), {})
        version = int(str(payload.get("version", 0)))
        per_doc[version] = per_doc.get(version, 0) + 1
