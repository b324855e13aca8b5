"""`eval qa`, `eval compare` and the regression gate on the sample set, through the real pipeline.

The gate test is CI's regression gate: the committed baseline's questions, extractive tier,
no LLM metrics. It also proves that the gate fails on a degraded configuration (one
passage per answer instead of four).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from citewise.answer.pipeline import QAPipeline
from citewise.eval.compare import compare_runs
from citewise.eval.datasets import load_qa
from citewise.eval.gate import check, load_baseline
from citewise.eval.qa import evaluate_dataset
from citewise.eval.report import html_report
from citewise.retrieval.search import Retriever
from tests.conftest import ROOT, SAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASELINE = ROOT / "samples" / "kestrel-qa-baseline.json"
SAMPLE_SET = ROOT / "samples" / "kestrel-qa.jsonl"


def _degraded(runtime, max_passages: int):  # type: ignore[no-untyped-def]
    """The same runtime with a pipeline that shows the model `max_passages` passages."""
    settings = runtime.settings.model_copy(deep=True)
    settings.answer = settings.answer.model_copy(update={"max_passages": max_passages})
    retriever = Retriever(
        settings.retrieval,
        embedder=runtime.embedder,
        store=runtime.store,
        reranker=runtime.retriever.reranker,
    )
    pipeline = QAPipeline(
        settings.answer, retriever=retriever, embedder=runtime.embedder, chat_tiers={}
    )
    return dataclasses.replace(runtime, settings=settings, retriever=retriever, pipeline=pipeline)


def test_gate_passes_on_the_sample_set_and_fails_when_degraded(
    demo_runtime, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    baseline = load_baseline(BASELINE)
    dataset = load_qa(BASELINE.parent / baseline.dataset).select(baseline.ids)
    good_dir, record, results = evaluate_dataset(
        demo_runtime, dataset, SAMPLE_SET, tenant="demo", use_llm=False, run_dir=tmp_path / "good"
    )
    assert len(results) == len(dataset.items) and not any(r.error for r in results)
    failed = [c for c in check(record.summary, baseline) if not c.passed]
    assert not failed, failed
    assert record.summary["citation_validity"] == 1.0
    assert record.config["max_passages"] == 4 and record.config["prompt_version"]
    assert all(r.tier == "extractive" for r in results if not r.declined)

    # Resuming finds every question done and asks nothing again.
    lines = good_dir.results_path.read_text().count("\n")
    evaluate_dataset(
        demo_runtime, dataset, SAMPLE_SET, tenant="demo", use_llm=False, run_dir=tmp_path / "good"
    )
    assert good_dir.results_path.read_text().count("\n") == lines

    bad_dir, bad, _ = evaluate_dataset(
        _degraded(demo_runtime, 1), dataset, SAMPLE_SET, tenant="demo", use_llm=False,
        run_dir=tmp_path / "bad",
    )  # fmt: skip
    failed = {c.metric for c in check(bad.summary, baseline) if not c.passed}
    assert "id_context_recall" in failed, bad.summary

    comparison = compare_runs(good_dir, bad_dir)
    assert comparison.config_changes["max_passages"] == [4, 1]
    recall = next(m for m in comparison.metrics if m.metric == "id_context_recall")
    assert recall.delta < 0 and recall.ci_low < 0
    assert comparison.changed and "data:image/png;base64," in html_report(comparison)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _citewise(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "citewise.cli", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_cli_eval_qa_resume_compare_and_gate(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CITEWISE_DATA_DIR": str(tmp_path / "data"),
        "CITEWISE_API__PORT": str(_free_port()),
        "HF_HUB_OFFLINE": "1",
    }
    ingest = _citewise("ingest", str(SAMPLES / "employee-handbook.md"), "--tenant", "t1", env=env)
    assert ingest.returncode == 0, ingest.stderr
    qa = ["eval", "qa", "--dataset", str(SAMPLE_SET), "--tenant", "t1", "--limit", "3", "--no-llm"]
    first = _citewise(*qa, "--run-id", "a", "--json", str(tmp_path / "a.json"), env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith("run_id = a")
    payload = json.loads((tmp_path / "a.json").read_text())
    assert [r["id"] for r in payload["results"]] == ["hb-01", "hb-02", "hb-03"]
    assert payload["config"]["git_revision"] and payload["dataset"]["sha256"]
    assert "id_context_recall" in first.stderr and "rouge_l" in first.stderr

    # Another configuration under the same run id is refused, not mixed into it.
    env_b = {**env, "CITEWISE_ANSWER__MAX_PASSAGES": "1"}
    clash = _citewise(*qa, "--run-id", "a", env=env_b)
    assert clash.returncode == 1 and "another configuration" in clash.stderr
    assert _citewise(*qa, "--run-id", "b", env=env_b).returncode == 0

    compare = _citewise("eval", "compare", "a", "b", "--html", str(tmp_path / "r.html"), env=env)
    assert compare.returncode == 0, compare.stderr
    assert "answer.max_passages" in compare.stdout and "95% CI" in compare.stdout
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")

    base = tmp_path / "baseline.json"
    made = _citewise("eval", "baseline", "a", "--out", str(base), env=env)
    assert made.returncode == 0, made.stderr
    passed = _citewise("eval", "gate", "--baseline", str(base), "--run", "a", env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    spec = json.loads(base.read_text())
    spec["metrics"]["rouge_l"] = {"value": 1.0, "tolerance": 0.0}
    base.write_text(json.dumps(spec))
    failed = _citewise("eval", "gate", "--baseline", str(base), "--run", "a", env=env)
    assert failed.returncode == 1 and "FAIL" in failed.stdout
    missing = _citewise("eval", "gate", "--baseline", str(tmp_path / "nope.json"), env=env)
    assert missing.returncode == 2 and "cannot read baseline" in missing.stderr


def test_ragas_embeddings_adapter_wraps_the_citewise_embedder(embedder) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from citewise.eval.ragas_llm import CitewiseEmbeddings

    adapter = CitewiseEmbeddings(embedder)
    texts = ["Passwords must be at least 14 characters long.", "Screens lock after 5 minutes."]
    docs = adapter.embed_documents(texts)
    query = adapter.embed_query(texts[0])
    assert len(docs) == 2 and len(query) == embedder.settings.dimensions
    assert np.dot(docs[0], query) > 0.99 > np.dot(docs[1], query)
