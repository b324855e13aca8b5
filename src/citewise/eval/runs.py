"""Evaluation runs on disk: a configuration snapshot, per-question results and a summary.

A run directory (default ``<data_dir>/eval-runs/<run_id>/``) holds

- ``run.json``: run id, dataset (name, path, sha256, size), the configuration
  snapshot (`config_snapshot`), start and end times and the summary metrics;
- ``results.jsonl``: one `QuestionResult` per line, appended as each question
  finishes, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from citewise.answer.prompt import SYSTEM_PROMPT
from citewise.core.errors import ConfigError
from citewise.core.settings import Settings
from citewise.eval.datasets import QADataset

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"


class QuestionResult(BaseModel):
    """What one question produced: the answer's essentials and its metrics."""

    id: str
    question: str
    tags: list[str] = Field(default_factory=list)
    answerable: bool
    reference: str = ""
    answer: str = ""
    declined: bool = False
    decline_reason: str = ""
    tier: str = ""
    retrieved_doc_ids: list[str] = Field(default_factory=list)
    cited_doc_ids: list[str] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    usage: dict[str, int] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    judge_errors: dict[str, str] = Field(
        default_factory=dict, description="LLM-judged metrics that failed, with the reason."
    )
    error: str = ""


class RunRecord(BaseModel):
    """The contents of ``run.json``."""

    run_id: str
    dataset: dict[str, Any]
    tenant: str
    config: dict[str, Any]
    config_hash: str
    started_at: str
    finished_at: str = ""
    questions: int = 0
    summary: dict[str, float] = Field(default_factory=dict)


def prompt_version() -> str:
    """Short hash of the answer prompt (changes whenever its text does)."""
    return hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest()[:12]


def git_revision(cwd: Path | None = None) -> str:
    """``git rev-parse HEAD`` (with ``+dirty`` for local changes), or ``unknown``."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def config_snapshot(
    settings: Settings, *, use_llm: bool, llm_metrics: bool, tiers: list[str]
) -> dict[str, Any]:
    """What determines the answers: models, retrieval, prompt, tiers, chunking, code revision.

    Secrets are masked (pydantic dumps ``SecretStr`` as stars).
    """
    answer = settings.answer.model_dump(mode="json")
    return {
        "embedder": settings.embedding.model_dump(mode="json"),
        "retrieval": settings.retrieval.model_dump(mode="json"),
        "fusion": settings.retrieval.fusion,
        "top_k": settings.retrieval.top_k,
        "max_passages": settings.answer.max_passages,
        "reranker": settings.retrieval.rerank.model_dump(mode="json"),
        "answer": answer,
        "tiers_configured": [t["name"] for t in answer["tiers"]],
        "tiers_running": tiers,
        "use_llm": use_llm,
        "llm": settings.llm.model_dump(mode="json"),
        "llm_metrics": llm_metrics,
        "chunking": settings.chunking.model_dump(mode="json"),
        "prompt_version": prompt_version(),
        "git_revision": git_revision(),
    }


def config_hash(config: dict[str, Any]) -> str:
    """Hash of the parts of a snapshot that change answers (not the code revision)."""
    stable = {k: v for k, v in config.items() if k != "git_revision"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:12]


def new_run_id(config: dict[str, Any]) -> str:
    """``YYYYmmdd-HHMMSS-<config hash>``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{config_hash(config)[:6]}"


class RunDir:
    """One run's directory: creates it, resumes it, appends results, writes the summary."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def record_path(self) -> Path:
        """``run.json``."""
        return self.path / RUN_FILE

    @property
    def results_path(self) -> Path:
        """``results.jsonl``."""
        return self.path / RESULTS_FILE

    def start(
        self,
        *,
        run_id: str,
        dataset: QADataset,
        dataset_path: Path,
        tenant: str,
        config: dict[str, Any],
    ) -> RunRecord:
        """Create the run, or resume it when it exists with the same dataset and configuration.

        Raises:
            ConfigError: The directory holds a run of another dataset, tenant or configuration.
        """
        record = RunRecord(
            run_id=run_id,
            dataset={
                "name": dataset.name,
                "path": str(dataset_path),
                "sha256": dataset.sha256,
                "items": len(dataset.items),
            },
            tenant=tenant,
            config=config,
            config_hash=config_hash(config),
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        if self.record_path.is_file():
            old = self.load_record()
            if old.dataset["sha256"] != dataset.sha256 or old.tenant != tenant:
                raise ConfigError(
                    f"run {old.run_id} in {self.path} is of another dataset or tenant; "
                    "choose a new run id"
                )
            if old.config_hash != record.config_hash:
                raise ConfigError(
                    f"run {old.run_id} in {self.path} was made with another configuration "
                    f"({old.config_hash} vs {record.config_hash}); choose a new run id"
                )
            record.started_at = old.started_at
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_record(record)
        return record

    def load_record(self) -> RunRecord:
        """Read ``run.json``.

        Raises:
            ConfigError: Missing or invalid.
        """
        try:
            return RunRecord.model_validate_json(self.record_path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"no evaluation run in {self.path} ({RUN_FILE} missing)") from exc
        except ValueError as exc:
            raise ConfigError(f"{self.record_path}: invalid run record") from exc

    def results(self) -> list[QuestionResult]:
        """Per-question results so far (a torn last line, from a kill mid-write, is ignored)."""
        if not self.results_path.is_file():
            return []
        found: dict[str, QuestionResult] = {}
        for line in self.results_path.read_text(encoding="utf-8").splitlines():
            try:
                result = QuestionResult.model_validate_json(line)
            except ValueError:
                continue
            found[result.id] = result
        return list(found.values())

    def append(self, result: QuestionResult) -> None:
        """Append one result and flush it to disk."""
        with self.results_path.open("a", encoding="utf-8") as handle:
            handle.write(result.model_dump_json() + "\n")
            handle.flush()

    def finish(self, record: RunRecord, results: list[QuestionResult]) -> RunRecord:
        """Compute the summary and write it into ``run.json``."""
        record.summary = summarize(results)
        record.questions = len(results)
        record.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._write_record(record)
        return record

    def _write_record(self, record: RunRecord) -> None:
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.record_path)


def resolve_run(value: str, runs_root: Path) -> RunDir:
    """A run given as a directory, a ``run.json`` path or a run id under `runs_root`.

    Raises:
        ConfigError: Nothing matches.
    """
    path = Path(value)
    for candidate in (path, path.parent if path.name == RUN_FILE else None, runs_root / value):
        if candidate is not None and (candidate / RUN_FILE).is_file():
            return RunDir(candidate)
    raise ConfigError(f"no evaluation run {value!r} (looked in {path} and {runs_root / value})")


def summarize(results: list[QuestionResult]) -> dict[str, float]:
    """Summary metrics: mean of every per-question metric, rates, latency percentiles, tokens.

    ``correct_decline_rate`` is over unanswerable questions, ``false_decline_rate`` over
    answerable ones; ``latency.<stage>.p50|p95`` over every question with that stage;
    ``tokens.<kind>.mean|total``; ``errors`` counts questions that raised.
    """
    summary: dict[str, float] = {
        "questions": float(len(results)),
        "answerable": float(sum(r.answerable for r in results)),
        "unanswerable": float(sum(not r.answerable for r in results)),
        "errors": float(sum(bool(r.error) for r in results)),
    }
    names = sorted({k for r in results for k in r.metrics})
    for name in names:
        values = [v for r in results if (v := r.metrics.get(name)) is not None]
        if not values:
            continue
        key = f"{name}_rate" if name in ("correct_decline", "false_decline") else name
        if name in ("latency_ms", "tokens"):
            continue
        summary[key] = float(np.mean(values))
    for stage in sorted({k for r in results for k in r.timings_ms}):
        values = [r.timings_ms[stage] for r in results if stage in r.timings_ms]
        if values:
            summary[f"latency.{stage}.p50"] = float(np.percentile(values, 50))
            summary[f"latency.{stage}.p95"] = float(np.percentile(values, 95))
    kinds = sorted({k for r in results for k in r.usage})
    for kind in kinds:
        values = [r.usage.get(kind, 0) for r in results]
        summary[f"tokens.{kind}.mean"] = float(np.mean(values))
        summary[f"tokens.{kind}.total"] = float(sum(values))
    return {k: v for k, v in summary.items() if math.isfinite(v)}
