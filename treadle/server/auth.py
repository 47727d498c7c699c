"""Who is calling, and whether their role allows what they ask: one ``Depends``.

A caller proves who they are with an API token (``Authorization: Bearer trd_…``) or a
browser session cookie (``treadle_session``, from ``POST /api/v1/session``). A request
that changes something through a session must also send the session's CSRF token in the
``X-CSRF-Token`` header: another site can make the browser send the cookie, but cannot
read the token. Bearer tokens need no CSRF token (browsers never add them on their own).

With ``auth: false`` (only allowed on 127.0.0.1) every caller acts as an admin.

Use it as ``principal: Editor`` in a handler's parameters (or ``Viewer``, ``Admin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from treadle.server.state import ServerState, server_state
from treadle.store.access import Role, Session, csrf_matches

SESSION_COOKIE = "treadle_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="an API token (`treadle tokens create`)")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="a browser session")


@dataclass(frozen=True)
class Principal:
    """The caller of a request."""

    name: str
    role: Role
    via: str  # "token", "session", or "open" (auth is off)
    session: Session | None = None


def unauthorized(detail: str = "sign in, or send an API token") -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    """The caller, or 401. A session used to change something must carry its CSRF token."""
    state = server_state(request)
    if not state.auth:
        return Principal("local", Role.ADMIN, "open")
    if bearer is not None:
        user = state.access.user_for_token(bearer.credentials)
        if user is None:
            raise unauthorized("unknown or revoked API token")
        return Principal(user.name, user.role, "token")
    if cookie:
        session = state.access.session(cookie)
        if session is None:
            raise unauthorized("the session has ended; sign in again")
        if request.method not in SAFE_METHODS and not csrf_matches(
            session, request.headers.get(CSRF_HEADER)
        ):
            raise HTTPException(
                403, detail=f"missing or wrong {CSRF_HEADER} header (see GET /api/v1/session)"
            )
        return Principal(session.user.name, session.user.role, "session", session)
    raise unauthorized()


def require(role: Role):  # noqa: ANN201 - a FastAPI dependency
    """A dependency that gives the caller when their role allows ``role``'s actions."""

    def allowed(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.role.allows(role):
            raise HTTPException(
                403,
                detail=f"this needs the {role.value} role; {principal.name} is a {principal.role.value}",
            )
        return principal

    return allowed


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Editor = Annotated[Principal, Depends(require(Role.EDITOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
State = Annotated[ServerState, Depends(server_state)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def audit(
    request: Request,
    who: Principal | str,
    action: str,
    target: str = "",
    **detail: object,
) -> None:
    """Record an action in the audit trail: who, what, on what, from where."""
    actor = who if isinstance(who, str) else who.name
    server_state(request).audit.record(
        actor, action, target, origin=client_address(request), detail=detail or None
    )
