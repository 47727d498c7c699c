"""Prometheus metrics at ``/metrics`` (prometheus-client's text format).

Requests are counted and timed by route (the path template, so ids do not explode the
series) and status; runs are counted by pipeline and status when scraped. Reading them
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


def install(app: FastAPI, api_prefix: str) -> None:
    disable_created_metrics()  # no *_created series: noise for every counter
    registry = CollectorRegistry()
    requests = Counter(
        "treadle_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    seconds = Histogram(
        "treadle_http_request_seconds", "HTTP request time", ["method", "route"], registry=registry
    )
    registry.register(RunCollector(app.state.treadle))

    app.add_middleware(MeasureRequests, requests=requests, seconds=seconds, api_prefix=api_prefix)

    @app.get("/metrics", tags=["metrics"], response_class=Response)
    def metrics(_: Viewer) -> Response:
        """Prometheus text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class MeasureRequests:
    """Pure ASGI (``BaseHTTPMiddleware`` would wrap errors raised while the body is read
    in an ``ExceptionGroup``, and costs more per request)."""

    def __init__(self, app: Any, requests: Counter, seconds: Histogram, api_prefix: str) -> None:
        self.app = app
        self.requests = requests
        self.seconds = seconds
        self.api_prefix = api_prefix

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
            route = self._route_label(scope)
            self.requests.labels(scope["method"], route, str(status)).inc()
            self.seconds.labels(scope["method"], route).observe(time.perf_counter() - started)

    def _route_label(self, scope: dict[str, Any]) -> str:
        """The matched route's path template with the API prefix: FastAPI (0.16x) matches an
        included router's routes by their own path, without the prefix it was included with."""
        route = getattr(scope.get("route"), "path", None)
        if route is None:
            return "unmatched"
        prefix = self.api_prefix
        if scope["path"].startswith(prefix + "/") and not route.startswith(prefix + "/"):
            return prefix + route
        return route
