"""The FastAPI app: the JSON API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``),
the web UI's pages (``server/pages/``, assets under ``/static``), Prometheus metrics at
``/metrics``.

Each resource has its router in ``server/api/``; who may call what is decided by one
dependency (``server/auth.py``); errors become JSON in ``server/errors.py`` only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from treadle.server import metrics
from treadle.server.api import ROUTERS
from treadle.server.errors import install_error_handlers
from treadle.server.limits import BodyLimit, SecurityHeaders
from treadle.server.pages import ROUTERS as PAGES
from treadle.server.state import ServerState

API_PREFIX = "/api/v1"
STATIC = Path(__file__).with_name("static")


def create_app(state: ServerState) -> FastAPI:
    """The app serving ``state``'s project."""
    app = FastAPI(
        title="Treadle",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served below, with Swagger UI from the package instead of a CDN
        redoc_url=None,
    )
    app.state.treadle = state
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    for router in PAGES:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _serve_api_docs(app)
    metrics.install(app, API_PREFIX)
    app.add_middleware(BodyLimit, max_bytes=state.scheduler.project.settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, no_policy_paths=(f"{API_PREFIX}/docs",))

    return app


def _serve_api_docs(app: FastAPI) -> None:
    """Swagger UI at ``/api/v1/docs``, its files vendored (``scripts/vendor_assets.py``)."""
    swagger = "/static/vendor/swagger-ui-dist"

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{API_PREFIX}/openapi.json",
            title="Treadle API",
            swagger_js_url=f"{swagger}/swagger-ui-bundle.js",
            swagger_css_url=f"{swagger}/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )
