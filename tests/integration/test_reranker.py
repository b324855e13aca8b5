"""Train a cross-encoder reranker on a BEIR-format fixture and use it, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from citewise.eval.beir import load_beir
from citewise.eval.reranker import split_folds
from citewise.retrieval.rerank.cross_encoder import CrossEncoderReranker
from citewise.retrieval.rerank.training import read_training_report
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BEIR_MINI = ROOT / "tests" / "fixtures" / "beir-mini"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "citewise.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], dict]:  # type: ignore[type-arg]
    data = tmp_path_factory.mktemp("rerank-data")
    # One torch thread: the tiny training run is then the same on a busy machine (with
    # several threads, its float sums depend on how the threads were scheduled).
    env = {**os.environ, "CITEWISE_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1",
           "CITEWISE_API__PORT": "9", "OMP_NUM_THREADS": "1"}  # fmt: skip
    out = data / "train.json"
    result = _cli(
        "reranker", "train", "--beir", str(BEIR_MINI), "--split", "test", "--name", "mini",
        "--folds", "2", "--held-out", "0", "--epochs", "10", "--learning-rate", "2e-4",
        "--batch-size", "2", "--max-length", "96", "--negatives", "4", "--layers", "3",
        "--json", str(out), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("nDCG@10 = ")
    return data, env, json.loads(out.read_text())


def test_training_saves_a_model_that_never_saw_the_held_out_fold(trained) -> None:  # type: ignore[no-untyped-def]
    data, _env, payload = trained
    model_dir = data / "models" / "rerankers" / "mini"
    assert json.loads((model_dir / "config.json").read_text())["num_hidden_layers"] == 3
    report = read_training_report(model_dir)
    assert report is not None and report.examples > 0 and report.steps > 0
    dataset = load_beir(BEIR_MINI, "test")
    train_ids, test_ids = split_folds(dataset.queries, 2, 0)
    assert set(report.trained_on["query_ids"]) == set(train_ids)
    assert not set(report.trained_on["query_ids"]) & set(test_ids)
    # Scores were reported for the held-out fold only, for both modes.
    results = {r["mode"]: r for r in payload["results"]}
    assert set(results) == {"hybrid", "hybrid+rerank"}
    assert results["hybrid+rerank"]["queries"] == len(test_ids)
    assert payload["folds"][0]["test_queries"] == len(test_ids)


def test_the_trained_model_learned_its_training_pairs(trained) -> None:  # type: ignore[no-untyped-def]
    # Memorising the training pairs is the least a working training loop must do:
    # the relevant abstract of each training query outscores the others.
    data, _env, _payload = trained
    model_dir = data / "models" / "rerankers" / "mini"
    report = read_training_report(model_dir)
    assert report is not None
    dataset = load_beir(BEIR_MINI, "test")
    docs = {d.doc_id: f"{d.title}\n{d.text}" for d in dataset.corpus}
    reranker = CrossEncoderReranker(str(model_dir), quantize=False)
    wins = total = 0
    for query_id in report.trained_on["query_ids"]:
        relevant = set(dataset.qrels[query_id])
        ids = list(docs)
        values = reranker.score(dataset.queries[query_id], [docs[i] for i in ids])
        scores = dict(zip(ids, values, strict=True))
        for r in relevant:
            for other in set(ids) - relevant:
                wins += scores[r] > scores[other]
                total += 1
    assert wins / total > 0.8


def test_eval_scores_only_the_queries_the_reranker_was_not_trained_on(trained) -> None:  # type: ignore[no-untyped-def]
    data, env, _payload = trained
    out = data / "eval.json"
    result = _cli(
        "eval", "retrieval", "--beir", str(BEIR_MINI), "--split", "test", "--mode", "hybrid",
        "--mode", "hybrid+rerank", "--reranker", "trained:mini", "--json", str(out), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    _train_ids, test_ids = split_folds(load_beir(BEIR_MINI, "test").queries, 2, 0)
    assert [r["queries"] for r in report["results"]] == [len(test_ids)] * 2
    assert "not trained on" in report["note"]


def test_hybrid_rerank_without_a_reranker_is_a_clear_error(trained) -> None:  # type: ignore[no-untyped-def]
    _data, env, _payload = trained
    result = _cli(
        "eval", "retrieval", "--beir", str(BEIR_MINI), "--split", "test",
        "--mode", "hybrid+rerank", env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert "needs a reranker" in result.stderr


def test_quantized_reranker_loads_and_scores_every_passage(trained) -> None:  # type: ignore[no-untyped-def]
    # int8 is an opt-in speed trade (its accuracy cost is measured in docs/evaluation.md).
    data, _env, _payload = trained
    model_dir = str(data / "models" / "rerankers" / "mini")
    dataset = load_beir(BEIR_MINI, "test")
    passages = [f"{d.title}\n{d.text}" for d in dataset.corpus]
    scores = CrossEncoderReranker(model_dir, quantize=True).score("aspirin", passages)
    assert scores.shape == (len(passages),) and np.isfinite(scores).all()
