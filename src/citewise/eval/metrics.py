"""Ranking metrics (binary or graded relevance), as trec_eval computes them.

nDCG@k uses gains equal to the relevance grade and a log2(rank + 1) discount;
recall@k is the share of relevant documents in the top k; MRR@k is the inverse
rank of the first relevant document within k. Checked against pytrec_eval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Run = Mapping[str, Sequence[str]]
"""Query id -> ranked document ids (best first, no repeats)."""
Qrels = Mapping[str, Mapping[str, int]]
"""Query id -> {document id: relevance grade > 0}."""


def ndcg_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Normalised discounted cumulative gain of one ranking at depth k."""
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top k."""
    if not relevant:
        return 0.0
    return len(set(ranking[:k]) & set(relevant)) / len(relevant)


def mrr_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Inverse rank of the first relevant document within the top k (0 if none)."""
    for index, doc in enumerate(ranking[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (index + 1)
    return 0.0


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, recall@10, recall@100 and MRR@10 over the judged queries.

    A judged query missing from `run` counts as zero.
    """
    totals = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for query_id, relevant in qrels.items():
        ranking = run.get(query_id, [])
        totals["ndcg@10"] += ndcg_at_k(ranking, relevant, 10)
        totals["recall@10"] += recall_at_k(ranking, relevant, 10)
        totals["recall@100"] += recall_at_k(ranking, relevant, 100)
        totals["mrr@10"] += mrr_at_k(ranking, relevant, 10)
    count = max(len(qrels), 1)
    return {name: value / count for name, value in totals.items()}
