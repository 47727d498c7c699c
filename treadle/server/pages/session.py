"""``/login`` and ``/``: the sign-in page (the form signs in through ``POST
/api/v1/session``) and the front page (the pipelines)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from treadle.server.pages.rendering import page

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=RedirectResponse)
def front() -> RedirectResponse:
    return RedirectResponse("/pipelines", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, next: str = "/pipelines") -> HTMLResponse:
    if not next.startswith("/") or next.startswith("//"):  # never off to another site
        next = "/pipelines"
    return page(request, "login.html", None, next=next)
