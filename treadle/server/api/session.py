"""``/api/v1/session``: sign in (a session cookie and its CSRF token), who am I, sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from treadle.server.auth import (
    SESSION_COOKIE,
    Principal,
    State,
    audit,
    authenticate,
    unauthorized,
)
from treadle.store.access import SESSION_SECONDS

router = APIRouter(prefix="/session", tags=["session"])


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class SessionInfo(BaseModel):
    user: str
    role: str
    via: str = Field(description="session, token, or open (auth is off)")
    csrf_token: str | None = Field(
        default=None, description="send it as X-CSRF-Token with every change made by cookie"
    )


def _info(principal: Principal) -> SessionInfo:
    csrf = principal.session.csrf_token if principal.session else None
    return SessionInfo(
        user=principal.name, role=principal.role.value, via=principal.via, csrf_token=csrf
    )


@router.post(
    "", response_model=SessionInfo, responses={401: {"description": "wrong name or password"}}
)
def sign_in(body: Credentials, request: Request, response: Response, state: State) -> SessionInfo:
    """Check the password; on success set the session cookie and return the CSRF token."""
    user = state.access.verify_password(body.name, body.password)
    if user is None:
        audit(request, "anonymous", "login.failed", body.name)
        raise unauthorized("wrong user name or password")
    value, session = state.access.create_session(user)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(SESSION_SECONDS),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https"
        or state.scheduler.project.settings.base_url.startswith("https://"),
        path="/",
    )
    audit(request, user.name, "login.succeeded", user.name)
    return _info(Principal(user.name, user.role, "session", session))


@router.get("", response_model=SessionInfo)
def who_am_i(principal: Annotated[Principal, Depends(authenticate)]) -> SessionInfo:
    """The caller, and the CSRF token of their session."""
    return _info(principal)


@router.delete("", status_code=204)
def sign_out(
    request: Request,
    response: Response,
    state: State,
    principal: Annotated[Principal, Depends(authenticate)],
) -> Response:
    """End the session (a no-op for API tokens)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if principal.via == "session" and cookie:
        state.access.end_session(cookie)
        audit(request, principal, "logout", principal.name)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
