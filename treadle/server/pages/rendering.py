"""What every page shares: the templates, who is signed in, and rendering."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from treadle.server.auth import SESSION_COOKIE, Principal
from treadle.server.state import ServerState, server_state
from treadle.store.access import Role

templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")


def middle_cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut in the middle: names that share a
    start (``export_green_taxi_duckdb``, ``…_parquet``) stay told apart by their ends."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2 :]


def inline_code(text: str) -> Markup:
    """``text`` escaped, its `backquoted` parts as <code> (descriptions are written so)."""
    escaped = str(escape(text))
    return Markup(re.sub(r"`([^`\n]+)`", r"<code>\1</code>", escaped))


templates.env.filters["middle_cut"] = middle_cut
templates.env.filters["inline_code"] = inline_code


def signed_in(request: Request) -> Principal:
    """The signed-in user of a page; a visitor without a session goes to the login page."""
    state = server_state(request)
    if not state.auth:
        return Principal("local", Role.ADMIN, "open")
    cookie = request.cookies.get(SESSION_COOKIE)
    session = state.access.session(cookie) if cookie else None
    if session is None:
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        raise HTTPException(
            303, detail="sign in first", headers={"Location": f"/login?next={target}"}
        )
    return Principal(session.user.name, session.user.role, "session", session)


User = Annotated[Principal, Depends(signed_in)]
PageState = Annotated[ServerState, Depends(server_state)]


def page(request: Request, template: str, user: Principal | None, **context: Any) -> HTMLResponse:
    """Render ``template`` with what the layout needs (the user, their CSRF token, roles)."""
    csrf = user.session.csrf_token if user and user.session else ""
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "csrf": csrf,
            "can_edit": bool(user and user.role.allows(Role.EDITOR)),
            "is_admin": bool(user and user.role.allows(Role.ADMIN)),
            "project": server_state(request).scheduler.project.settings.name,
            **context,
        },
    )
