"""`citewise eval retrieval` on a small BEIR-format fixture, through the real paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from citewise.core.errors import ConfigError
from citewise.eval.beir import load_beir
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BEIR_MINI = ROOT / "tests" / "fixtures" / "beir-mini"


def test_loader_keeps_only_judged_queries() -> None:
    dataset = load_beir(BEIR_MINI, "test")
    assert len(dataset.corpus) == 12
    assert set(dataset.queries) == {f"q{i}" for i in range(1, 9)}
    assert dataset.qrels["q7"] == {"d8": 1, "d6": 1}


def test_loader_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing corpus"):
        load_beir(tmp_path, "test")
    with pytest.raises(ConfigError, match="missing qrels"):
        load_beir(BEIR_MINI, "dev")


def test_cli_evaluates_every_mode_and_reuses_the_corpus(tmp_path: Path) -> None:
    env = {**os.environ, "CITEWISE_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1",
           "CITEWISE_API__PORT": "9"}  # fmt: skip
    out = tmp_path / "result.json"
    command = [
        sys.executable, "-m", "citewise.cli", "eval", "retrieval", "--beir", str(BEIR_MINI),
        "--split", "test", "--mode", "bm25", "--mode", "dense", "--mode", "hybrid",
        "--json", str(out), "--markdown", str(tmp_path / "table.md"),
    ]  # fmt: skip
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    last_line = first.stdout.strip().splitlines()[-1]
    assert last_line.startswith("nDCG@10 = ")
    report = json.loads(out.read_text())
    scores = {r["mode"]: r["metrics"]["ndcg@10"] for r in report["results"]}
    assert set(scores) == {"bm25", "dense", "hybrid"}
    assert float(last_line.split("= ")[1]) == pytest.approx(scores["hybrid"], abs=1e-4)
    assert scores["hybrid"] > 0.8 and scores["dense"] > 0.7 and scores["bm25"] > 0.5
    assert report["documents"] == 12 and report["chunks"] == 12 and report["indexed_now"] == 12
    assert "| hybrid |" in (tmp_path / "table.md").read_text()

    # The second run finds every document unchanged and does not re-index.
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    again = json.loads(out.read_text())
    assert again["chunks"] == 12 and again["indexed_now"] == 0
