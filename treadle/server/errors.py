"""Errors as HTTP responses: the one place they are rendered for the API.

Every error body is JSON with ``error`` (a kind), ``message`` and, where useful, ``hint``
and ``where``. ``detail`` is kept in FastAPI's shape too (a list of ``{loc, msg, type}``
for 422s, text otherwise), so the bodies match the OpenAPI document.
"""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from treadle.errors import PathRefused, ProjectInvalid, TreadleError, UnknownName, UserInputError
from treadle.store.base import StoreUnavailable

log = logging.getLogger("treadle.server")


def error_body(error: TreadleError) -> dict[str, object]:
    """``{"error": kind, "message": …, "hint": …}``; where the database is stays private."""
    if isinstance(error, StoreUnavailable):
        return {"error": "StoreUnavailable", "message": "the metadata database is unavailable"}
    if not isinstance(error, UserInputError):
        return {"error": "InternalError", "message": "an internal error; see the server's log"}
    if isinstance(error, ProjectInvalid):
        return _project_invalid_body(error)
    body: dict[str, object] = {"error": type(error).__name__, "message": error.message}
    if error.location:
        body["where"] = error.location
    if error.hint:
        body["hint"] = error.hint
    return body


def _project_invalid_body(error: ProjectInvalid) -> dict[str, object]:
    """Every problem as ``{file, line, message, hint}``; the message names the first. No
    ``where``: a loaded project's is its folder on the server, which stays private."""
    problems = [
        {"file": p.path, "line": p.line, "message": p.message, "hint": p.hint}
        for p in error.problems
    ]
    message = error.message
    if error.problems:
        more = len(problems) - 1
        message += f": {error.problems[0]}" + (f" (and {more} more)" if more else "")
    return {"error": "ProjectInvalid", "message": message, "problems": problems}


def status_of(error: TreadleError) -> int:
    if isinstance(error, StoreUnavailable):
        return 503
    if isinstance(error, PathRefused):
        return 403
    if isinstance(error, UnknownName):
        return 404
    if isinstance(error, UserInputError):
        return 422
    return 500


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TreadleError)
    async def treadle_error(request: Request, error: TreadleError) -> Response:
        status = status_of(error)
        if status >= 500:
            log.error("API request failed: %s", error)
        body = error_body(error)
        body["detail"] = _as_detail(body, status)
        return _answer(request, body, status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        body = {"error": _KINDS.get(error.status_code, "HTTPError"), "message": message}
        body["detail"] = _as_detail(body, error.status_code)
        return _answer(request, body, error.status_code, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = jsonable_encoder(error.errors(), exclude={"input", "ctx", "url"})
        message = "; ".join(_describe(p) for p in problems[:5]) or "invalid request"
        body = {"error": "InvalidRequest", "message": message, "detail": problems}
        return JSONResponse(body, status_code=422)


def _answer(request: Request, body: dict[str, Any], status: int, headers: Any = None) -> Response:
    """JSON for the API; for a page of the web UI, the same message as a small page."""
    if _is_page(request) and status != 303:
        return HTMLResponse(_error_page(body, status), status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def _is_page(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(("/api/", "/metrics", "/static/"))


def _error_page(body: dict[str, Any], status: int) -> str:
    message, hint = escape(str(body.get("message", ""))), escape(str(body.get("hint") or ""))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Treadle: '
        f'{status}</title><link rel="stylesheet" href="/static/app.css"></head><body><main>'
        f'<h1>{status}: {escape(str(body.get("error", "")))}</h1><p class="error">{message}</p>'
        + (f'<p class="muted">{hint}</p>' if hint else "")
        + '<p><a href="/pipelines">Back to the pipelines</a></p></main></body></html>'
    )


_KINDS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "BodyTooLarge",
    422: "InvalidRequest",
}


def _as_detail(body: dict[str, Any], status: int) -> Any:
    """FastAPI's ``detail``: a list of problems for 422 (what the OpenAPI document says
    a 422 holds), the message otherwise."""
    if status == 422:
        return [{"loc": ["body"], "msg": body["message"], "type": "value_error"}]
    return body["message"]


def _describe(problem: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
    return f"{where}: {problem.get('msg', 'invalid')}" if where else str(problem.get("msg"))
