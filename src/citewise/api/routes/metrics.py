"""GET /metrics: every Citewise series in the Prometheus text format.

Open by default, like most exporters: production should scrape it on an
internal network (or behind the ingress's own rule). With
``observability.metrics_token`` set it needs ``Authorization: Bearer <token>``.
It does not use the API's credentials, so a scraper needs no tenant key.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from citewise.api.errors import error_body
from citewise.core.db import JOB_STATUSES, JobRecord
from citewise.core.metrics import BREAKER_STATE, QUEUE_DEPTH, REGISTRY
from citewise.runtime import Runtime

router = APIRouter(tags=["operations"])

BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def refresh_gauges(runtime: Runtime) -> None:
    """Set the gauges read at scrape time: jobs by status (one query), breaker states."""
    with runtime.db.session() as session:
        counts = dict(
            session.execute(select(JobRecord.status, func.count()).group_by(JobRecord.status)).all()
        )
    for status in {*JOB_STATUSES, *counts}:
        QUEUE_DEPTH.labels(status=status).set(counts.get(status, 0))
    for tier in runtime.pipeline.tier_status():
        if tier.breaker is not None:
            BREAKER_STATE.labels(tier=tier.name).set(BREAKER_VALUES[tier.breaker.state])


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus metrics (queue depth and breaker states are read now)."""
    runtime: Runtime = request.app.state.runtime
    token = request.app.state.observability.metrics_token
    if token is not None and not _authorized(request, token.get_secret_value()):
        return JSONResponse(
            status_code=401,
            content=error_body("unauthenticated", "/metrics needs its bearer token"),
            headers={"WWW-Authenticate": "Bearer"},
        )
    refresh_gauges(runtime)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
