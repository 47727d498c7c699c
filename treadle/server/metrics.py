"""Prometheus metrics at ``/metrics`` (prometheus-client's text format).

Requests are counted and timed by route (the path template, so ids do not explode the
series; API routes are labelled without their ``/api/v1`` prefix) and status; runs are counted by pipeline and status when scraped. Reading them
needs the viewer role, like the rest of the API (Prometheus sends a bearer token).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from treadle.server.auth import Viewer
from treadle.server.state import ServerState


class RunCollector:
    """Runs by pipeline and status, read from the store at each scrape."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def collect(self) -> Any:
        family = GaugeMetricFamily(
            "treadle_runs",
            "Runs in the history, by pipeline and status",
            labels=["pipeline", "status"],
        )
        for (pipeline, status), count in self.state.runs.count_by_status().items():
            family.add_metric([pipeline, status], count)
        yield family


def install(app: FastAPI) -> None:
    disable_created_metrics()  # no *_created series: noise for every counter
    registry = CollectorRegistry()
    requests = Counter(
        "treadle_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    seconds = Histogram(
        "treadle_http_request_seconds", "HTTP request time", ["method", "route"], registry=registry
    )
    registry.register(RunCollector(app.state.treadle))

    app.add_middleware(MeasureRequests, requests=requests, seconds=seconds)

    @app.get("/metrics", tags=["metrics"], response_class=Response)
    def metrics(_: Viewer) -> Response:
        """Prometheus text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class MeasureRequests:
    """Pure ASGI (``BaseHTTPMiddleware`` would wrap errors raised while the body is read
    in an ``ExceptionGroup``, and costs more per request)."""

    def __init__(self, app: Any, requests: Counter, seconds: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.seconds = seconds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noting_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(scope["method"], route, str(status)).inc()
            self.seconds.labels(scope["method"], route).observe(time.perf_counter() - started)
