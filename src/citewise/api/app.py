"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from citewise import __version__
from citewise.api.errors import install_error_handlers
from citewise.api.limits import BodyLimitMiddleware
from citewise.api.routes import ask, conversations, documents, health, jobs
from citewise.core.settings import Settings
from citewise.runtime import Runtime


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
        app.state.runtime.warm_up()
        if settings.queue.api_workers > 0:
            app.state.runtime.start_workers(settings.queue.api_workers)
        try:
            yield
        finally:
            app.state.runtime.stop_workers()
            if owned:
                app.state.runtime.close()

    app = FastAPI(
        title="Citewise",
        version=__version__,
        summary="Answers from your documents, every claim cited.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=int(settings.ingest.max_request_mb * 1024 * 1024)
    )
    app.include_router(health.router)
    app.include_router(ask.router)
    app.include_router(conversations.router)
    app.include_router(documents.router)
    app.include_router(jobs.router)
    return app
