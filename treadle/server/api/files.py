"""Project files: ``/api/v1/files`` — list a folder, read and write a text file, delete.

Every path is confined to the project by ``project_path`` (relative, forward slashes, no
``..``, no ``%`` left after the one decoding, nothing hidden, nothing a symlink leads
outside or to a hidden file). Refusals are 403, whatever the role.

A write or delete of a file the loader reads (``.py``, ``.sql``, ``.yaml``) must not leave
the project invalid: the project is checked before and after, and a change that brings
new problems is undone and answered with 422 listing them. ``treadle.yaml`` holds the
project's settings: only an admin may change it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from treadle.errors import PathRefused, ProjectInvalid, UnknownName, UserInputError
from treadle.project.editing import EDIT_LOCK, replace_atomically
from treadle.project.io_config import load_io_config
from treadle.project.loader import PROJECT_FILE, load_project
from treadle.project.masking import MIN_LENGTH, SECRET_NAME, mask, secret_values
from treadle.project.model import Project
from treadle.project.paths import is_hidden, project_path, relative_name
from treadle.project.triggers import TRIGGERS_FILE, load_triggers
from treadle.project.yaml_source import parse_yaml
from treadle.scheduler.triggering import SyncReport, read_all_triggers
from treadle.server.auth import Editor, Principal, State, Viewer, audit
from treadle.server.inputs import Text
from treadle.server.state import ServerState
from treadle.store.access import Role
from treadle.store.rows import iso

router = APIRouter(prefix="/files", tags=["files"])

#: Largest file read or written here (the editor is for code and settings, not data).
MAX_TEXT_BYTES = 1024 * 1024
#: Files the loader, the scheduler or the connectors read: checked after each change.
LOADER_SUFFIXES = frozenset({".py", ".sql", ".yaml", ".yml"})

PathQuery = Annotated[
    str, Query(max_length=1000, description="relative to the project folder, with /")
]


class FileEntry(BaseModel):
    name: str
    path: str
    kind: Literal["file", "folder"]
    size: int | None = Field(description="bytes; none for a folder")
    modified: str | None


class FolderOut(BaseModel):
    path: str
    entries: list[FileEntry] = Field(description="folders first; hidden entries left out")


class FileContent(BaseModel):
    path: str
    text: str
    size: int
    modified: str | None
    masked: bool = Field(description="known secret values shown as *** (to viewers)")


class FileWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Text = Field(max_length=1000, description="relative to the project folder, with /")
    text: Text = Field(description="the whole file, UTF-8")


class FileWritten(BaseModel):
    path: str
    size: int
    modified: str | None
    created: bool


@router.get("", response_model=FolderOut)
def list_folder(_: Viewer, state: State, path: PathQuery = "") -> FolderOut:
    """The folder's files and folders (the project folder by default)."""
    root = state.root
    folder = project_path(root, path)
    if folder.is_file():
        raise UserInputError(f"{path!r} is a file", hint="read it with GET /api/v1/files/content")
    if not folder.is_dir():
        raise UnknownName(f"no folder {path!r} in the project")
    where = relative_name(root, folder)
    entries = [e for e in (_entry(root, where, child) for child in folder.iterdir()) if e]
    entries.sort(key=lambda entry: (entry.kind != "folder", entry.name.lower()))
    return FolderOut(path=where, entries=entries)


@router.get("/content", response_model=FileContent)
def read_file(principal: Viewer, state: State, path: PathQuery) -> FileContent:
    """A text file (UTF-8, at most 1 MB). To a viewer, known secret values show as ***."""
    root = state.root
    file = project_path(root, path)
    data = _read_small_file(file, path)
    text = _as_text(data, path)
    masked = not principal.role.allows(Role.EDITOR)
    if masked:
        text = mask(text, secret_values(root) + _settings_secrets(file, text, path))
    return FileContent(
        path=relative_name(root, file),
        text=text,
        size=len(data),
        modified=iso(file.stat().st_mtime),
        masked=masked,
    )


@router.put("/content", response_model=FileWritten)
def write_file(body: FileWrite, request: Request, principal: Editor, state: State) -> FileWritten:
    """Write a text file whole (atomically), making its folders; 422 when the project
    would become invalid (the file is then left as it was)."""
    root = state.root
    file = _changeable_path(root, body.path, principal)
    data = body.text.encode("utf-8")
    if len(data) > MAX_TEXT_BYTES:
        raise UserInputError(f"the text is {len(data):,} bytes; files over 1 MB are not written")
    if file.is_dir():
        raise UserInputError(f"{body.path!r} is a folder")
    where = relative_name(root, file)
    with EDIT_LOCK:
        created = not file.exists()
        with _project_kept_valid(root, file, "saved"), _os_errors(where):
            _write_atomically(file, data)
    _after_change(state, file)
    audit(request, principal, "file.written", where, bytes=len(data), created=created)
    return FileWritten(
        path=where, size=len(data), modified=iso(file.stat().st_mtime), created=created
    )


@router.delete("", status_code=204)
def delete_file(request: Request, principal: Editor, state: State, path: PathQuery) -> Response:
    """Delete a file, or an empty folder; 422 when the project needs the file."""
    root = state.root
    target = _changeable_path(root, path, principal)
    where = relative_name(root, target)
    with EDIT_LOCK:
        if target.is_dir():
            _remove_empty_folder(target, where)
        elif target.is_file():
            with _project_kept_valid(root, target, "deleted"), _os_errors(where):
                target.unlink()
        else:
            raise UnknownName(f"no file {path!r} in the project")
    _after_change(state, target)
    audit(request, principal, "file.deleted", where)
    return Response(status_code=204)


# -- paths -------------------------------------------------------------------------------


def _changeable_path(root: Path, text: str, principal: Principal) -> Path:
    """A path an editor may write or delete: not the project folder itself, and not
    treadle.yaml unless an admin asks."""
    target = project_path(root, text)
    where = relative_name(root, target)
    if not where:
        raise UserInputError("give the path of a file in the project, not the project folder")
    if where == PROJECT_FILE and not principal.role.allows(Role.ADMIN):
        raise HTTPException(
            403, detail=f"{PROJECT_FILE} holds the project's settings: changing it needs an admin"
        )
    return target


def _entry(root: Path, folder: str, child: Path) -> FileEntry | None:
    """One listed entry; None for what is not served (hidden, outside, a broken link)."""
    if is_hidden(child.name):
        return None
    where = f"{folder}/{child.name}" if folder else child.name
    try:
        info = project_path(root, where).stat()
    except (PathRefused, OSError):
        return None
    is_folder = stat.S_ISDIR(info.st_mode)
    return FileEntry(
        name=child.name,
        path=where,
        kind="folder" if is_folder else "file",
        size=None if is_folder else info.st_size,
        modified=iso(info.st_mtime),
    )


# -- masking -----------------------------------------------------------------------------

#: Settings whose values are addresses, which may carry a password or a token
#: (``database_url: postgresql://user:pass@…``, an alert's ``slack://T0/B0/xyz``).
_ADDRESS_KEY = re.compile(r"(?:^|_)(?:urls?|uris?|dsn|connection_string)$", re.IGNORECASE)


def _settings_secrets(file: Path, text: str, shown: str) -> tuple[str, ...]:
    """The values of a YAML file a viewer must not see: those under a secret-looking key
    (``api_token: …``, as in run variables) or an address key (``database_url``, an
    alert's ``urls``), at any depth, longest first. A YAML file that does not parse
    cannot be checked, so it is not shown to viewers at all."""
    if file.suffix not in (".yaml", ".yml"):
        return ()
    try:
        data = parse_yaml(text, shown).data
    except UserInputError:
        raise HTTPException(
            403,
            detail=f"{shown} does not parse as YAML, so its secrets cannot be masked: "
            "reading it needs the editor role",
        ) from None
    found: set[str] = set()

    def walk(value: object, hidden: bool) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                name = str(key)
                walk(item, hidden or bool(SECRET_NAME.search(name) or _ADDRESS_KEY.search(name)))
        elif isinstance(value, list):
            for item in value:
                walk(item, hidden)
        elif hidden and isinstance(value, str | int | float) and not isinstance(value, bool):
            found.add(str(value))

    walk(data, False)
    kept = (value for value in found if len(value) >= MIN_LENGTH)
    return tuple(sorted(kept, key=len, reverse=True))


# -- reading and writing -----------------------------------------------------------------


def _read_small_file(file: Path, shown: str) -> bytes:
    """The file's bytes; 404 when missing, 422 for a folder, a special file or > 1 MB."""
    if file.is_dir():
        raise UserInputError(f"{shown!r} is a folder", hint="list it with GET /api/v1/files")
    if not file.exists():
        raise UnknownName(f"no file {shown!r} in the project")
    if not file.is_file():
        raise UserInputError(f"{shown!r} is not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    with _os_errors(shown, "read"), os.fdopen(os.open(file, flags), "rb") as handle:
        data = handle.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise UserInputError(f"{shown!r} is over 1 MB: too large to show here")
    return data


def _as_text(data: bytes, shown: str) -> str:
    try:
        if b"\x00" not in data:
            return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    raise UserInputError(f"{shown!r} is not UTF-8 text (a binary file?)")


def _write_atomically(file: Path, data: bytes) -> None:
    """Make the file's folders, then write it whole (``editing.replace_atomically``)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(file, data)


def _remove_empty_folder(folder: Path, where: str) -> None:
    if any(folder.iterdir()):
        raise HTTPException(409, detail=f"folder {where} is not empty; delete its files first")
    with _os_errors(where):
        folder.rmdir()


@contextlib.contextmanager
def _os_errors(where: str, doing: str = "change") -> Iterator[None]:
    """An OS error (a folder in the way, a full disk) as a 422 naming the project path,
    never the server's own paths."""
    try:
        yield
    except OSError as exc:
        raise UserInputError(f"cannot {doing} {where!r}: {exc.strerror or 'failed'}") from None


# -- keeping the project valid -----------------------------------------------------------


@contextlib.contextmanager
def _project_kept_valid(root: Path, file: Path, done: str) -> Iterator[None]:
    """Undo the change made inside to ``file`` (a write or a delete) when it caused
    problems: any in ``file`` itself, or new ones elsewhere (the rule of
    ``treadle/project/editing.py``); a 422 lists them."""
    if file.suffix not in LOADER_SUFFIXES:
        yield
        return
    where = relative_name(root, file)
    before = {_problem_key(p) for p in _project_problems(root)}
    backup = _backup(file)
    made = _missing_folders(root, file.parent)
    try:
        yield
        new = [
            problem
            for problem in _project_problems(root)
            if problem.path == where or _problem_key(problem) not in before
        ]
        if new:
            _put_back(file, backup, made)
            backup = None
            listed = "; ".join(str(problem) for problem in new)
            raise UserInputError(
                f"not {done}: the project would become invalid: {listed}",
                path=where,
                hint="the file was left as it was; fix the problems and try again",
            )
    finally:
        if backup is not None:
            backup.unlink(missing_ok=True)


def _project_problems(root: Path) -> list[UserInputError]:
    """What the loader, the scheduler (triggers.yaml) and the connectors (io_config.yaml)
    would find wrong with the project's files now. (``editing.project_problems`` covers
    the loader only, and raises when treadle.yaml itself is gone.)"""
    try:
        project = load_project(root)
    except ProjectInvalid as exc:
        problems, project = list(exc.problems), None
    except UserInputError as exc:  # not a project at all (treadle.yaml is gone)
        return [exc]
    else:
        problems = []
    problems += _trigger_problems(root, project)
    try:
        load_io_config(root)
    except UserInputError as exc:
        problems.append(exc)
    return problems


def _trigger_problems(root: Path, project: Project | None) -> list[UserInputError]:
    """The triggers.yaml files' problems as the scheduler finds them; each file on its
    own when the project does not load (so a broken project hides none of them)."""
    if project is not None:
        report = SyncReport()
        read_all_triggers(project, report)
        return report.problems
    folders = [p.parent.name for p in (root / "pipelines").glob(f"*/{TRIGGERS_FILE}")]
    problems: list[UserInputError] = []
    for name in folders:
        try:
            load_triggers(root, name, known_pipelines=folders)
        except ProjectInvalid as exc:
            problems += exc.problems
        except UserInputError as exc:
            problems.append(exc)
    return problems


def _problem_key(problem: UserInputError) -> tuple[str | None, str]:
    """A problem without its line: a problem elsewhere that moved is not new."""
    return problem.path, problem.message


def _backup(file: Path) -> Path | None:
    """A hidden copy of ``file`` beside it (mode and times kept); None when it is new."""
    if not file.is_file():
        return None
    backup = file.with_name(f".{file.name}.{secrets.token_hex(4)}.bak")
    shutil.copy2(file, backup)
    return backup


def _missing_folders(root: Path, folder: Path) -> list[Path]:
    """The folders a write into ``folder`` makes, deepest first."""
    missing = []
    while folder != root.resolve() and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _put_back(file: Path, backup: Path | None, made: list[Path]) -> None:
    if backup is not None:
        os.replace(backup, file)
    else:
        file.unlink(missing_ok=True)
    for folder in made:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _after_change(state: ServerState, file: Path) -> None:
    """The scheduler rereads the project at once after a change to a file it reads."""
    if file.suffix in LOADER_SUFFIXES:
        state.scheduler.reload(state.scheduler.clock.now(), force=True)
