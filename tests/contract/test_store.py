"""Contract suite of the vector store, run against Qdrant Edge and qdrant-client alike.

One test class, parametrized over the backends (Edge in a temporary directory,
qdrant-client over `QdrantClient(":memory:")` with a collection per tenant, and the
same with one collection shared by every tenant), a congruence test that runs the
same calls on all and compares rankings, Edge-only tests (persistence, locking,
optimize, threads) and shared-collection tests (isolation, collection settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient, models

from citewise.core.errors import ConfigError, IndexLockedError, TenantError, VectorIndexError
from citewise.core.schemas import Chunk, ScoredChunk, SparseVector
from citewise.core.settings import load_settings
from citewise.retrieval.store import build_store
from citewise.retrieval.store.base import (
    PAYLOAD_INDEXES,
    FusionMethod,
    StoreSchema,
    VectorStore,
    chunk_payload,
)
from citewise.retrieval.store.client import QdrantClientStore
from citewise.retrieval.store.edge import EdgeStore

SCHEMA = StoreSchema(collection_prefix="test", dimensions=16, rrf_k=60)
SHARED_SCHEMA = replace(SCHEMA, tenancy="shared")
BACKENDS = ["edge", "client", "server-shared"]
UNIQUE_TERM = 1000
"""Chunk ``i`` of a corpus carries the term ``UNIQUE_TERM + i`` and no other chunk does."""


@dataclass
class Corpus:
    """Chunks with their dense and sparse vectors, in the same order."""

    chunks: list[Chunk]
    dense: list[list[float]]
    sparse: list[SparseVector]

    def index_of(self, doc_id: str, chunk_index: int) -> int:
        return next(
            i
            for i, chunk in enumerate(self.chunks)
            if chunk.doc_id == doc_id and chunk.chunk_index == chunk_index
        )


def unit_vectors(count: int, dim: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [[float(x) for x in row] for row in vectors]


def make_corpus(
    tenant_id: str,
    docs: dict[str, tuple[int, list[str]]],
    *,
    version: int = 1,
    seed: int = 7,
    shared_terms: int = 0,
) -> Corpus:
    """Build a corpus: ``docs`` maps doc_id to (number of chunks, acl groups).

    Every chunk gets a unique term (weight 1.0); with ``shared_terms`` it also gets
    a few of that many shared terms with distinct random weights.
    """
    chunks = [
        Chunk(
            tenant_id=tenant_id,
            doc_id=doc_id,
            version=version,
            chunk_index=i,
            text=f"{doc_id} chunk {i} of {tenant_id}",
            title=doc_id.upper(),
            section="intro",
            page=i + 1,
            acl_groups=groups,
            source=f"{doc_id}.txt",
        )
        for doc_id, (count, groups) in docs.items()
        for i in range(count)
    ]
    rng = np.random.default_rng(seed + 1)
    sparse = []
    for n in range(len(chunks)):
        terms = {UNIQUE_TERM + n: 1.0}
        if shared_terms:
            for term in rng.choice(shared_terms, size=min(4, shared_terms), replace=False):
                terms[int(term)] = float(rng.uniform(0.5, 3.0))
        indices = sorted(terms)
        sparse.append(SparseVector(indices=indices, values=[terms[i] for i in indices]))
    return Corpus(chunks, unit_vectors(len(chunks), SCHEMA.dimensions, seed), sparse)


BASE_DOCS: dict[str, tuple[int, list[str]]] = {
    "d1": (3, ["*"]),
    "d2": (2, ["hr"]),
    "d3": (3, ["*", "eng"]),
}


def open_store(backend: str, index_dir: Path) -> VectorStore:
    if backend == "edge":
        return EdgeStore(index_dir, SCHEMA)
    schema = SHARED_SCHEMA if backend == "server-shared" else SCHEMA
    return QdrantClientStore(QdrantClient(location=":memory:"), schema, owns_client=True)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    opened = open_store(request.param, tmp_path / "index")
    yield opened
    opened.close()


@pytest.fixture
def corpus() -> Corpus:
    return make_corpus("acme", BASE_DOCS, shared_terms=6)


def insert_raw(
    store: VectorStore, namespace: str, chunk: Chunk, dense: list[float], sparse: SparseVector
) -> None:
    """Write a point straight through the engine, bypassing the store's tenant check.

    Simulates a routing bug: a point whose payload names another tenant than the
    namespace it sits in.
    """
    vectors = {SCHEMA.dense_vector: dense}
    if isinstance(store, EdgeStore):
        shard = store._shard(namespace, create=True)
        assert shard is not None
        point = qe.Point(
            chunk.point_id,
            {**vectors, SCHEMA.sparse_vector: qe.SparseVector(sparse.indices, sparse.values)},
            chunk_payload(chunk),
        )
        shard.update(qe.UpdateOperation.upsert_points([point]))
    else:
        assert isinstance(store, QdrantClientStore)
        store.ensure_namespace(namespace)
        sparse_vector = models.SparseVector(indices=sparse.indices, values=sparse.values)
        store.client.upsert(
            store.collection_name(namespace),
            points=[
                models.PointStruct(
                    id=chunk.point_id,
                    vector={**vectors, SCHEMA.sparse_vector: sparse_vector},
                    payload=chunk_payload(chunk),
                )
            ],
        )


def describe(store: VectorStore, tenant_id: str) -> dict[str, object]:
    """The namespace's schema as each engine reports it."""
    if isinstance(store, EdgeStore):
        path = store.index_dir / store.collection_name(tenant_id)
        config = json.loads((path / "edge_config.json").read_text())
        shard = store._shard(tenant_id, create=False)
        assert shard is not None and path.is_dir()
        schema = shard.info().payload_schema
        tenant_params = schema["tenant_id"].params
        return {
            "dense": (config["vectors"]["dense"]["size"], config["vectors"]["dense"]["distance"]),
            "sparse_modifier": config["sparse_vectors"]["bm25"]["modifier"],
            "payload_indexes": set(schema),
            "is_tenant": getattr(tenant_params, "is_tenant", None),
        }
    assert isinstance(store, QdrantClientStore)
    info = store.client.get_collection(store.collection_name(tenant_id))
    vectors = info.config.params.vectors
    sparse = info.config.params.sparse_vectors
    assert isinstance(vectors, dict) and sparse is not None
    modifier = sparse["bm25"].modifier
    return {
        "dense": (vectors["dense"].size, vectors["dense"].distance.value),
        "sparse_modifier": modifier.value if modifier else None,
        # local mode keeps no payload indexes (a server does)
        "payload_indexes": set(info.payload_schema) or None,
        "is_tenant": None,
    }


def ids(hits: list[ScoredChunk]) -> list[str]:
    return [hit.chunk.point_id for hit in hits]


def fill(store: VectorStore, corpus: Corpus, tenant_id: str = "acme") -> None:
    store.upsert(tenant_id, corpus.chunks, corpus.dense, corpus.sparse)


def unique_term_query(n: int) -> SparseVector:
    return SparseVector(indices=[UNIQUE_TERM + n], values=[1.0])


EVERYONE = ["*"]
ALL_GROUPS = ["*", "hr", "eng"]


class TestVectorStoreContract:
    """The behaviour every `VectorStore` backend must share."""

    def test_is_a_vector_store(self, store: VectorStore) -> None:
        assert isinstance(store, VectorStore)
        shared = isinstance(store, QdrantClientStore) and store.shared
        assert store.collection_name("acme") == ("test_shared" if shared else "test_acme")

    def test_namespace_schema(self, store: VectorStore) -> None:
        store.ensure_namespace("acme")
        schema = describe(store, "acme")
        assert schema["dense"] == (SCHEMA.dimensions, "Cosine")
        assert schema["sparse_modifier"] == "idf"
        if isinstance(store, EdgeStore):
            assert schema["payload_indexes"] == {"tenant_id", "doc_id", "acl_groups", "version"}
            assert schema["is_tenant"] is True

    def test_upsert_and_count(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        assert store.count("acme") == 8
        assert store.count("acme", doc_id="d1") == 3
        assert store.count("acme", doc_id="d2") == 2
        assert store.count("acme", doc_id="nope") == 0

    def test_reupsert_is_idempotent(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        fill(store, corpus)
        assert store.count("acme") == 8
        changed = make_corpus("acme", BASE_DOCS, seed=99)
        fill(store, changed)  # same point ids, new vectors: replaced, not added
        assert store.count("acme") == 8
        hits = store.dense_query("acme", dense=changed.dense[4], acl_groups=ALL_GROUPS, limit=1)
        assert ids(hits) == [changed.chunks[4].point_id]
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)

    def test_payload_round_trips(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        n = corpus.index_of("d3", 2)
        hits = store.dense_query("acme", dense=corpus.dense[n], acl_groups=EVERYONE, limit=1)
        assert hits[0].chunk == corpus.chunks[n]

    @pytest.mark.parametrize("n", [0, 4, 7])
    def test_dense_top_hit(self, store: VectorStore, corpus: Corpus, n: int) -> None:
        fill(store, corpus)
        hits = store.dense_query("acme", dense=corpus.dense[n], acl_groups=ALL_GROUPS, limit=5)
        assert len(hits) == 5
        assert hits[0].chunk.point_id == corpus.chunks[n].point_id
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    @pytest.mark.parametrize("n", [1, 5, 6])
    def test_sparse_top_hit(self, store: VectorStore, corpus: Corpus, n: int) -> None:
        fill(store, corpus)
        hits = store.sparse_query(
            "acme", sparse=unique_term_query(n), acl_groups=ALL_GROUPS, limit=5
        )
        assert ids(hits) == [corpus.chunks[n].point_id]  # only that chunk has the term
        assert hits[0].score > 0

    def test_sparse_uses_idf(self, store: VectorStore) -> None:
        # Term 1 is in every chunk, term 2 in one: equal weights, so IDF alone ranks.
        chunks = make_corpus("acme", {"d": (4, ["*"])}).chunks
        sparse = [SparseVector(indices=[1], values=[1.0]) for _ in chunks]
        sparse[2] = SparseVector(indices=[1, 2], values=[1.0, 1.0])
        store.upsert("acme", chunks, unit_vectors(4, SCHEMA.dimensions, 1), sparse)
        hits = store.sparse_query(
            "acme",
            sparse=SparseVector(indices=[1, 2], values=[1.0, 1.0]),
            acl_groups=EVERYONE,
            limit=4,
        )
        assert ids(hits)[0] == chunks[2].point_id
        assert hits[0].score > 5 * hits[1].score  # a term in every chunk is worth little

    @pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
    def test_hybrid_top_hit(self, store: VectorStore, corpus: Corpus, fusion: FusionMethod) -> None:
        fill(store, corpus)
        n = corpus.index_of("d3", 1)
        hits = store.hybrid_query(
            "acme",
            dense=corpus.dense[n],
            sparse=unique_term_query(n),
            acl_groups=ALL_GROUPS,
            limit=4,
            prefetch_dense=8,
            prefetch_sparse=8,
            fusion=fusion,
        )
        assert len(hits) == 4
        assert hits[0].chunk.point_id == corpus.chunks[n].point_id

    def test_hybrid_fuses_both_signals(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        a, b = corpus.index_of("d1", 0), corpus.index_of("d3", 0)
        hits = store.hybrid_query(
            "acme",
            dense=corpus.dense[a],
            sparse=unique_term_query(b),
            acl_groups=ALL_GROUPS,
            limit=8,
            prefetch_dense=8,
            prefetch_sparse=8,
        )
        # RRF(k=60): b is first of the sparse list (the only match) and somewhere in the
        # dense list; a is first of the dense list only; every other chunk is dense-only.
        assert ids(hits)[:2] == [corpus.chunks[b].point_id, corpus.chunks[a].point_id]
        assert hits[1].score == pytest.approx(1 / 60, rel=1e-5)
        assert hits[0].score > 1 / 60 + 1 / 68
        assert all(h.score < 1 / 60 for h in hits[2:])

    def test_hybrid_without_sparse_terms_is_dense_ranking(
        self, store: VectorStore, corpus: Corpus
    ) -> None:
        fill(store, corpus)
        dense_hits = store.dense_query(
            "acme", dense=corpus.dense[2], acl_groups=ALL_GROUPS, limit=5
        )
        hybrid_hits = store.hybrid_query(
            "acme",
            dense=corpus.dense[2],
            sparse=SparseVector(indices=[], values=[]),
            acl_groups=ALL_GROUPS,
            limit=5,
            prefetch_dense=5,
            prefetch_sparse=5,
        )
        assert ids(hybrid_hits) == ids(dense_hits)
        assert (
            store.sparse_query(
                "acme", sparse=SparseVector(indices=[], values=[]), acl_groups=ALL_GROUPS, limit=5
            )
            == []
        )

    def test_acl_filtering(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        n = corpus.index_of("d2", 0)  # acl ["hr"]
        target = corpus.chunks[n].point_id
        hr_ids = {c.point_id for c in corpus.chunks if "hr" in c.acl_groups}

        dense = store.dense_query("acme", dense=corpus.dense[n], acl_groups=EVERYONE, limit=20)
        sparse = store.sparse_query(
            "acme", sparse=unique_term_query(n), acl_groups=EVERYONE, limit=20
        )
        hybrid = store.hybrid_query(
            "acme",
            dense=corpus.dense[n],
            sparse=unique_term_query(n),
            acl_groups=EVERYONE,
            limit=20,
            prefetch_dense=20,
            prefetch_sparse=20,
        )
        for hits in (dense, sparse, hybrid):
            assert not hr_ids & set(ids(hits))
        assert len(dense) == 6 and sparse == []

        visible = store.dense_query("acme", dense=corpus.dense[n], acl_groups=["hr", "*"], limit=20)
        assert ids(visible)[0] == target and len(visible) == 8
        only_hr = store.dense_query("acme", dense=corpus.dense[0], acl_groups=["hr"], limit=20)
        assert set(ids(only_hr)) == hr_ids
        assert store.dense_query("acme", dense=corpus.dense[0], acl_groups=[], limit=20) == []

    def test_tenant_isolation(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        other = make_corpus("globex", BASE_DOCS, seed=7)  # same doc ids and vectors
        fill(store, other, "globex")
        assert store.count("acme") == store.count("globex") == 8
        acme_ids = {c.point_id for c in corpus.chunks}
        globex_ids = {c.point_id for c in other.chunks}
        assert not acme_ids & globex_ids
        for tenant, own in (("acme", acme_ids), ("globex", globex_ids)):
            for n in range(8):
                dense = store.dense_query(
                    tenant, dense=corpus.dense[n], acl_groups=ALL_GROUPS, limit=20
                )
                sparse = store.sparse_query(
                    tenant, sparse=unique_term_query(n), acl_groups=ALL_GROUPS, limit=20
                )
                hybrid = store.hybrid_query(
                    tenant,
                    dense=corpus.dense[n],
                    sparse=unique_term_query(n),
                    acl_groups=ALL_GROUPS,
                    limit=20,
                    prefetch_dense=20,
                    prefetch_sparse=20,
                )
                for hits in (dense, sparse, hybrid):
                    assert set(ids(hits)) <= own
                    assert {h.chunk.tenant_id for h in hits} == {tenant}
        store.delete_document("globex", "d1")
        assert store.count("acme", doc_id="d1") == 3

    def test_foreign_payload_in_namespace_is_never_returned(
        self, store: VectorStore, corpus: Corpus
    ) -> None:
        fill(store, corpus)
        intruder = make_corpus("globex", {"leak": (1, ["*"])}).chunks[0]
        vector = corpus.dense[0]
        terms = unique_term_query(0)
        insert_raw(store, "acme", intruder, vector, terms)  # globex payload in acme's namespace

        dense = store.dense_query("acme", dense=vector, acl_groups=ALL_GROUPS, limit=20)
        sparse = store.sparse_query("acme", sparse=terms, acl_groups=ALL_GROUPS, limit=20)
        hybrid = store.hybrid_query(
            "acme",
            dense=vector,
            sparse=terms,
            acl_groups=ALL_GROUPS,
            limit=20,
            prefetch_dense=20,
            prefetch_sparse=20,
        )
        for hits in (dense, sparse, hybrid):
            assert intruder.point_id not in ids(hits)
            assert hits and {h.chunk.tenant_id for h in hits} == {"acme"}
        assert store.count("acme") == 8

    def test_upsert_rejects_chunks_of_another_tenant(
        self, store: VectorStore, corpus: Corpus
    ) -> None:
        with pytest.raises(TenantError):
            store.upsert("globex", corpus.chunks, corpus.dense, corpus.sparse)
        assert store.count("globex") == 0

    def test_upsert_rejects_malformed_batches(self, store: VectorStore, corpus: Corpus) -> None:
        with pytest.raises(ValueError, match="one dense and one sparse"):
            store.upsert("acme", corpus.chunks, corpus.dense[:-1], corpus.sparse)
        with pytest.raises(ValueError, match="dimensions"):
            store.upsert("acme", corpus.chunks[:1], [[0.1, 0.2]], corpus.sparse[:1])
        with pytest.raises(ValueError, match="dimensions"):
            store.dense_query("acme", dense=[0.1], acl_groups=EVERYONE, limit=3)
        with pytest.raises(ValueError, match="at least 1"):
            store.hybrid_query(
                "acme",
                dense=corpus.dense[0],
                sparse=unique_term_query(0),
                acl_groups=EVERYONE,
                limit=3,
                prefetch_dense=0,
                prefetch_sparse=5,
            )

    def test_invalid_tenant_ids_are_rejected(self, store: VectorStore, corpus: Corpus) -> None:
        for bad in ("../etc", "Acme", "", "a b"):
            with pytest.raises(TenantError):
                store.ensure_namespace(bad)
            with pytest.raises(TenantError):
                store.dense_query(bad, dense=corpus.dense[0], acl_groups=EVERYONE, limit=3)
            with pytest.raises(TenantError):
                store.count(bad)

    def test_doc_ids_filter(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        hits = store.dense_query(
            "acme", dense=corpus.dense[0], acl_groups=ALL_GROUPS, limit=20, doc_ids=["d3"]
        )
        assert {h.chunk.doc_id for h in hits} == {"d3"} and len(hits) == 3
        n = corpus.index_of("d1", 1)
        assert (
            store.sparse_query(
                "acme",
                sparse=unique_term_query(n),
                acl_groups=ALL_GROUPS,
                limit=5,
                doc_ids=["d2", "d3"],
            )
            == []
        )
        hybrid = store.hybrid_query(
            "acme",
            dense=corpus.dense[n],
            sparse=unique_term_query(n),
            acl_groups=EVERYONE,
            limit=20,
            prefetch_dense=20,
            prefetch_sparse=20,
            doc_ids=["d1", "d2"],
        )
        assert {h.chunk.doc_id for h in hybrid} == {"d1"}  # d2 is hr-only
        assert (
            store.dense_query(
                "acme", dense=corpus.dense[0], acl_groups=ALL_GROUPS, limit=5, doc_ids=[]
            )
            == []
        )

    def test_delete_document(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        store.delete_document("acme", "d1")
        assert store.count("acme", doc_id="d1") == 0
        assert store.count("acme") == 5
        hits = store.dense_query("acme", dense=corpus.dense[0], acl_groups=ALL_GROUPS, limit=20)
        assert "d1" not in {h.chunk.doc_id for h in hits}
        store.delete_document("acme", "d1")  # deleting nothing is fine
        store.delete_document("nobody", "d1")  # so is a tenant without a namespace

    def test_delete_document_except_version(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        v2 = make_corpus("acme", {"d1": (2, ["*"])}, version=2, seed=11)
        fill(store, v2)
        assert store.count("acme", doc_id="d1") == 5  # both versions while the new one lands
        store.delete_document("acme", "d1", except_version=2)
        assert store.count("acme", doc_id="d1") == 2
        hits = store.dense_query(
            "acme", dense=v2.dense[0], acl_groups=ALL_GROUPS, limit=20, doc_ids=["d1"]
        )
        assert {h.chunk.version for h in hits} == {2}
        assert store.count("acme") == 7  # other documents untouched

    def test_document_counts(self, store: VectorStore, corpus: Corpus) -> None:
        assert store.document_counts("acme") == {}  # no namespace yet
        fill(store, corpus)
        fill(store, make_corpus("acme", {"d1": (2, ["*"])}, version=2, seed=11))
        fill(store, make_corpus("other", {"d9": (4, ["*"])}, seed=5), tenant_id="other")
        assert store.document_counts("acme") == {"d1": {1: 3, 2: 2}, "d2": {1: 2}, "d3": {1: 3}}
        store.delete_document("acme", "d1", except_version=2)
        assert store.document_counts("acme")["d1"] == {2: 2}
        assert store.document_counts("other") == {"d9": {1: 4}}

    def test_chunks_lists_every_chunk_of_the_tenant(
        self, store: VectorStore, corpus: Corpus
    ) -> None:
        assert store.chunks("acme") == []  # no namespace yet
        fill(store, corpus)
        fill(store, make_corpus("other", {"d9": (4, ["*"])}, seed=5), tenant_id="other")
        listed = store.chunks("acme")
        assert sorted(c.point_id for c in listed) == sorted(c.point_id for c in corpus.chunks)
        assert {c.point_id: c for c in listed} == {c.point_id: c for c in corpus.chunks}
        assert {c.doc_id for c in store.chunks("other")} == {"d9"}

    def test_missing_namespace(self, store: VectorStore, corpus: Corpus) -> None:
        assert store.count("ghost") == 0
        assert store.dense_query("ghost", dense=corpus.dense[0], acl_groups=EVERYONE, limit=3) == []
        assert (
            store.sparse_query("ghost", sparse=unique_term_query(0), acl_groups=EVERYONE, limit=3)
            == []
        )
        assert (
            store.hybrid_query(
                "ghost",
                dense=corpus.dense[0],
                sparse=unique_term_query(0),
                acl_groups=EVERYONE,
                limit=3,
                prefetch_dense=5,
                prefetch_sparse=5,
            )
            == []
        )
        store.optimize("ghost")
        assert store.count("ghost") == 0  # reads created nothing

    def test_empty_namespace(self, store: VectorStore, corpus: Corpus) -> None:
        store.ensure_namespace("acme")
        store.ensure_namespace("acme")  # idempotent
        assert store.count("acme") == 0
        assert store.dense_query("acme", dense=corpus.dense[0], acl_groups=EVERYONE, limit=3) == []
        assert (
            store.hybrid_query(
                "acme",
                dense=corpus.dense[0],
                sparse=unique_term_query(0),
                acl_groups=EVERYONE,
                limit=3,
                prefetch_dense=5,
                prefetch_sparse=5,
            )
            == []
        )

    def test_drop_namespace(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        fill(store, make_corpus("globex", BASE_DOCS), "globex")
        store.drop_namespace("acme")
        assert store.count("acme") == 0
        assert store.dense_query("acme", dense=corpus.dense[0], acl_groups=EVERYONE, limit=3) == []
        assert store.count("globex") == 8
        fill(store, corpus)  # the namespace can be created again
        assert store.count("acme") == 8

    def test_optimize_keeps_results(self, store: VectorStore, corpus: Corpus) -> None:
        fill(store, corpus)
        before = store.dense_query("acme", dense=corpus.dense[3], acl_groups=ALL_GROUPS, limit=8)
        store.optimize("acme")
        after = store.dense_query("acme", dense=corpus.dense[3], acl_groups=ALL_GROUPS, limit=8)
        assert ids(after) == ids(before)
        assert store.count("acme") == 8


# -- congruence: the same calls on both backends rank the same ------------------------------


def _canonical(hits: list[ScoredChunk]) -> list[tuple[float, str]]:
    """Ranking with ties broken by id (fusion scores tie often), scores rounded."""
    return sorted(
        ((round(h.score, 6), h.chunk.point_id) for h in hits), key=lambda t: (-t[0], t[1])
    )


def test_backends_rank_identically(tmp_path: Path) -> None:
    docs = {f"doc{i}": (6, ["*"] if i % 4 else ["hr"]) for i in range(12)}  # 72 chunks
    corpus = make_corpus("acme", docs, seed=3, shared_terms=10)
    # Another tenant's chunks carry the same terms: in a shared collection they must not
    # change acme's BM25 IDF (statistics are counted over the tenant's own points).
    noise = make_corpus("globex", {f"n{i}": (10, ["*"]) for i in range(6)}, seed=9, shared_terms=3)
    stores = {name: open_store(name, tmp_path / name) for name in BACKENDS}
    try:
        for store in stores.values():
            fill(store, corpus)
            fill(store, noise, "globex")
        rng = np.random.default_rng(5)
        queries_dense = unit_vectors(12, SCHEMA.dimensions, 42)
        for q, dense in enumerate(queries_dense):
            terms = sorted(int(t) for t in rng.choice(10, size=3, replace=False))
            sparse = SparseVector(indices=terms + [UNIQUE_TERM + q], values=[1.0] * 4)
            doc_ids = None if q % 3 else [f"doc{i}" for i in range(0, 12, 2)]
            groups = EVERYONE if q % 2 else ["hr", "*"]
            results: dict[str, dict[str, list[ScoredChunk]]] = {}
            for name, store in stores.items():
                results[name] = {
                    "dense": store.dense_query(
                        "acme", dense=dense, acl_groups=groups, limit=10, doc_ids=doc_ids
                    ),
                    "sparse": store.sparse_query(
                        "acme", sparse=sparse, acl_groups=groups, limit=10, doc_ids=doc_ids
                    ),
                    **{
                        f"hybrid_{fusion}": store.hybrid_query(
                            "acme",
                            dense=dense,
                            sparse=sparse,
                            acl_groups=groups,
                            limit=10,
                            prefetch_dense=15,
                            prefetch_sparse=15,
                            fusion=fusion,
                            doc_ids=doc_ids,
                        )
                        for fusion in ("rrf", "dbsf")
                    },
                }
            edge = results["edge"]
            for client in (results["client"], results["server-shared"]):
                for kind in ("dense", "sparse"):
                    assert ids(edge[kind]) == ids(client[kind]), (q, kind)
                    assert [h.score for h in edge[kind]] == pytest.approx(
                        [h.score for h in client[kind]], rel=1e-4
                    )
                    assert len(edge[kind]) == 10 or kind == "sparse"
                assert _canonical(edge["hybrid_rrf"]) == _canonical(client["hybrid_rrf"]), q
                # DBSF normalises with mean and deviation: compare rankings, scores loosely.
                assert [p for _, p in _canonical(edge["hybrid_dbsf"])] == [
                    p for _, p in _canonical(client["hybrid_dbsf"])
                ], q
    finally:
        for store in stores.values():
            store.close()


# -- Edge only ------------------------------------------------------------------------------


def test_edge_persists_across_close_and_reopen(tmp_path: Path, corpus: Corpus) -> None:
    store = EdgeStore(tmp_path, SCHEMA)
    fill(store, corpus)
    store.delete_document("acme", "d1")
    before = store.hybrid_query(
        "acme",
        dense=corpus.dense[5],
        sparse=unique_term_query(5),
        acl_groups=ALL_GROUPS,
        limit=5,
        prefetch_dense=5,
        prefetch_sparse=5,
    )
    store.close()
    store.close()  # idempotent
    with pytest.raises(VectorIndexError, match="closed"):
        store.count("acme")

    reopened = EdgeStore(tmp_path, SCHEMA)
    try:
        assert reopened.count("acme") == 5
        after = reopened.hybrid_query(
            "acme",
            dense=corpus.dense[5],
            sparse=unique_term_query(5),
            acl_groups=ALL_GROUPS,
            limit=5,
            prefetch_dense=5,
            prefetch_sparse=5,
        )
        assert ids(after) == ids(before)
        assert after[0].chunk == corpus.chunks[5]
    finally:
        reopened.close()


_OPEN_IN_CHILD = """
import sys
from pathlib import Path
from citewise.core.errors import IndexLockedError
from citewise.retrieval.store.base import StoreSchema
from citewise.retrieval.store.edge import EdgeStore
try:
    EdgeStore(Path(sys.argv[1]), StoreSchema(collection_prefix="test", dimensions=16)).close()
except IndexLockedError as exc:
    print("LOCKED:", exc)
    sys.exit(3)
print("OPENED")
"""


def _open_in_child(index_dir: Path) -> subprocess.CompletedProcess[str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", _OPEN_IN_CHILD, str(index_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_edge_index_is_locked_against_a_second_owner(tmp_path: Path, corpus: Corpus) -> None:
    store = EdgeStore(tmp_path, SCHEMA)
    try:
        fill(store, corpus)
        child = _open_in_child(tmp_path)
        assert child.returncode == 3, child.stdout + child.stderr
        assert "in use by another process" in child.stdout
        assert f"pid {os.getpid()}" in child.stdout
        with pytest.raises(IndexLockedError):
            EdgeStore(tmp_path, SCHEMA)  # a second store in this process too
        assert store.count("acme") == 8  # the owner is unaffected
    finally:
        store.close()
    child = _open_in_child(tmp_path)
    assert child.returncode == 0 and "OPENED" in child.stdout, child.stdout + child.stderr


def test_edge_shard_held_outside_the_store_raises_index_locked(
    tmp_path: Path, corpus: Corpus
) -> None:
    store = EdgeStore(tmp_path, SCHEMA)
    fill(store, corpus)
    shard_dir = tmp_path / store.collection_name("acme")
    store.close()
    foreign = qe.EdgeShard.load(str(shard_dir))  # e.g. a tool that ignores our directory lock
    try:
        reopened = EdgeStore(tmp_path, SCHEMA)
        try:
            with pytest.raises(IndexLockedError, match="open in another process"):
                reopened.count("acme")
        finally:
            reopened.close()
    finally:
        foreign.close()


def test_edge_optimize_leaves_results_unchanged(tmp_path: Path) -> None:
    docs = {f"doc{i}": (25, ["*"] if i % 3 else ["hr"]) for i in range(40)}  # 1,000 chunks
    corpus = make_corpus("acme", docs, seed=13, shared_terms=30)
    store = EdgeStore(tmp_path, SCHEMA, indexing_threshold_kb=10)  # HNSW from 160 vectors
    try:
        fill(store, corpus)
        queries = unit_vectors(10, SCHEMA.dimensions, 77)

        def snapshot() -> list[list[str]]:
            out = []
            for q, dense in enumerate(queries):
                sparse = SparseVector(indices=[q, q + 1, UNIQUE_TERM + q], values=[1.0] * 3)
                out.append(
                    ids(store.dense_query("acme", dense=dense, acl_groups=EVERYONE, limit=10))
                )
                out.append(
                    ids(store.sparse_query("acme", sparse=sparse, acl_groups=EVERYONE, limit=10))
                )
                out.append(
                    ids(
                        store.hybrid_query(
                            "acme",
                            dense=dense,
                            sparse=sparse,
                            acl_groups=EVERYONE,
                            limit=10,
                            prefetch_dense=20,
                            prefetch_sparse=20,
                        )
                    )
                )
            return out

        before = snapshot()
        shard = store._shard("acme", create=False)
        assert shard is not None
        indexed = shard.info().indexed_vectors_count  # the sparse vectors only
        store.optimize("acme")
        assert shard.info().indexed_vectors_count == indexed + 1000  # dense HNSW built
        assert snapshot() == before
        assert store.count("acme") == 1000
    finally:
        store.close()


def test_edge_store_is_thread_safe(tmp_path: Path, corpus: Corpus) -> None:
    store = EdgeStore(tmp_path, SCHEMA)
    errors: list[BaseException] = []
    try:
        fill(store, corpus)

        def reader() -> None:
            try:
                for i in range(60):
                    n = i % 8
                    hits = store.hybrid_query(
                        "acme",
                        dense=corpus.dense[n],
                        sparse=unique_term_query(n),
                        acl_groups=ALL_GROUPS,
                        limit=3,
                        prefetch_dense=5,
                        prefetch_sparse=5,
                    )
                    assert hits[0].chunk.point_id == corpus.chunks[n].point_id
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)

        def writer() -> None:
            try:
                for i in range(15):
                    tenant = f"t{i % 3}"
                    other = make_corpus(tenant, BASE_DOCS, seed=i)
                    store.upsert(tenant, other.chunks, other.dense, other.sparse)
                    if i % 3 == 2:
                        store.drop_namespace(tenant)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        threads.append(threading.Thread(target=writer))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert store.count("acme") == 8
    finally:
        store.close()


def test_edge_adds_missing_payload_indexes_on_open(tmp_path: Path) -> None:
    path = tmp_path / SCHEMA.collection_name("acme")
    config = qe.EdgeConfig(
        vectors={"dense": qe.EdgeVectorParams(size=SCHEMA.dimensions, distance=qe.Distance.Cosine)},
        sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )
    qe.EdgeShard.create(str(path), config).close()  # e.g. interrupted before its indexes
    store = EdgeStore(tmp_path, SCHEMA)
    try:
        assert store.count("acme") == 0
        assert describe(store, "acme")["payload_indexes"] == set(PAYLOAD_INDEXES)
    finally:
        store.close()


def test_build_store_chooses_the_backend_from_settings(tmp_path: Path) -> None:
    edge = build_store(load_settings(data_dir=tmp_path))
    try:
        assert isinstance(edge, EdgeStore) and isinstance(edge, VectorStore)
        assert edge.index_dir == tmp_path / "index"
        assert edge.collection_name("acme") == "citewise_acme"
        assert edge.schema.dimensions == 384 and edge.schema.rrf_k == 60
    finally:
        edge.close()
    server = build_store(
        load_settings(data_dir=tmp_path, index={"backend": "server", "url": ":memory:"})
    )
    try:
        assert isinstance(server, QdrantClientStore)
        server.ensure_namespace("acme")
        assert server.count("acme") == 0
    finally:
        server.close()
    with pytest.raises(ConfigError, match="index.url"):
        build_store(load_settings(data_dir=tmp_path, index={"backend": "server"}))


class _RecordingQdrant(BaseHTTPRequestHandler):
    """Answers the few Qdrant REST calls of `ensure_namespace` and records their bodies."""

    requests: list[tuple[str, str, dict[str, object]]]

    def _answer(self, result: object) -> None:
        body = json.dumps({"result": result, "status": "ok", "time": 0.0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, {}))
        self._answer({"exists": False} if self.path.endswith("/exists") else {})

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.requests.append(("PUT", self.path, json.loads(self.rfile.read(length) or b"{}")))
        self._answer(
            True if "/index" not in self.path else {"operation_id": 1, "status": "completed"}
        )

    def log_message(self, *args: object) -> None:
        pass


def test_server_collections_get_the_configured_shards_and_replicas(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        index={"backend": "server", "url": ":memory:", "shard_number": 6, "replication_factor": 2},
    )
    schema = StoreSchema.from_settings(settings)
    assert (schema.shard_number, schema.replication_factor) == (6, 2)
    assert StoreSchema.from_settings(load_settings(data_dir=tmp_path)).shard_number is None
    # What qdrant-client sends a server: a loopback endpoint records the create request.
    requests: list[tuple[str, str, dict[str, object]]] = []
    handler = type("Handler", (_RecordingQdrant,), {"requests": requests})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    client = QdrantClient(url=f"http://127.0.0.1:{httpd.server_port}", check_compatibility=False)
    try:
        QdrantClientStore(client, schema).ensure_namespace("acme")
        default = StoreSchema(collection_prefix="plain", dimensions=16)
        QdrantClientStore(client, default).ensure_namespace("acme")
    finally:
        client.close()
        httpd.shutdown()
        httpd.server_close()
    created = {path: body for method, path, body in requests if path.startswith("/collections/")}
    sharded = created["/collections/citewise_acme"]
    assert (sharded["shard_number"], sharded["replication_factor"]) == (6, 2)
    assert "shard_number" not in created["/collections/plain_acme"]
    assert "replication_factor" not in created["/collections/plain_acme"]


# -- shared collection (tenancy="shared", server backend) ----------------------------------


@pytest.fixture
def shared() -> Iterator[QdrantClientStore]:
    opened = QdrantClientStore(QdrantClient(location=":memory:"), SHARED_SCHEMA, owns_client=True)
    yield opened
    opened.close()


def _points_in_collection(store: QdrantClientStore) -> int:
    """Every point of the shared collection, whatever its tenant (no filter)."""
    return store.client.count(SHARED_SCHEMA.shared_name, exact=True).count


def test_shared_tenants_with_identical_documents_neither_collide_nor_leak(
    shared: QdrantClientStore, corpus: Corpus
) -> None:
    twin = make_corpus("globex", BASE_DOCS, seed=7, shared_terms=6)  # same doc ids and vectors
    fill(shared, corpus)
    fill(shared, twin, "globex")
    assert [c.name for c in shared.client.get_collections().collections] == ["test_shared"]
    assert _points_in_collection(shared) == 16  # two tenants, one collection, no overwrite
    assert shared.count("acme") == shared.count("globex") == 8
    assert shared.count("acme", doc_id="d1") == shared.count("globex", doc_id="d1") == 3
    assert shared.document_counts("acme") == shared.document_counts("globex")
    assert shared.document_counts("acme") == {"d1": {1: 3}, "d2": {1: 2}, "d3": {1: 3}}
    assert {c.tenant_id for c in shared.chunks("acme")} == {"acme"}
    assert {c.point_id for c in shared.chunks("globex")} == {c.point_id for c in twin.chunks}
    for n in range(8):
        hits = shared.hybrid_query(
            "acme",
            dense=corpus.dense[n],
            sparse=unique_term_query(n),
            acl_groups=ALL_GROUPS,
            limit=20,
            prefetch_dense=20,
            prefetch_sparse=20,
        )
        assert len(hits) == 8 and {h.chunk.tenant_id for h in hits} == {"acme"}
        assert hits[0].chunk.point_id == corpus.chunks[n].point_id
        theirs = shared.sparse_query(
            "globex", sparse=unique_term_query(n), acl_groups=ALL_GROUPS, limit=5
        )
        assert ids(theirs) == [twin.chunks[n].point_id]
    shared.delete_document("globex", "d1")
    assert shared.count("globex", doc_id="d1") == 0 and shared.count("acme", doc_id="d1") == 3
    fill(shared, make_corpus("globex", {"d3": (1, ["*"])}, version=2, seed=4), "globex")
    shared.delete_document("globex", "d3", except_version=2)
    assert shared.document_counts("globex") == {"d2": {1: 2}, "d3": {2: 1}}
    assert shared.document_counts("acme")["d3"] == {1: 3}


def test_shared_drop_namespace_deletes_only_that_tenants_points(
    shared: QdrantClientStore, corpus: Corpus
) -> None:
    fill(shared, corpus)
    fill(shared, make_corpus("globex", BASE_DOCS), "globex")
    shared.drop_namespace("acme")
    assert shared.client.collection_exists("test_shared")  # the collection stays
    assert shared.count("acme") == 0 and shared.chunks("acme") == []
    assert shared.count("globex") == 8 and _points_in_collection(shared) == 8
    shared.drop_namespace("acme")  # nothing left to drop is fine
    fill(shared, corpus)
    assert shared.count("acme") == 8 and _points_in_collection(shared) == 16
    fresh = QdrantClientStore(QdrantClient(location=":memory:"), SHARED_SCHEMA, owns_client=True)
    try:
        fresh.drop_namespace("acme")  # no collection yet: nothing to do
        assert fresh.document_counts("acme") == {}
    finally:
        fresh.close()


def test_shared_bm25_counts_idf_over_the_tenants_own_points(shared: QdrantClientStore) -> None:
    per_tenant = QdrantClientStore(QdrantClient(location=":memory:"), SCHEMA, owns_client=True)
    try:
        mine = make_corpus("acme", {"d": (4, ["*"])})
        sparse = [SparseVector(indices=[2], values=[1.0]) for _ in mine.chunks]
        sparse[0] = SparseVector(indices=[1], values=[1.0])  # term 1 is rare for acme
        crowd = make_corpus("globex", {"g": (40, ["*"])}, seed=3)
        everywhere = [SparseVector(indices=[1], values=[1.0]) for _ in crowd.chunks]
        for store in (shared, per_tenant):
            store.upsert("acme", mine.chunks, mine.dense, sparse)
            store.upsert("globex", crowd.chunks, crowd.dense, everywhere)
        query = SparseVector(indices=[1], values=[1.0])
        scores = [
            [h.score for h in s.sparse_query("acme", sparse=query, acl_groups=EVERYONE, limit=3)]
            for s in (shared, per_tenant)
        ]
        assert len(scores[0]) == 1 and scores[0] == pytest.approx(scores[1], rel=1e-6)
    finally:
        per_tenant.close()


class _SharedQdrant(_RecordingQdrant):
    """A loopback Qdrant that remembers created collections and answers 409 on a second create.

    With ``racing`` the existence check always says no, as when replicas race.
    """

    racing = False

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, {}))
        made = {p for m, p, _ in self.requests if m == "PUT" and p.count("/") == 2}
        exists = not self.racing and self.path.removesuffix("/exists") in made
        self._answer({"exists": exists} if self.path.endswith("/exists") else {})

    def do_PUT(self) -> None:
        if self.path.count("/") == 2 and any(p == self.path for _, p, _ in self.requests):
            self.requests.append(("PUT", self.path, {}))
            body = json.dumps({"status": {"error": "already exists"}}).encode()
            self.send_response(409)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_PUT()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.requests.append(("POST", self.path, json.loads(self.rfile.read(length) or b"{}")))
        if self.path.endswith("/points/query"):
            self._answer({"points": []})
        else:
            self._answer({"operation_id": 2, "status": "completed"})

    def do_DELETE(self) -> None:
        self.requests.append(("DELETE", self.path, {}))
        self._answer(True)


Request = tuple[str, str, dict[str, Any]]


def _record_server(racing: bool, calls: Callable[[QdrantClientStore], object]) -> list[Request]:
    """Run `calls` on a shared store talking to a loopback Qdrant; return its requests."""
    requests: list[Request] = []
    handler = type("Handler", (_SharedQdrant,), {"requests": requests, "racing": racing})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    client = QdrantClient(url=f"http://127.0.0.1:{httpd.server_port}", check_compatibility=False)
    try:
        calls(QdrantClientStore(client, replace(SHARED_SCHEMA, shared_collection="kb_all")))
    finally:
        client.close()
        httpd.shutdown()
        httpd.server_close()
    return requests


def test_shared_collection_is_created_once_with_tenant_index_and_per_tenant_hnsw() -> None:
    def calls(store: QdrantClientStore) -> None:
        for tenant in ("acme", "globex", "acme"):
            store.ensure_namespace(tenant)
        store.drop_namespace("globex")
        store.sparse_query("acme", sparse=unique_term_query(0), acl_groups=EVERYONE, limit=3)
        store.hybrid_query(
            "acme",
            dense=[0.25] * SCHEMA.dimensions,
            sparse=unique_term_query(0),
            acl_groups=EVERYONE,
            limit=3,
            prefetch_dense=5,
            prefetch_sparse=5,
        )

    requests = _record_server(False, calls)
    created = [body for m, path, body in requests if m == "PUT" and path == "/collections/kb_all"]
    assert len(created) == 1  # once for every tenant
    assert created[0]["hnsw_config"] == {"m": 0, "payload_m": 16}
    indexes = {
        body["field_name"]: body["field_schema"]
        for m, path, body in requests
        if m == "PUT" and path.startswith("/collections/kb_all/index")
    }
    assert indexes["tenant_id"] == {"type": "keyword", "is_tenant": True}
    assert set(indexes) == set(PAYLOAD_INDEXES)
    # drop_namespace deletes the tenant's points by filter, never the collection
    assert not [r for r in requests if r[0] == "DELETE"]
    deletes = [
        body for m, path, body in requests if path.startswith("/collections/kb_all/points/delete")
    ]
    tenant_is = {"key": "tenant_id", "match": {"value": "globex"}}
    assert [d["filter"]["must"] for d in deletes] == [[tenant_is]]
    # BM25 IDF is counted over the tenant's points, in a sparse query and a sparse prefetch
    queries = [body for m, path, body in requests if path.endswith("/points/query")]
    corpus = {"idf": {"corpus": {"must": [{"key": "tenant_id", "match": {"value": "acme"}}]}}}
    assert queries[0]["params"] == corpus
    sparse_prefetch = [p for p in queries[1]["prefetch"] if p["using"] == SCHEMA.sparse_vector]
    assert sparse_prefetch[0]["params"] == corpus


def test_shared_collection_created_concurrently_is_fine() -> None:
    requests = _record_server(True, lambda s: [s.ensure_namespace(t) for t in ("acme", "globex")])
    creates = [body for m, path, body in requests if m == "PUT" and path == "/collections/kb_all"]
    assert len(creates) == 2 and creates[1] == {}  # the second got a 409, and returned quietly


def test_build_store_opens_the_shared_collection_mode(tmp_path: Path) -> None:
    index = {"backend": "server", "url": ":memory:", "tenancy": "shared"}
    store = build_store(load_settings(data_dir=tmp_path, index=index))
    try:
        assert isinstance(store, QdrantClientStore) and store.shared
        assert store.collection_name("acme") == store.collection_name("globex") == "citewise_shared"
        with pytest.raises(TenantError):
            store.collection_name("../x")
    finally:
        store.close()
    named = load_settings(data_dir=tmp_path, index={**index, "shared_collection": "kb_all"})
    assert StoreSchema.from_settings(named).shared_name == "kb_all"
    with pytest.raises(ConfigError, match="shard per tenant"):
        EdgeStore(tmp_path / "edge", SHARED_SCHEMA)
