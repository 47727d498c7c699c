"""The FastAPI app. For now it serves API triggers; the server issue extends it."""

from __future__ import annotations

from fastapi import FastAPI

from treadle.scheduler.service import Scheduler
from treadle.server.api import triggers
from treadle.server.errors import install_error_handlers

API_PREFIX = "/api/v1"


def create_app(scheduler: Scheduler) -> FastAPI:
    """The app for ``scheduler``'s project; runs it starts go to that scheduler."""
    app = FastAPI(
        title="Treadle",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.scheduler = scheduler
    install_error_handlers(app)
    app.include_router(triggers.router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
