"""The rerank stage's ordering and blending, LLM yes/no parsing, folds and example mining."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from citewise.core.errors import ConfigError, ModelError
from citewise.core.schemas import Chunk, ScoredChunk
from citewise.core.settings import RerankSettings
from citewise.eval.reranker import examples_from_hits, fold_of, split_folds
from citewise.retrieval.rerank import build_reranker, passage_text, rerank_hits
from citewise.retrieval.rerank.llm import yes_probability


class KeywordReranker:
    """A transparent scorer for the stage's logic: counts a keyword in each passage."""

    name = "keyword"

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword

    def warm_up(self) -> None:
        """Nothing to load."""

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        return np.asarray([p.lower().count(self.keyword) for p in passages], dtype=float)


def _hit(doc: str, text: str, score: float, index: int = 0) -> ScoredChunk:
    chunk = Chunk(tenant_id="t", doc_id=doc, version=1, chunk_index=index, text=text, title=doc)
    return ScoredChunk(chunk=chunk, score=score)


HITS = [
    _hit("a", "nothing here", 0.9),
    _hit("b", "harbour harbour", 0.8),
    _hit("c", "one harbour", 0.7),
    _hit("d", "harbour harbour harbour but beyond depth", 0.1),
]


def test_rerank_reorders_the_head_and_keeps_the_tail_after_it() -> None:
    ranked = rerank_hits("q", HITS, KeywordReranker("harbour"), depth=3)
    assert [h.chunk.doc_id for h in ranked] == ["b", "c", "a", "d"]
    scores = [h.score for h in ranked]
    assert scores == sorted(scores, reverse=True)


def test_blend_zero_keeps_the_first_stage_order() -> None:
    ranked = rerank_hits("q", HITS, KeywordReranker("harbour"), depth=3, blend=0.0)
    assert [h.chunk.doc_id for h in ranked] == ["a", "b", "c", "d"]


def test_partial_blend_mixes_both_signals() -> None:
    # First stage strongly prefers a, the reranker b; weighted towards the first stage, a wins.
    hits = [_hit("a", "x", 10.0), _hit("b", "harbour", 1.0), _hit("c", "x", 0.9)]
    ranked = rerank_hits("q", hits, KeywordReranker("harbour"), depth=3, blend=0.3)
    assert [h.chunk.doc_id for h in ranked][:2] == ["a", "b"]


def test_a_single_hit_is_returned_unchanged() -> None:
    assert rerank_hits("q", HITS[:1], KeywordReranker("harbour"), depth=5) == HITS[:1]


def test_passage_text_has_title_section_and_text() -> None:
    chunk = Chunk(
        tenant_id="t", doc_id="d", version=1, chunk_index=0, text="Body.", title="T", section="S"
    )
    assert passage_text(chunk) == "T\nS\nBody."
    assert passage_text(chunk.model_copy(update={"section": "T"})) == "T\nBody."


def test_yes_probability_normalises_yes_against_no() -> None:
    top = [
        {"token": "Yes", "logprob": math.log(0.6)},
        {"token": " yes", "logprob": math.log(0.1)},
        {"token": "No", "logprob": math.log(0.3)},
    ]
    assert yes_probability({"content": [{"top_logprobs": top}]}) == pytest.approx(0.7)
    assert yes_probability({"content": []}) == 0.5
    assert yes_probability(None) == 0.5
    assert (
        yes_probability({"content": [{"top_logprobs": [{"token": "Maybe", "logprob": 0}]}]}) == 0.5
    )


def test_build_reranker_configuration_errors_are_clear(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert build_reranker(RerankSettings(), tmp_path) is None
    with pytest.raises(ModelError, match="citewise reranker train"):
        build_reranker(RerankSettings(backend="cross-encoder", model="trained:nope"), tmp_path)
    with pytest.raises(ConfigError, match="llm_base_url"):
        build_reranker(RerankSettings(backend="llm"), tmp_path)
    with pytest.raises(ConfigError, match="invalid trained reranker name"):
        build_reranker(RerankSettings(backend="cross-encoder", model="trained:../x"), tmp_path)


def test_folds_are_stable_disjoint_and_cover_every_query() -> None:
    ids = [f"q{i}" for i in range(500)]
    assert [fold_of(q, 5) for q in ids] == [fold_of(q, 5) for q in ids]
    sizes = []
    for k in range(5):
        train, test = split_folds(ids, 5, k)
        assert not set(train) & set(test) and len(train) + len(test) == 500
        sizes.append(len(test))
    assert sum(sizes) == 500 and min(sizes) > 70  # roughly balanced


def test_examples_use_relevant_chunks_as_positives_and_one_chunk_per_negative_doc() -> None:
    hits = [
        _hit("n1", "neg one", 0.9),
        _hit("n1", "neg one again", 0.85, index=1),
        _hit("r", "relevant", 0.8),
        _hit("n2", "neg two", 0.7),
        _hit("n3", "neg three", 0.6),
    ]
    examples = examples_from_hits("q1", "query", hits, {"r"}, negatives=2, rng=random.Random(1))
    assert len(examples) == 1
    example = examples[0]
    assert example.positive == "r\nrelevant"
    assert len(example.negatives) == 2 and len(set(example.negatives)) == 2
    assert all(not n.startswith("r\n") for n in example.negatives)
    assert "n1\nneg one again" not in example.negatives
    # No relevant hit, or too few negatives: no example.
    assert examples_from_hits("q1", "query", hits, {"zz"}, negatives=2, rng=random.Random(1)) == []
    assert examples_from_hits("q1", "query", hits, {"r"}, negatives=9, rng=random.Random(1)) == []
