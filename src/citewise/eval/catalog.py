"""The evaluation runs of a tenant, found on disk under the runs root.

A run belongs to the tenant recorded in its ``run.json``; another tenant's run
answers like one that does not exist. Run ids are looked up, never used as
paths as given: an id must match `RUN_ID_PATTERN` (no separators, no leading
dot), and the directory found must sit directly under the runs root.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field

from citewise.core.errors import ConfigError, NotFoundError
from citewise.eval.compare import Comparison, compare_runs
from citewise.eval.runs import RUN_FILE, QuestionResult, RunDir, RunRecord

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""What a run id may look like (``YYYYmmdd-HHMMSS-<hash>`` by default)."""


class RunSummary(BaseModel):
    """One evaluation run in a list: what ran, when, and its summary metrics."""

    run_id: str
    tenant: str
    dataset: str = Field(description="The dataset's name.")
    dataset_items: int = Field(description="Questions in the dataset.")
    started_at: str = Field(description="ISO 8601, UTC.")
    finished_at: str = Field(description="ISO 8601, UTC; empty while running or interrupted.")
    finished: bool
    questions: int = Field(description="Questions scored (when finished).")
    summary: dict[str, float] = Field(
        description="Summary metrics (means, rates, latency percentiles, tokens)."
    )
    config_hash: str = Field(description="Hash of the configuration that shapes answers.")
    git_revision: str = Field(description="Code revision of the run ('unknown' if not known).")
    prompt_version: str = Field(description="Hash of the answer prompt ('' if not recorded).")
    use_llm: bool | None = Field(description="Whether LLM tiers answered (None if not recorded).")

    @classmethod
    def of(cls, record: RunRecord) -> RunSummary:
        """Summary of a run record."""
        config = record.config
        use_llm = config.get("use_llm")
        return cls(
            run_id=record.run_id,
            tenant=record.tenant,
            dataset=str(record.dataset.get("name", "")),
            dataset_items=int(record.dataset.get("items", 0) or 0),
            started_at=record.started_at,
            finished_at=record.finished_at,
            finished=bool(record.finished_at),
            questions=record.questions,
            summary=record.summary,
            config_hash=record.config_hash,
            git_revision=str(config.get("git_revision", "unknown")),
            prompt_version=str(config.get("prompt_version", "")),
            use_llm=use_llm if isinstance(use_llm, bool) else None,
        )


class RunDetail(RunRecord):
    """A run's record with every question's result."""

    results: list[QuestionResult] = Field(description="Per-question results, in run order.")


def _read(path: Path) -> RunRecord | None:
    """The record of the run directory `path` (None: not a readable run; symlinks ignored)."""
    if not path.is_dir() or path.is_symlink() or not (path / RUN_FILE).is_file():
        return None
    try:
        return RunDir(path).load_record()
    except ConfigError:
        return None


def _runs(root: Path, tenant: str) -> list[tuple[RunDir, RunRecord]]:
    """Readable runs of `tenant` directly under `root` (unreadable ones are skipped)."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        record = _read(path)
        if record is not None and record.tenant == tenant:
            found.append((RunDir(path), record))
    return found


def list_runs(root: Path, tenant: str) -> list[RunSummary]:
    """The tenant's runs, newest first."""
    runs = [RunSummary.of(record) for _, record in _runs(root, tenant)]
    return sorted(runs, key=lambda r: (r.started_at, r.run_id), reverse=True)


def find_run(root: Path, tenant: str, run_id: str) -> tuple[RunDir, RunRecord]:
    """The tenant's run with this id.

    Raises:
        NotFoundError: A malformed id, no such run, or another tenant's.
    """
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise NotFoundError(f"no evaluation run {run_id[:80]!r}")
    record = _read(root / run_id)
    if record is not None and record.tenant == tenant and record.run_id == run_id:
        return RunDir(root / run_id), record
    for run, record in _runs(root, tenant):  # a run whose directory has another name
        if record.run_id == run_id:
            return run, record
    raise NotFoundError(f"no evaluation run {run_id!r}")


def run_detail(root: Path, tenant: str, run_id: str) -> RunDetail:
    """A run of the tenant with its per-question results."""
    run, record = find_run(root, tenant, run_id)
    return RunDetail(**record.model_dump(), results=run.results())


def compare_tenant_runs(
    root: Path, tenant: str, base: str, head: str, *, top: int = 10
) -> Comparison:
    """Compare two of the tenant's runs (`base` is A, `head` is B)."""
    run_a, _ = find_run(root, tenant, base)
    run_b, _ = find_run(root, tenant, head)
    return compare_runs(run_a, run_b, top=top)
