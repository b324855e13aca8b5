"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from citewise import __version__
from citewise.api.errors import UnhandledErrorMiddleware, install_error_handlers
from citewise.api.limits import BodyLimitMiddleware
from citewise.api.middleware import ObservabilityMiddleware
from citewise.api.ratelimit import RateLimitHeadersMiddleware, build_limiter
from citewise.api.routes import (
    ask,
    conversations,
    documents,
    evaluations,
    feedback,
    health,
    jobs,
    keys,
    me,
    metrics,
    sources,
    stats,
)
from citewise.auth.keys import KeyStore
from citewise.auth.principal import Authenticator
from citewise.core.settings import Settings
from citewise.core.tracing import configure_tracing, tracer_provider
from citewise.runtime import Runtime

CORS_REQUEST_HEADERS = [
    "Authorization",
    "X-API-Key",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Location",
    "Idempotent-Replayed",
    "Content-Disposition",
    "X-Citewise-Version",
]


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the API app.

    Args:
        settings: Process settings.
        runtime: An already open runtime (tests); otherwise the lifespan opens one
            (loading index and models once) and closes it on shutdown.

    With ``queue.api_workers`` > 0 the lifespan also starts that many ingestion
    worker threads (the embedded default: Qdrant Edge is single-process, so the
    process that owns the index ingests) and stops them on shutdown.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or Runtime.open(settings)
        app.state.authenticator = Authenticator(settings.auth, KeyStore(app.state.runtime.db))
        app.state.runtime.warm_up(parsing=settings.queue.api_workers > 0)
        if settings.queue.api_workers > 0:
            app.state.runtime.start_workers(settings.queue.api_workers)
        tracing = configure_tracing(settings.observability)
        try:
            yield
        finally:
            app.state.runtime.stop_workers()
            if owned:
                app.state.runtime.close()
            tracing.shutdown()  # exports the spans still buffered

    app = FastAPI(
        title="Citewise",
        version=__version__,
        summary="Answers from your documents, every claim cited.",
        lifespan=lifespan,
        # FastAPI's own server span per request (route template, status), on Citewise's
        # provider; Prometheus has the metrics, structlog the logs.
        telemetry={"tracer_provider": tracer_provider(), "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    app.state.limiter = build_limiter(settings.limits)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=int(settings.ingest.max_request_mb * 1024 * 1024),
        json_max_bytes=settings.api.max_json_kb * 1024,
    )
    app.add_middleware(UnhandledErrorMiddleware)  # a 500 in the error shape, logged with its id
    if settings.api.cors_origins:  # none configured: no CORS headers, browsers stay same-origin
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    app.state.observability = settings.observability
    app.add_middleware(ObservabilityMiddleware)  # added last: outermost, sees every response
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(ask.router)
    app.include_router(conversations.router)
    app.include_router(documents.router)
    app.include_router(jobs.router)
    app.include_router(keys.router)
    app.include_router(feedback.router)
    app.include_router(me.router)
    app.include_router(sources.router)
    app.include_router(stats.router)
    app.include_router(evaluations.router)
    return app
