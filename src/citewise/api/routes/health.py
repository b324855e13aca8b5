"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from citewise.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health)
def readyz(request: Request, response: Response) -> Health:
    """Models, index and database are loaded and usable."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        response.status_code = 503
        return Health(status="starting")
    checks = {"index": runtime.settings.index.backend, "embedder": "ok"}
    if runtime.llm_server is not None:
        checks["llm"] = "ok" if runtime.llm_server.is_running else "down"
    ready = checks.get("llm", "ok") == "ok"
    if not ready:
        response.status_code = 503
    return Health(status="ready" if ready else "degraded", checks=checks)
