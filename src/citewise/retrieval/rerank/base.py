"""The reranker interface and the stage that applies it to search hits."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from citewise.core.schemas import Chunk, ScoredChunk


class Reranker(Protocol):
    """Scores (query, passage) pairs; higher means more relevant."""

    name: str

    def warm_up(self) -> None:
        """Load weights or open connections now rather than on the first query."""

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        """One relevance score per passage, as a float array."""


def passage_text(chunk: Chunk) -> str:
    """What the reranker reads of a chunk: title, section (when it adds something), text."""
    head = [chunk.title.strip()]
    section = chunk.section.strip()
    if section and section != head[0]:
        head.append(section)
    return "\n".join([*(h for h in head if h), chunk.text.strip()])


def _zscore(values: np.ndarray) -> np.ndarray:
    spread = float(values.std())
    return (values - values.mean()) / spread if spread > 1e-9 else np.zeros_like(values)


def rerank_hits(
    query: str,
    hits: list[ScoredChunk],
    reranker: Reranker,
    *,
    depth: int,
    blend: float = 1.0,
) -> list[ScoredChunk]:
    """Re-order the first `depth` hits by the reranker; the rest keep their order after them.

    Args:
        query: The search query.
        hits: First-stage results, best first.
        reranker: The scoring model.
        depth: How many of the top hits to re-score.
        blend: Weight of the reranker's z-score against the first stage's z-score
            (1.0 ranks by the reranker alone).

    Returns:
        The hits in their new order; re-scored hits carry the blended score.
    """
    head, tail = hits[:depth], hits[depth:]
    if len(head) < 2:
        return hits
    scores = np.asarray(reranker.score(query, [passage_text(h.chunk) for h in head]), dtype=float)
    combined = blend * _zscore(scores)
    if blend < 1.0:
        first = np.asarray([h.score for h in head], dtype=float)
        combined = combined + (1.0 - blend) * _zscore(first)
    order = np.argsort(-combined, kind="stable")
    # Tail scores sit below every re-scored hit so the merged list stays sorted.
    floor = float(combined.min()) - 1.0
    return [
        *(ScoredChunk(chunk=head[i].chunk, score=float(combined[i])) for i in order),
        *(ScoredChunk(chunk=h.chunk, score=floor) for h in tail),
    ]
