"""Paths that callers from outside (the HTTP API, the web UI) give into the project.

``project_path`` is strict: the text must be a relative path with forward slashes that
stays inside the project once symlinks are resolved, and does not reach the hidden parts
(``.treadle/`` with the metadata database, outputs and secrets, ``.env`` with the
environment's secrets, ``.git/``) — neither by name nor through a symlink. A ``%`` is
refused too: the HTTP layer decodes a path once, so a ``%`` left is a second encoding
(``%252e%252e``). Every refusal raises ``PathRefused`` naming the path.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from treadle.errors import PathRefused

#: Hidden names the API may still serve (everything else starting with "." is refused).
VISIBLE_DOTFILES = frozenset({".gitignore", ".env.example"})
_DRIVE = re.compile(r"^[A-Za-z]:")


def project_path(root: Path, text: str) -> Path:
    """The file or folder ``text`` names inside ``root`` (``""`` is the root itself)."""
    root = root.resolve()
    if not isinstance(text, str) or "\x00" in text or "\\" in text or _DRIVE.match(text):
        raise _refused(text, "use a relative path with forward slashes")
    if "%" in text:
        raise _refused(text, "a path may not hold % (encode it only once)")
    relative = PurePosixPath(text)
    if relative.is_absolute():
        raise _refused(text, "use a path relative to the project folder")
    parts = [part for part in relative.parts if part not in ("", ".")]
    if ".." in parts:
        raise _refused(text, "a path may not go up with ..")
    hidden = [p for p in parts if is_hidden(p)]
    if hidden:
        raise _refused(text, f"{hidden[0]} is not served (hidden files hold state and secrets)")
    full = root.joinpath(*parts).resolve()
    if full != root and not full.is_relative_to(root):
        raise _refused(text, "it leads outside the project (a symlink?)")
    if any(is_hidden(part) for part in full.relative_to(root).parts):
        raise _refused(text, "it leads to a hidden file (a symlink?)")
    return full


def is_hidden(name: str) -> bool:
    """A file or folder name the API does not serve."""
    return name.startswith(".") and name not in VISIBLE_DOTFILES


def relative_name(root: Path, path: Path) -> str:
    """``path`` relative to ``root``, with forward slashes (``""`` for the root)."""
    relative = path.resolve().relative_to(root.resolve()).as_posix()
    return "" if relative == "." else relative


def _refused(text: object, hint: str) -> PathRefused:
    return PathRefused(f"path {text!r} is not allowed", hint=hint)
