"""Embedded backend: Qdrant Edge (the Qdrant engine in-process), one shard per tenant.

Shards live under ``index_dir/<prefix>_<tenant>``. Edge is single-process: it locks
each shard's write-ahead log, and this store also holds an advisory lock on the
whole ``index_dir`` for its lifetime, so a second process (or a second store
object) fails at once with `IndexLockedError` instead of half-opening tenants.

Edge does not build indexes in the background: call `EdgeStore.optimize` after a
bulk load so that queries use HNSW and payload indexes rather than full scans.
Fusion of the dense and sparse prefetches is done by the engine (Query API
``Fusion.Rrf`` / ``Fusion.Dbsf``), as on a Qdrant server.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe
import structlog

from citewise.core.errors import ConfigError, IndexLockedError, VectorIndexError
from citewise.core.schemas import Chunk, ScoredChunk, SparseVector
from citewise.core.tenancy import validate_tenant_id
from citewise.retrieval.store._locks import DirectoryLock, ReadWriteLock
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

UPSERT_BATCH = 512
"""Points per Edge update operation."""
SCROLL_PAGE = 2048
"""Points per scroll request when counting documents."""

_CONFIG_FILE = "edge_config.json"


def _edge_error(exc: Exception, action: str, path: Path) -> VectorIndexError:
    """Map an Edge exception (Edge raises plain `Exception`) onto Citewise's errors."""
    message = str(exc)
    if "WouldBlock" in message:
        return IndexLockedError(
            f"cannot {action}: the Qdrant Edge shard at {path} is open in another process"
        )
    return VectorIndexError(f"cannot {action} (Qdrant Edge shard at {path}): {message}")


def _index_params(kind: PayloadIndexKind) -> qe.KeywordIndexParams | qe.PayloadSchemaType:
    if kind == "tenant":
        return qe.KeywordIndexParams(is_tenant=True)
    if kind == "keyword":
        return qe.PayloadSchemaType.Keyword
    return qe.PayloadSchemaType.Integer


def _ensure_payload_indexes(shard: qe.EdgeShard) -> None:
    """Create the payload indexes a shard lacks.

    That is every index of a new shard, and on load those of a shard created before
    an index was added to `PAYLOAD_INDEXES` or interrupted while being created.
    """
    existing = shard.info().payload_schema
    missing = [field for field in PAYLOAD_INDEXES if field not in existing]
    for field in missing:
        shard.update(
            qe.UpdateOperation.create_field_index(field, _index_params(PAYLOAD_INDEXES[field]))
        )
    if missing:
        shard.flush()


def _scope(tenant_id: str, acl_groups: Sequence[str], doc_ids: Sequence[str] | None) -> qe.Filter:
    """The filter of every query: tenant, visible ACL groups, optional documents."""
    must: list[qe.ConditionType] = [
        qe.FieldCondition("tenant_id", match=qe.MatchValue(tenant_id)),
        qe.FieldCondition("acl_groups", match=qe.MatchAny(list(acl_groups))),
    ]
    if doc_ids is not None:
        must.append(qe.FieldCondition("doc_id", match=qe.MatchAny(list(doc_ids))))
    return qe.Filter(must=must)


def _to_edge_sparse(vector: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(list(vector.indices), list(vector.values))


def _scored(points: list[qe.ScoredPoint], limit: int) -> list[ScoredChunk]:
    hits = [ScoredChunk(chunk=chunk_from_payload(p.payload), score=p.score) for p in points]
    return ranked(hits, limit)


class EdgeStore:
    """`VectorStore` on Qdrant Edge shards; thread-safe, one instance per process.

    Args:
        index_dir: Directory holding one shard directory per tenant.
        schema: Vector names, dimensions and naming of namespaces.
        indexing_threshold_kb: Segments larger than this (KB of vectors) get an HNSW
            index when optimized; None keeps Qdrant's default (10,000 KB, about 6,500
            384-d vectors), below which a full scan is as fast. Applies to new shards.

    Raises:
        ConfigError: ``schema.tenancy`` is ``shared`` (a server-only mode: Edge keeps
            one shard per tenant).
        IndexLockedError: Another process (or `EdgeStore`) already owns ``index_dir``.
    """

    def __init__(
        self, index_dir: Path, schema: StoreSchema, *, indexing_threshold_kb: int | None = None
    ) -> None:
        if schema.tenancy != "collection":
            raise ConfigError(
                "the Qdrant Edge backend keeps a shard per tenant: "
                "tenancy='shared' needs index.backend='server'"
            )
        self.index_dir = Path(index_dir)
        self.schema = schema
        self._indexing_threshold_kb = indexing_threshold_kb
        self._dir_lock = DirectoryLock(self.index_dir)
        self._dir_lock.acquire()
        self._shards: dict[str, qe.EdgeShard] = {}
        self._open_lock = threading.Lock()
        self._rw = ReadWriteLock()
        self._closed = False
        log.info("edge_store_opened", index_dir=str(self.index_dir))

    # -- namespaces ---------------------------------------------------------------

    def collection_name(self, tenant_id: str) -> str:
        """Namespace name of a tenant, also its shard directory's name."""
        return self.schema.collection_name(tenant_id)

    def _path(self, tenant_id: str) -> Path:
        return self.index_dir / self.collection_name(tenant_id)

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={
                self.schema.dense_vector: qe.EdgeVectorParams(
                    size=self.schema.dimensions, distance=qe.Distance.Cosine
                )
            },
            sparse_vectors={
                self.schema.sparse_vector: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)
            },
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb),
        )

    def _shard(self, tenant_id: str, *, create: bool) -> qe.EdgeShard | None:
        """The tenant's open shard, loading or creating it on first use.

        Call with the read (or write) lock held. Returns None when the shard does
        not exist and ``create`` is false.
        """
        if self._closed:
            raise VectorIndexError("the vector store is closed")
        path = self._path(tenant_id)
        with self._open_lock:
            shard = self._shards.get(tenant_id)
            if shard is not None:
                return shard
            if (path / _CONFIG_FILE).is_file():
                action = "open the index"
                try:
                    shard = qe.EdgeShard.load(str(path))
                except Exception as exc:
                    raise _edge_error(exc, action, path) from exc
            elif create:
                action = "create the index"
                try:
                    shard = qe.EdgeShard.create(str(path), self._config())
                except Exception as exc:
                    raise _edge_error(exc, action, path) from exc
                log.info("namespace_created", backend="edge", path=str(path))
            else:
                return None
            try:
                _ensure_payload_indexes(shard)
            except Exception as exc:
                shard.close()
                raise _edge_error(exc, action, path) from exc
            self._shards[tenant_id] = shard
            return shard

    def ensure_namespace(self, tenant_id: str) -> None:
        """Create the tenant's shard (vectors, payload indexes) if it does not exist."""
        with self._rw.read():
            self._shard(tenant_id, create=True)

    def drop_namespace(self, tenant_id: str) -> None:
        """Close the tenant's shard and delete its directory."""
        path = self._path(tenant_id)
        with self._rw.write():
            if self._closed:
                raise VectorIndexError("the vector store is closed")
            with self._open_lock:
                shard = self._shards.pop(tenant_id, None)
            if shard is not None:
                shard.close()
            if path.exists():
                shutil.rmtree(path)
                log.info("namespace_dropped", backend="edge", path=str(path))

    # -- writes ---------------------------------------------------------------------

    def upsert(
        self,
        tenant_id: str,
        chunks: Sequence[Chunk],
        dense: Sequence[Sequence[float]],
        sparse: Sequence[SparseVector],
    ) -> None:
        """Insert or replace chunks (point id = ``chunk.point_id``); creates the shard."""
        check_upsert(tenant_id, chunks, dense, sparse, self.schema.dimensions)
        if not chunks:
            return
        with self._rw.read():
            shard = self._shard(tenant_id, create=True)
            assert shard is not None
            for start in range(0, len(chunks), UPSERT_BATCH):
                points = [
                    qe.Point(
                        chunk.point_id,
                        {
                            self.schema.dense_vector: as_floats(vector),
                            self.schema.sparse_vector: _to_edge_sparse(terms),
                        },
                        chunk_payload(chunk),
                    )
                    for chunk, vector, terms in zip(
                        chunks[start : start + UPSERT_BATCH],
                        dense[start : start + UPSERT_BATCH],
                        sparse[start : start + UPSERT_BATCH],
                        strict=True,
                    )
                ]
                try:
                    shard.update(qe.UpdateOperation.upsert_points(points))
                except Exception as exc:
                    raise _edge_error(exc, "upsert", self._path(tenant_id)) from exc

    def delete_document(
        self, tenant_id: str, doc_id: str, *, except_version: int | None = None
    ) -> None:
        """Delete a document's points, or all of them but ``except_version``'s."""
        must: list[qe.ConditionType] = [
            qe.FieldCondition("tenant_id", match=qe.MatchValue(tenant_id)),
            qe.FieldCondition("doc_id", match=qe.MatchValue(doc_id)),
        ]
        must_not: list[qe.ConditionType] | None = (
            [qe.FieldCondition("version", match=qe.MatchValue(except_version))]
            if except_version is not None
            else None
        )
        with self._rw.read():
            shard = self._shard(tenant_id, create=False)
            if shard is None:
                return
            try:
                shard.update(
                    qe.UpdateOperation.delete_points_by_filter(
                        qe.Filter(must=must, must_not=must_not)
                    )
                )
            except Exception as exc:
                raise _edge_error(exc, "delete", self._path(tenant_id)) from exc

    def optimize(self, tenant_id: str) -> None:
        """Run Edge's segment optimizers (HNSW, payload indexes); blocks until done."""
        with self._rw.read():
            shard = self._shard(tenant_id, create=False)
            if shard is None:
                return
            started = time.perf_counter()
            try:
                changed = shard.optimize()
            except Exception as exc:
                raise _edge_error(exc, "optimize", self._path(tenant_id)) from exc
            log.info(
                "namespace_optimized",
                backend="edge",
                tenant_id=tenant_id,
                changed=changed,
                seconds=round(time.perf_counter() - started, 3),
            )

    # -- reads ----------------------------------------------------------------------

    def _query(self, tenant_id: str, request: qe.QueryRequest, limit: int) -> list[ScoredChunk]:
        with self._rw.read():
            shard = self._shard(tenant_id, create=False)
            if shard is None:
                return []
            try:
                points = shard.query(request)
            except Exception as exc:
                raise _edge_error(exc, "query", self._path(tenant_id)) from exc
        return _scored(points, limit)

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
        """Dense and sparse prefetches fused by Edge (RRF with ``schema.rrf_k``, or DBSF).

        A sparse query without terms contributes no prefetch.
        """
        check_query(dense, limit, self.schema.dimensions, (prefetch_dense, prefetch_sparse))
        validate_tenant_id(tenant_id)
        if matches_nothing(acl_groups, doc_ids):
            return []
        scope = _scope(tenant_id, acl_groups, doc_ids)
        prefetches = [
            qe.Prefetch(
                limit=prefetch_dense,
                query=qe.Query.Nearest(as_floats(dense), using=self.schema.dense_vector),
                filter=scope,
            )
        ]
        if sparse.indices:
            prefetches.append(
                qe.Prefetch(
                    limit=prefetch_sparse,
                    query=qe.Query.Nearest(
                        _to_edge_sparse(sparse), using=self.schema.sparse_vector
                    ),
                    filter=scope,
                )
            )
        # The stubs type fusion queries as `Fusion`; the constructors are its nested classes.
        method: Any = qe.Fusion.Rrf(k=self.schema.rrf_k) if fusion == "rrf" else qe.Fusion.Dbsf()
        request = qe.QueryRequest(
            limit=fused_fetch_limit(limit, prefetch_dense, prefetch_sparse),
            prefetches=prefetches,
            query=method,
            filter=scope,
            with_payload=True,
        )
        return self._query(tenant_id, request, limit)

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
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(as_floats(dense), using=self.schema.dense_vector),
            filter=_scope(tenant_id, acl_groups, doc_ids),
            with_payload=True,
        )
        return self._query(tenant_id, request, limit)

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
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(_to_edge_sparse(sparse), using=self.schema.sparse_vector),
            filter=_scope(tenant_id, acl_groups, doc_ids),
            with_payload=True,
        )
        return self._query(tenant_id, request, limit)

    def count(self, tenant_id: str, *, doc_id: str | None = None) -> int:
        """Exact count of the tenant's points, optionally of one document."""
        must: list[qe.ConditionType] = [
            qe.FieldCondition("tenant_id", match=qe.MatchValue(tenant_id))
        ]
        if doc_id is not None:
            must.append(qe.FieldCondition("doc_id", match=qe.MatchValue(doc_id)))
        with self._rw.read():
            shard = self._shard(tenant_id, create=False)
            if shard is None:
                return 0
            try:
                return shard.count(qe.CountRequest(exact=True, filter=qe.Filter(must=must)))
            except Exception as exc:
                raise _edge_error(exc, "count", self._path(tenant_id)) from exc

    def _payloads(self, tenant_id: str, fields: list[str] | None) -> Iterator[dict[str, Any]]:
        """Every point's payload of the tenant (only `fields`; None: all), page by page."""
        validate_tenant_id(tenant_id)
        scope = qe.Filter(must=[qe.FieldCondition("tenant_id", match=qe.MatchValue(tenant_id))])
        selector: Any = True if fields is None else qe.PayloadSelector.Include(fields)
        with self._rw.read():
            shard = self._shard(tenant_id, create=False)
            if shard is None:
                return
            offset: Any = None
            while True:
                request = qe.ScrollRequest(
                    offset=offset,
                    limit=SCROLL_PAGE,
                    filter=scope,
                    with_payload=selector,
                    with_vector=False,
                )
                try:
                    records, offset = shard.scroll(request)
                except Exception as exc:
                    raise _edge_error(exc, "scroll", self._path(tenant_id)) from exc
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

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """Flush and close every shard, then release the directory lock (idempotent)."""
        with self._rw.write():
            if self._closed:
                return
            self._closed = True
            with self._open_lock:
                shards, self._shards = self._shards, {}
            for tenant_id, shard in shards.items():
                try:
                    shard.flush()
                    shard.close()
                except Exception as exc:  # keep closing the others
                    log.error("shard_close_failed", tenant_id=tenant_id, error=str(exc))
            self._dir_lock.release()
        log.info("edge_store_closed", index_dir=str(self.index_dir), shards=len(shards))
