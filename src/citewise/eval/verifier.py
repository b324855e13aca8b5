"""Verifier evaluation: precision and recall of groundedness checks on labelled claims.

Two labelled sets:

- the sample documents' hand-labelled claims (``samples/verifier_claims.json``):
  paraphrases and exact statements (supported) against one-fact changes of a
  number, name or date, statements absent from the passage, negations and
  half-right sentences (unsupported);
- a BEIR dataset (SciFact): each claim against the best-ranked chunk of a
  document judged relevant (supported), against the best-ranked chunk of a
  document not judged relevant (unsupported, a hard negative from Citewise's
  own hybrid search), and, when the claim has a number found in its passage,
  the claim with that number changed (unsupported).

SciFact's relevant documents include those that contradict the claim; BEIR's
qrels do not say which, so a few "supported" labels there are topical rather
than entailed. The sample set carries the negations.

"Positive" is "the verifier passes the sentence": precision is the share of
passed sentences that are supported (what reaches users), recall the share of
supported sentences that pass (what is not lost).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from citewise.answer.support import SupportCheck, numbers_in
from citewise.answer.verify import AnswerVerifier, SentenceChecker
from citewise.core.errors import ConfigError
from citewise.core.tenancy import Principal
from citewise.eval.beir import BeirDataset
from citewise.runtime import Runtime

MINE_DEPTH = 20
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")


@dataclass(frozen=True)
class LabelledClaim:
    """A sentence, the passage it would cite, and whether the passage supports it."""

    claim: str
    passage: str
    label: bool
    kind: str
    source: str


@dataclass
class VerifierResult:
    """One configuration's scores on one labelled set."""

    verifier: str
    dataset: str
    threshold: float
    claims: int
    precision: float
    recall: float
    f1: float
    accuracy: float
    pass_rate_by_kind: dict[str, float] = field(default_factory=dict)
    best_f1_threshold: float = 0.0
    best_f1: float = 0.0


class ModeChecker:
    """One verification mode of the answer verifier (e.g. ``fast+llm``) as a checker."""

    def __init__(self, verifier: AnswerVerifier, mode: str) -> None:
        self.verifier = verifier
        self.name = mode

    def check_many(self, sentences: Sequence[str], passages: Sequence[str]) -> list[SupportCheck]:
        """The mode's scores; raises when the judge it needs did not run."""
        checks, used = self.verifier.check_pairs(sentences, passages, mode=self.name)
        if used != self.name:
            raise ConfigError(f"verifier {self.name} could not run ({used})")
        return checks


def sample_claims(path: Path) -> list[LabelledClaim]:
    """The hand-labelled claims of the sample documents.

    Raises:
        ConfigError: The file is missing or a claim names an unknown passage.
    """
    if not path.is_file():
        raise ConfigError(f"labelled claims file not found: {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    passages: dict[str, str] = data["passages"]
    claims = []
    for item in data["claims"]:
        if item["passage"] not in passages:
            raise ConfigError(f"{path}: claim names unknown passage {item['passage']!r}")
        claims.append(
            LabelledClaim(
                claim=item["claim"],
                passage=passages[item["passage"]],
                label=bool(item["label"]),
                kind=item["kind"],
                source="samples",
            )
        )
    return claims


def beir_claims(
    runtime: Runtime,
    dataset: BeirDataset,
    *,
    tenant: str,
    limit: int | None = None,
    on_query: Callable[[], None] | None = None,
) -> list[LabelledClaim]:
    """Labelled claims from a BEIR split whose corpus is ingested in `tenant`.

    Queries are taken in a stable hash order, so ``limit`` picks the same ones
    on every run and machine.
    """
    principal = Principal(tenant_id=tenant, user_id="verifier-eval")
    query_ids = sorted(dataset.qrels, key=lambda q: hashlib.blake2b(q.encode()).hexdigest())
    claims: list[LabelledClaim] = []
    for query_id in query_ids[:limit] if limit else query_ids:
        relevant = {d for d, grade in dataset.qrels[query_id].items() if grade > 0}
        claim = dataset.queries.get(query_id)
        if claim and relevant:
            hits = runtime.retriever.search(claim, principal, top_k=MINE_DEPTH, mode="hybrid")
            positive = next((h.chunk for h in hits if h.chunk.doc_id in relevant), None)
            negative = next((h.chunk for h in hits if h.chunk.doc_id not in relevant), None)
            if positive is not None:
                claims.append(LabelledClaim(claim, positive.text, True, "relevant", dataset.name))
                changed = _change_number(claim, positive.text)
                if changed is not None:
                    claims.append(
                        LabelledClaim(changed, positive.text, False, "number", dataset.name)
                    )
            if negative is not None:
                claims.append(
                    LabelledClaim(claim, negative.text, False, "hard_negative", dataset.name)
                )
        if on_query is not None:
            on_query()
    return claims


def evaluate_verifier(
    checker: SentenceChecker,
    claims: Sequence[LabelledClaim],
    *,
    threshold: float,
    dataset: str,
    name: str | None = None,
) -> VerifierResult:
    """Score every claim and compute precision, recall and F1 of passing at `threshold`."""
    checks = checker.check_many([c.claim for c in claims], [c.passage for c in claims])
    scores = [check.score for check in checks]
    labels = [c.label for c in claims]
    precision, recall, f1, accuracy = _prf(scores, labels, threshold)
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for claim, score in zip(claims, scores, strict=True):
        by_kind[claim.kind].append(score >= threshold)
    best_f1, best_threshold = max(
        (_prf(scores, labels, t)[2], t) for t in [round(0.05 * i, 2) for i in range(1, 20)]
    )
    return VerifierResult(
        verifier=name or checker.name,
        dataset=dataset,
        threshold=threshold,
        claims=len(claims),
        precision=precision,
        recall=recall,
        f1=f1,
        accuracy=accuracy,
        pass_rate_by_kind={k: round(sum(v) / len(v), 4) for k, v in sorted(by_kind.items())},
        best_f1_threshold=best_threshold,
        best_f1=best_f1,
    )


def markdown(results: Sequence[VerifierResult]) -> str:
    """The results as a Markdown table (pass rate by kind: share of claims passed)."""
    lines = [
        "| set | verifier | claims | threshold | precision | recall | F1 | best F1 (at) | "
        "passed by kind |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in r.pass_rate_by_kind.items())
        lines.append(
            f"| {r.dataset} | {r.verifier} | {r.claims} | {r.threshold:.2f} | "
            f"{r.precision:.3f} | {r.recall:.3f} | {r.f1:.3f} | "
            f"{r.best_f1:.3f} ({r.best_f1_threshold:.2f}) | {kinds} |"
        )
    return "\n".join(lines) + "\n"


def to_json(results: Sequence[VerifierResult]) -> str:
    """The results as JSON."""
    return json.dumps([asdict(r) for r in results], indent=2)


def _prf(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> tuple[float, ...]:
    passed = [s >= threshold for s in scores]
    tp = sum(p and y for p, y in zip(passed, labels, strict=True))
    fp = sum(p and not y for p, y in zip(passed, labels, strict=True))
    fn = sum(not p and y for p, y in zip(passed, labels, strict=True))
    tn = len(labels) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = (tp + tn) / len(labels) if labels else 0.0
    return round(precision, 4), round(recall, 4), round(f1, 4), round(accuracy, 4)


def _change_number(claim: str, passage: str) -> str | None:
    """The claim with its first number that the passage states changed, or None."""
    stated = numbers_in(passage)
    for match in _NUMBER.finditer(claim):
        if match.group() in stated:
            value = float(match.group())
            new = value * 2 if value else 1.0
            text = f"{new:g}"
            return claim[: match.start()] + text + claim[match.end() :]
    return None
