"""Treadle's errors as HTTP responses: the one place they are rendered for the API."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from treadle.errors import TreadleError, UnknownName, UserInputError
from treadle.store.base import StoreUnavailable

log = logging.getLogger("treadle.server")


def error_body(error: TreadleError) -> dict[str, object]:
    """``{"error": kind, "message": …, "hint": …}``; where the database is stays private."""
    if isinstance(error, StoreUnavailable):
        return {"error": "StoreUnavailable", "message": "the metadata database is unavailable"}
    if not isinstance(error, UserInputError):
        return {"error": "InternalError", "message": "an internal error; see the server's log"}
    body: dict[str, object] = {"error": type(error).__name__, "message": error.message}
    if error.location:
        body["where"] = error.location
    if error.hint:
        body["hint"] = error.hint
    return body


def status_of(error: TreadleError) -> int:
    if isinstance(error, StoreUnavailable):
        return 503
    if isinstance(error, UnknownName):
        return 404
    if isinstance(error, UserInputError):
        return 422
    return 500


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TreadleError)
    async def treadle_error(_: Request, error: TreadleError) -> JSONResponse:
        status = status_of(error)
        if status >= 500:
            log.error("API request failed: %s", error)
        return JSONResponse(error_body(error), status_code=status)
