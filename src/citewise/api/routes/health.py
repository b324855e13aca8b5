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
    """Models, index and database are loaded and usable (503 while something needed is down).

    The rate limits' store counts as needed only when ``limits.on_storage_error`` is
    refuse; with allow, its being down is reported but the replica stays in rotation.
    """
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        response.status_code = 503
        return Health(status="starting")
    checks = {"index": runtime.settings.index.backend, "embedder": "ok"}
    needed = ["database"]
    checks["database"] = "ok" if runtime.db.reachable() else "down"
    if runtime.llm_server is not None:
        checks["llm"] = "ok" if runtime.llm_server.is_running else "down"
        needed.append("llm")
    limiter = getattr(request.app.state, "limiter", None)
    if limiter is not None:
        checks["limits"] = "ok" if limiter.storage_reachable() else "down"
        if limiter.settings.on_storage_error == "refuse":
            needed.append("limits")
    ready = all(checks[name] == "ok" for name in needed)
    if not ready:
        response.status_code = 503
    return Health(status="ready" if ready else "degraded", checks=checks)
