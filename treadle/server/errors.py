"""Treadle's errors as HTTP responses: the one place they are rendered for the API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from treadle.errors import TreadleError, UnknownName, UserInputError
from treadle.store.base import StoreUnavailable


def error_body(error: TreadleError) -> dict[str, object]:
    body: dict[str, object] = {"error": type(error).__name__, "message": str(error)}
    hint = getattr(error, "hint", None)
    if hint:
        body["hint"] = hint
    return body


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TreadleError)
    async def treadle_error(_: Request, error: TreadleError) -> JSONResponse:
        if isinstance(error, StoreUnavailable):
            status = 503
        elif isinstance(error, UnknownName):
            status = 404
        elif isinstance(error, UserInputError):
            status = 422
        else:
            status = 500
        return JSONResponse(error_body(error), status_code=status)
