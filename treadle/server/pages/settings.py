"""``/connections`` (profiles, a test button, secrets for admins), ``/files`` (the project's
files with an editor, confined to the project) and ``/settings`` (tokens; users and the
audit trail for admins)."""

from __future__ import annotations

from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from treadle.errors import PathRefused, UserInputError
from treadle.server.api import audit as audit_api
from treadle.server.api import connections as connections_api
from treadle.server.api import files as files_api
from treadle.server.api import secrets as secrets_api
from treadle.server.api import users as users_api
from treadle.server.pages.rendering import PageState, User, page
from treadle.store.access import Role

router = APIRouter(include_in_schema=False)
MODES = {".py": "python", ".sql": "sql", ".yaml": "yaml", ".yml": "yaml"}


@router.get("/connections", response_class=HTMLResponse)
def connection_list(request: Request, user: User, state: PageState) -> HTMLResponse:
    secrets = secrets_api.list_secrets(user, state) if user.role.allows(Role.ADMIN) else []
    return page(
        request,
        "connections.html",
        user,
        section="connections",
        connections=connections_api.list_connections(user, state),
        secrets=secrets,
    )


@router.get("/files", response_class=HTMLResponse)
def file_browser(
    request: Request, user: User, state: PageState, path: str = "", file: str = ""
) -> HTMLResponse:
    folder = files_api.list_folder(user, state, path)
    content, unreadable = None, ""
    if file:
        try:
            content = files_api.read_file(user, state, file)
        except PathRefused:
            raise
        except UserInputError as exc:  # binary, too large, missing: said on the page
            unreadable = exc.message
    parent = str(PurePosixPath(folder.path).parent) if folder.path else ""
    return page(
        request,
        "files.html",
        user,
        section="files",
        folder=folder,
        parent="" if parent == "." else parent,
        file=content,
        unreadable=unreadable,
        chosen=file,
        mode=MODES.get(PurePosixPath(file).suffix, "") if file else "",
    )


@router.get("/settings", response_class=HTMLResponse)
def settings(request: Request, user: User, state: PageState) -> HTMLResponse:
    admin = user.role.allows(Role.ADMIN)
    return page(
        request,
        "settings.html",
        user,
        section="settings",
        tokens=users_api.list_tokens(user, state),
        users=users_api.list_users(user, state) if admin else [],
        audit=audit_api.audit_trail(user, state, limit=100) if admin else [],
        roles=[r.value for r in Role],
    )
