"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from citewise import __version__
from citewise.api.errors import install_error_handlers
from citewise.api.routes import ask, health
from citewise.core.settings import Settings
from citewise.runtime import Runtime


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the API app.

    Args:
        settings: Process settings.
        runtime: An already open runtime (tests); otherwise the lifespan opens one
            (loading index and models once) and closes it on shutdown.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or Runtime.open(settings)
        app.state.runtime.warm_up()
        try:
            yield
        finally:
            if owned:
                app.state.runtime.close()

    app = FastAPI(
        title="Citewise",
        version=__version__,
        summary="Answers from your documents, every claim cited.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(ask.router)
    return app
