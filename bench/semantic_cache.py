"""Semantic answer cache: false hits and hits per similarity threshold, measured on real questions.

Not a test. Embeds questions with the configured embedder (the one the cache
uses) and prints, for each threshold, how often a cache keyed on that cosine
similarity would reuse an answer:

- paraphrases (``samples/cache_pairs.json``, 40 hand-written rewordings of the
  sample-set questions): a hit is right; the hit rate is the cache's benefit;
- hard negatives (same file, 22 small edits that change the answer: another
  year, plan, office, caregiver): a hit is a false hit (a wrong answer served);
- sample-set questions (``samples/questions.json``, 43, every pair different):
  false-hit rate per question, i.e. its nearest other question is over the threshold;
- SciFact claims (``../shared/data/scifact/queries.jsonl``, 1,109 distinct
  claims, many near-duplicates with opposite meaning): the same per-question
  false-hit rate (the cache would hold the other claim's answer), and the
  fraction of all pairs over the threshold.

Each rate is printed twice: on similarity alone, and as the cache decides
(similarity of the nearest cached question AND the same `key_terms`: numbers,
negations, direction words, names).

    .venv/bin/python bench/semantic_cache.py
    .venv/bin/python bench/semantic_cache.py --json semantic.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench_store import hardware
from citewise.answer.cache import key_terms
from citewise.core.logging import configure_logging
from citewise.core.models import Embedder
from citewise.core.settings import EmbeddingSettings

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "samples" / "cache_pairs.json"
QUESTIONS = ROOT / "samples" / "questions.json"
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "queries.jsonl"
THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99)


def _pair_scores(embedder: Embedder, pairs: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's similarity, and whether its key terms agree."""
    left = embedder.embed([a for a, _ in pairs])
    right = embedder.embed([b for _, b in pairs])
    same = np.array([key_terms(a) == key_terms(b) for a, b in pairs])
    return np.sum(left * right, axis=1), same


def _nearest_other(
    embedder: Embedder, texts: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each text's highest similarity to another, whether their key terms agree, all pairs."""
    vectors = embedder.embed(texts)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    upper = sims[np.triu_indices(len(texts), k=1)]
    nearest = sims.argmax(axis=1)
    same = np.array([key_terms(texts[i]) == key_terms(texts[j]) for i, j in enumerate(nearest)])
    return sims.max(axis=1), same, upper


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    configure_logging("WARNING")
    embedder = Embedder(EmbeddingSettings())
    embedder.warm_up()
    pairs = json.loads(PAIRS.read_text())
    samples = [q["question"] for q in json.loads(QUESTIONS.read_text())]
    claims = [json.loads(line)["text"] for line in SCIFACT.read_text().splitlines() if line]
    claims = sorted(set(claims))
    started = time.perf_counter()
    positives, positives_same = _pair_scores(embedder, pairs["paraphrases"])
    hard, hard_same = _pair_scores(embedder, pairs["hard_negatives"])
    sample_nearest, sample_same, _ = _nearest_other(embedder, samples)
    claim_nearest, claim_same, claim_pairs = _nearest_other(embedder, claims)
    seconds = time.perf_counter() - started
    print(f"hardware: {hardware()}")
    print(f"embedder: {embedder.settings.model}; {seconds:.1f} s to embed and compare")
    print(
        f"paraphrase pairs {len(positives)}, hard-negative pairs {len(hard)}, "
        f"sample questions {len(samples)}, SciFact claims {len(claims)} "
        f"({len(claim_pairs)} pairs)"
    )
    print(
        "similarity: paraphrases min/median "
        f"{positives.min():.3f}/{np.median(positives):.3f}; hard negatives max/median "
        f"{hard.max():.3f}/{np.median(hard):.3f}; nearest other sample question max "
        f"{sample_nearest.max():.3f}; nearest other SciFact claim max {claim_nearest.max():.3f}"
    )
    print("rates: similarity alone / similarity + same key terms (what the cache does)")
    header = (
        f"{'threshold':>9} | {'paraphrase hits':>15} | {'hard-neg false hits':>19} | "
        f"{'sample-q false hits':>19} | {'SciFact false hits':>18} | {'SciFact pairs over':>18}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for threshold in THRESHOLDS:
        row = {
            "threshold": threshold,
            "paraphrase_hit_rate": _rates(positives >= threshold, positives_same),
            "hard_negative_false_hit_rate": _rates(hard >= threshold, hard_same),
            "sample_false_hit_rate": _rates(sample_nearest >= threshold, sample_same),
            "scifact_false_hit_rate": _rates(claim_nearest >= threshold, claim_same),
            "scifact_pairs_over": int(np.sum(claim_pairs >= threshold)),
        }
        rows.append(row)
        cells = [
            _cell(row[name])  # type: ignore[arg-type]
            for name in (
                "paraphrase_hit_rate",
                "hard_negative_false_hit_rate",
                "sample_false_hit_rate",
                "scifact_false_hit_rate",
            )
        ]
        print(
            f"{threshold:>9.2f} | {cells[0]:>15} | {cells[1]:>19} | {cells[2]:>19} | "
            f"{cells[3]:>18} | {row['scifact_pairs_over']:>18d}"
        )
    if args.json:
        args.json.write_text(json.dumps({"hardware": hardware(), "rows": rows}, indent=2))


def _rates(over: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(rate over the threshold, rate over it with the same key terms)."""
    return float(np.mean(over)), float(np.mean(over & same))


def _cell(rates: tuple[float, float]) -> str:
    return f"{rates[0]:.1%} / {rates[1]:.1%}"


if __name__ == "__main__":
    main()
