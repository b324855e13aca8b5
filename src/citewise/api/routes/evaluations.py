"""A tenant's evaluation runs (admin): list, one run with its results, two compared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from citewise.api.deps import RuntimeDep, TenantPrincipalDep, get_tenant_principal
from citewise.api.errors import error_responses
from citewise.api.ratelimit import request_limit
from citewise.eval.catalog import RunDetail, RunSummary, compare_tenant_runs, list_runs, run_detail
from citewise.eval.compare import Comparison
from citewise.eval.qa import default_runs_root
from citewise.runtime import Runtime

router = APIRouter(
    prefix="/v1/tenants/{tenant}/eval",
    tags=["evaluation"],
    dependencies=[Depends(request_limit(get_tenant_principal))],
    responses=error_responses(401, 403, 404, 422, 429),
)
RunId = Annotated[str, Query(min_length=1, max_length=128, description="A run id of this tenant.")]


def _root(runtime: Runtime) -> Path:
    """Where ``citewise eval qa`` writes runs: ``<data_dir>/eval-runs``."""
    return default_runs_root(runtime.settings.data_dir)


@router.get("/runs", response_model=list[RunSummary])
def eval_runs(principal: TenantPrincipalDep, runtime: RuntimeDep) -> list[RunSummary]:
    """The tenant's evaluation runs, newest first, with their summary metrics."""
    return list_runs(_root(runtime), principal.tenant_id)


@router.get("/runs/{run_id}", response_model=RunDetail)
def eval_run(run_id: str, principal: TenantPrincipalDep, runtime: RuntimeDep) -> RunDetail:
    """One run: dataset, configuration snapshot, summary and every question's result."""
    return run_detail(_root(runtime), principal.tenant_id, run_id)


@router.get("/compare", response_model=Comparison)
def eval_compare(
    principal: TenantPrincipalDep,
    runtime: RuntimeDep,
    base: RunId,
    head: RunId,
    top: Annotated[int, Query(ge=1, le=100, description="Questions that moved most.")] = 10,
) -> Comparison:
    """Per-metric deltas head − base with paired bootstrap 95% CIs, and the questions that moved."""
    return compare_tenant_runs(_root(runtime), principal.tenant_id, base, head, top=top)
