"""Our ranking metrics agree with trec_eval (pytrec_eval) on random runs."""

import random

import pytest
import pytrec_eval

from citewise.eval.metrics import evaluate, mrr_at_k, ndcg_at_k, recall_at_k


def _random_case(seed: int) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(300)]
    run, qrels = {}, {}
    for q in range(40):
        qid = f"q{q}"
        qrels[qid] = {d: rng.choice([1, 1, 2]) for d in rng.sample(docs, rng.randint(1, 6))}
        ranking = rng.sample(docs, 120)
        for d in qrels[qid]:  # plant some relevant documents near the top
            if rng.random() < 0.6:
                ranking.insert(rng.randint(0, 15), d)
        seen: list[str] = []
        for d in ranking:
            if d not in seen:
                seen.append(d)
        run[qid] = seen
    return run, qrels


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_metrics_match_pytrec_eval(seed: int) -> None:
    run, qrels = _random_case(seed)
    trec_run = {q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in run.items()}
    measures = {"ndcg_cut.10", "recall.10", "recall.100", "recip_rank"}
    # trec_eval's recip_rank has no cut-off; compare MRR on runs cut at 10.
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(trec_run)
    cut = {q: {d: s for d, s in r.items() if s > len(run[q]) - 10} for q, r in trec_run.items()}
    mrr_ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    for qid, ranking in run.items():
        rel = qrels[qid]
        assert ndcg_at_k(ranking, rel, 10) == pytest.approx(reference[qid]["ndcg_cut_10"], abs=1e-6)
        assert recall_at_k(ranking, rel, 10) == pytest.approx(reference[qid]["recall_10"], abs=1e-6)
        assert recall_at_k(ranking, rel, 100) == pytest.approx(
            reference[qid]["recall_100"], abs=1e-6
        )
        assert mrr_at_k(ranking, rel, 10) == pytest.approx(mrr_ref[qid]["recip_rank"], abs=1e-6)
    means = evaluate(run, qrels)
    expected = sum(r["ndcg_cut_10"] for r in reference.values()) / len(reference)
    assert means["ndcg@10"] == pytest.approx(expected, abs=1e-6)


def test_missing_queries_count_as_zero() -> None:
    assert evaluate({}, {"q": {"d": 1}}) == {
        "ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0,
    }  # fmt: skip
