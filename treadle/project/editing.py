"""Change a project's files from outside (the HTTP API, the web UI): checked, atomic, undone
when invalid.

Every file is written to a temporary file beside it and renamed over it (``os.replace``), so
a reader never sees half a file. A block file is checked (it parses, it has its decorator)
before it replaces the old one. A ``pipeline.yaml`` is checked by loading the whole project
with the new text in place: if the change caused a problem, the old bytes are put back and
``ProjectInvalid`` lists every problem with its file, line and hint. Between the rename and
the check a reader may see the rejected text for a moment (the scheduler then keeps its
triggers as they were). Problems the project had before (another pipeline broken by hand)
do not block an unrelated change.

``pipeline.yaml`` is edited through ruamel.yaml's round trip, so comments, key order and
quoting stay as written. One lock serialises the edits made by this process.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent

from treadle.errors import (
    ProjectInvalid,
    UnknownName,
    UserInputError,
    did_you_mean,
    unknown_name_error,
)
from treadle.project.block_files import check_block_file
from treadle.project.loader import NAME_PATTERN, PIPELINE_FILE, load_project
from treadle.project.model import BlockType
from treadle.project.paths import project_path, relative_name
from treadle.project.triggers import NAME_HINT, triggers_path
from treadle.project.yaml_source import parse_yaml, read_yaml

#: Held while a file of the project is being changed (by this process).
EDIT_LOCK = threading.RLock()

ProblemKey = tuple[str | None, int | None, str]


class AlreadyExists(UserInputError):
    """What was asked to be created (a pipeline, an edge) is there already."""


# -- pipelines ------------------------------------------------------------------------------


def pipeline_names(root: Path) -> list[str]:
    """The pipelines with a ``pipeline.yaml``, valid or not."""
    return sorted(p.parent.name for p in (root / "pipelines").glob(f"*/{PIPELINE_FILE}"))


def pipeline_file(root: Path, name: str) -> Path:
    """The ``pipeline.yaml`` of pipeline ``name``; ``UnknownName`` when there is none."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise unknown_name_error("pipeline", str(name), pipeline_names(root))
    path = project_path(root, f"pipelines/{name}/{PIPELINE_FILE}")
    if not path.is_file():
        raise unknown_name_error("pipeline", name, pipeline_names(root))
    return path


def create_pipeline(root: Path, name: str, description: str = "") -> Path:
    """Write ``pipelines/<name>/pipeline.yaml`` with no blocks; ``AlreadyExists`` if it is there."""
    if not NAME_PATTERN.match(name):
        raise UserInputError(f"{name!r} is not a valid pipeline name", hint=NAME_HINT)
    path = project_path(root, f"pipelines/{name}/{PIPELINE_FILE}")
    data = CommentedMap()
    if description:
        data["description"] = description
    data["blocks"] = CommentedSeq()
    with EDIT_LOCK:
        if path.exists():
            raise AlreadyExists(f"pipeline {name!r} already exists", path=_display(root, path))
        made_folder = not path.parent.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            _write_checked(root, path, _dump(_editor(), data))
        except BaseException:
            if made_folder:
                with contextlib.suppress(OSError):
                    path.parent.rmdir()
            raise
    return path


def copy_pipeline(root: Path, source: str, name: str, description: str | None = None) -> Path:
    """A new pipeline ``name`` made as a copy of ``source``: its ``pipeline.yaml`` (blocks,
    edges, variables, settings; not its triggers) and a copy of each block file, in a folder
    named for the new pipeline beside the original (``data_loaders/<name>/load.py``), so
    editing the copy leaves ``source`` as it was. Nothing is left behind when it fails."""
    if not NAME_PATTERN.match(name):
        raise UserInputError(f"{name!r} is not a valid pipeline name", hint=NAME_HINT)
    source_path = pipeline_file(root, source)
    path = project_path(root, f"pipelines/{name}/{PIPELINE_FILE}")
    with EDIT_LOCK:
        if path.exists():
            raise AlreadyExists(f"pipeline {name!r} already exists", path=_display(root, path))
        editor, data = _open_for_edit(source_path, _display(root, source_path))
        _set_key(data, "name", name)
        if description is not None:
            _set_key(data, "description", description)
        copies = _block_copies(root, source, name, _blocks(data))
        made: list[Path] = []  # files and the folders that were not there, in order
        try:
            for original, copy in copies:
                _make_folder(copy.parent, made)
                made.append(copy)
                replace_atomically(copy, original.read_bytes())
            _make_folder(path.parent, made)
            made.append(path)
            _write_checked(root, path, _dump(editor, data))
        except BaseException:
            _remove_made(made)
            raise
    return path


def _block_copies(
    root: Path, source: str, name: str, blocks: CommentedSeq
) -> list[tuple[Path, Path]]:
    """(original, copy) for each block file, and ``file:`` set to the copy on each block."""
    copies = []
    for entry in blocks:
        if not isinstance(entry, dict):
            continue
        files = [f for f in sorted(_named_files(entry)) if project_path(root, f).is_file()]
        if not files:
            raise UserInputError(
                f"block {entry.get('name')!r} of pipeline {source!r} has no file to copy",
                hint=f"fix pipeline {source!r} first (treadle validate)",
            )
        original = PurePosixPath(files[0])
        copied = (original.parent / name / original.name).as_posix()
        target = project_path(root, copied)
        if target.exists():
            raise AlreadyExists(f"{copied} already exists", hint="choose another pipeline name")
        copies.append((project_path(root, original.as_posix()), target))
        _set_block_file(entry, copied)
    return copies


def _make_folder(folder: Path, made: list[Path]) -> None:
    """``mkdir -p``, noting in ``made`` the folders it creates (outermost first)."""
    missing = [f for f in (folder, *folder.parents) if not f.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    made.extend(reversed(missing))


def _remove_made(made: list[Path]) -> None:
    """Remove what a failed copy made, newest first: its files, then its folders."""
    for path in reversed(made):
        with contextlib.suppress(OSError):  # gone already, or a folder someone filled
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)


def replace_pipeline_text(root: Path, name: str, text: str) -> None:
    """Make ``text`` the pipeline's ``pipeline.yaml``, if the project accepts it."""
    with EDIT_LOCK:
        path = pipeline_file(root, name)
        display = _display(root, path)
        try:
            doc = parse_yaml(text, display)
        except UserInputError as exc:  # malformed: refused before the file is touched
            raise ProjectInvalid([exc], path=display) from None
        if doc.data is not None and not isinstance(doc.data, dict):
            problem = doc.error("pipeline.yaml must be a mapping with a `blocks:` list")
            raise ProjectInvalid([problem], path=display)
        _write_checked(root, path, text)


def set_pipeline_values(root: Path, name: str, values: Mapping[str, Any]) -> None:
    """Set top-level keys of ``pipeline.yaml`` (``description``, ``variables`` …); an empty
    value removes its key. A mapping is changed in place, so its comments and style stay."""

    def change(data: CommentedMap) -> None:
        for key, value in values.items():
            _set_key(data, key, value)

    edit_pipeline(root, name, change)


def add_edge(root: Path, pipeline: str, upstream: str, downstream: str) -> None:
    """Make ``upstream`` an upstream of ``downstream``; an edge that would close a cycle is
    refused before anything is written, naming the path it would close."""

    def connect(data: CommentedMap) -> None:
        blocks = _blocks(data)
        _named_block(blocks, upstream)
        listed = _upstream_list(_named_block(blocks, downstream))
        if upstream in listed:
            raise AlreadyExists(f"{upstream!r} is already upstream of {downstream!r}")
        back = _path_between(blocks, downstream, upstream)
        if back is not None:
            loop = " → ".join([upstream, *back])
            raise UserInputError(
                f"connecting {upstream} → {downstream} would make a cycle: {loop}",
                hint="a pipeline runs in one direction: connect the blocks the other way",
            )
        listed.append(upstream)

    edit_pipeline(root, pipeline, connect)


def _path_between(blocks: CommentedSeq, start: str, end: str) -> list[str] | None:
    """The blocks from ``start`` down to ``end`` along the edges (``start`` itself when they
    are the same block), or None when ``end`` is not downstream of ``start``."""
    downstream: dict[str, list[str]] = {}
    for entry in blocks:
        if isinstance(entry, dict):
            for up in _upstream_names(entry):
                downstream.setdefault(up, []).append(entry.get("name"))
    came_from: dict[str, str | None] = {start: None}
    waiting = [start]
    while waiting:
        name = waiting.pop()
        if name == end:
            path = [name]
            while (name := came_from[name]) is not None:
                path.append(name)
            return path[::-1]
        for child in downstream.get(name, []):
            if child not in came_from:
                came_from[child] = name
                waiting.append(child)
    return None


def remove_edge(root: Path, pipeline: str, upstream: str, downstream: str) -> None:
    """Remove ``upstream`` from ``downstream``'s upstream list."""

    def disconnect(data: CommentedMap) -> None:
        block = _named_block(_blocks(data), downstream)
        listed = _upstream_names(block)
        if upstream not in listed:
            raise UnknownName(
                f"{upstream!r} is not upstream of {downstream!r}",
                hint=f"its upstream: {', '.join(listed)}" if listed else "it has no upstream",
            )
        _drop_upstream(block, upstream)

    edit_pipeline(root, pipeline, disconnect)


def remove_block(root: Path, pipeline: str, block: str) -> None:
    """Take ``block`` out of ``pipeline.yaml`` and out of the other blocks' upstream; its
    file stays (other pipelines may use it)."""

    def drop(data: CommentedMap) -> None:
        blocks = _blocks(data)
        del blocks[_index_of_block(blocks, pipeline, block)]
        for other in blocks:
            if isinstance(other, dict) and block in _upstream_names(other):
                _drop_upstream(other, block)

    edit_pipeline(root, pipeline, drop)


def rename_block(root: Path, pipeline: str, block: str, new_name: str, file: str) -> None:
    """Rename ``block`` in ``pipeline.yaml`` and in the other blocks' upstream. Its file
    (``file``, relative to the project) stays where it is, shared or not: ``file:`` is
    written on the block when it had none. Refused when the pipeline has ``new_name``."""

    def rename(data: CommentedMap) -> None:
        blocks = _blocks(data)
        entry = blocks[_index_of_block(blocks, pipeline, block)]
        if new_name in _block_names(blocks):
            raise AlreadyExists(f"pipeline {pipeline!r} already has a block {new_name!r}")
        entry["name"] = new_name
        if "file" not in entry:
            _set_block_file(entry, file)
        for other in blocks:
            if isinstance(other, dict) and block in _upstream_names(other):
                listed = _upstream_list(other)
                listed[listed.index(block)] = new_name

    edit_pipeline(root, pipeline, rename)


def delete_pipeline(root: Path, name: str) -> list[str]:
    """Remove the pipeline's ``pipeline.yaml`` and ``triggers.yaml``, and its folder when
    nothing else is in it. Block files are all kept. Returns the files removed."""
    removed = []
    with EDIT_LOCK:
        path = pipeline_file(root, name)
        for file in (path, triggers_path(root, name)):
            if file.is_file():
                file.unlink()
                removed.append(_display(root, file))
        with contextlib.suppress(OSError):  # not empty: other files stay
            path.parent.rmdir()
    return removed


def edit_pipeline(root: Path, name: str, change: Callable[[CommentedMap], None]) -> None:
    """Apply ``change`` to ``pipeline.yaml`` as a round-trip mapping, then write it checked."""
    with EDIT_LOCK:
        path = pipeline_file(root, name)
        display = _display(root, path)
        editor, data = _open_for_edit(path, display)
        try:
            change(data)
        except UserInputError as exc:
            exc.path = exc.path or display
            raise
        _write_checked(root, path, _dump(editor, data))


def pipeline_files(root: Path, name: str) -> set[str]:
    """The files pipeline ``name`` is made of, as its ``pipeline.yaml`` names them (even
    when invalid): the pipeline's own two files and its block files."""
    folder = f"pipelines/{name}"
    files = {f"{folder}/{PIPELINE_FILE}", f"{folder}/triggers.yaml"}
    try:
        data = read_yaml(root / folder / PIPELINE_FILE, f"{folder}/{PIPELINE_FILE}").data
    except UserInputError:
        return files
    raw_blocks = data.get("blocks") if isinstance(data, dict) else None
    for raw in raw_blocks if isinstance(raw_blocks, list) else []:
        if isinstance(raw, dict):
            files.update(_named_files(raw))
    return files


def _named_files(raw: dict[str, Any]) -> set[str]:
    """The file a raw block entry names, or the two the loader would look for."""
    given = raw.get("file")
    if isinstance(given, str):
        return {PurePosixPath(given.replace("\\", "/")).as_posix()}
    try:
        folder = BlockType(raw.get("type")).folder
    except ValueError:
        return set()
    return {f"{folder}/{raw.get('name')}.py", f"{folder}/{raw.get('name')}.sql"}


# -- block files ----------------------------------------------------------------------------


def write_block_file(root: Path, file: str, types: Iterable[BlockType], text: str) -> None:
    """Replace block file ``file`` with ``text`` once it passes the loader's checks for each
    block type it is used as (it parses; it has exactly one such decorated function)."""
    path = project_path(root, file)
    with EDIT_LOCK:
        temporary = _temporary_beside(path, _encoded(text, file))
        try:
            problems = [
                p for t in dict.fromkeys(types) for p in check_block_file(temporary, file, t)
            ]
            if problems:
                raise ProjectInvalid(_distinct(problems), path=file)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)


# -- checked writing ------------------------------------------------------------------------


def project_problems(root: Path) -> list[UserInputError]:
    """What loading the project reports (empty when it loads)."""
    try:
        load_project(root)
    except ProjectInvalid as exc:
        return list(exc.problems)
    return []


def _write_checked(root: Path, path: Path, text: str) -> None:
    """Put ``text`` at ``path`` and load the project; if that shows problems the change
    caused, put the old bytes back (or remove the new file) and raise ``ProjectInvalid``."""
    display = _display(root, path)
    data = _encoded(text, display)
    old = path.read_bytes() if path.exists() else None
    before = project_problems(root)
    replace_atomically(path, data)
    caused = _caused_problems(before, project_problems(root), display)
    if caused:
        if old is None:
            path.unlink(missing_ok=True)
        else:
            replace_atomically(path, old)
        raise ProjectInvalid(caused, path=display)


def _caused_problems(
    before: list[UserInputError], after: list[UserInputError], display: str
) -> list[UserInputError]:
    """Problems of the changed file, and new problems elsewhere (a block file it now uses)."""
    known = {_key(p) for p in before if p.path != display}
    return [p for p in after if p.path == display or _key(p) not in known]


def replace_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` and rename it over ``path``: readers never see half."""
    temporary = _temporary_beside(path, data)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _temporary_beside(path: Path, data: bytes) -> Path:
    """A new hidden file in ``path``'s folder holding ``data`` (on disk), with ``path``'s mode."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _encoded(text: str, display: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UserInputError(
            f"the text is not valid Unicode ({exc.reason})",
            path=display,
            hint="a lone surrogate (\\ud800 …) cannot be written to a file",
        ) from None


def _distinct(problems: list[UserInputError]) -> list[UserInputError]:
    """One of each problem (a file used as two block types may show one twice)."""
    return list({_key(p): p for p in problems}.values())


def _key(problem: UserInputError) -> ProblemKey:
    return (problem.path, problem.line, problem.message)


def _display(root: Path, path: Path) -> str:
    return relative_name(root, path)


# -- round-trip YAML -----------------------------------------------------------------------


def _editor() -> YAML:
    editor = YAML()
    editor.preserve_quotes = True
    editor.width = 4096
    editor.indent(mapping=2, sequence=4, offset=2)
    return editor


def _open_for_edit(path: Path, display: str) -> tuple[YAML, CommentedMap]:
    """The file loaded for a round trip (comments kept), its indentation guessed."""
    text = path.read_text(encoding="utf-8")
    try:
        parse_yaml(text, display)  # a malformed file gets the loader's error, with its line
    except UserInputError as exc:
        raise ProjectInvalid([exc], path=display) from None
    editor = _editor()
    data = None
    if text.strip():
        data, indent, dash_offset = load_yaml_guess_indent(text, yaml=editor)
        editor.indent(mapping=2, sequence=indent or 4, offset=dash_offset or 0)
    data = CommentedMap() if data is None else data
    if not isinstance(data, CommentedMap):
        raise UserInputError(
            "pipeline.yaml must be a mapping with a `blocks:` list", path=display, line=1
        )
    return editor, data


def _dump(editor: YAML, data: CommentedMap) -> str:
    buffer = io.StringIO()
    editor.dump(data, buffer)
    return buffer.getvalue()


def _blocks(data: CommentedMap) -> CommentedSeq:
    blocks = data.get("blocks")
    if blocks is None:
        blocks = data["blocks"] = CommentedSeq()
    if not isinstance(blocks, CommentedSeq):
        raise UserInputError("blocks must be a list of blocks", line=data.lc.key("blocks")[0] + 1)
    return blocks


def _block_names(blocks: CommentedSeq) -> list[str | None]:
    return [b.get("name") if isinstance(b, dict) else None for b in blocks]


def _index_of_block(blocks: CommentedSeq, pipeline: str, block: str) -> int:
    """Where ``block`` is in the list; ``UnknownName`` (404, "did you mean") when absent."""
    names = _block_names(blocks)
    if block not in names:
        known = [n for n in names if isinstance(n, str)]
        raise unknown_name_error(f"block of pipeline {pipeline!r}", block, known)
    return names.index(block)


def _named_block(blocks: CommentedSeq, name: str) -> CommentedMap:
    names = _block_names(blocks)
    if name not in names:
        known = [n for n in names if isinstance(n, str)]
        raise UserInputError(f"no block {name!r} in the pipeline", hint=did_you_mean(name, known))
    return blocks[names.index(name)]


def _upstream_names(block: dict[str, Any]) -> list[str]:
    value = block.get("upstream")
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _upstream_list(block: CommentedMap) -> CommentedSeq:
    """The block's ``upstream:`` as a list to change (a single name becomes a list)."""
    value = block.get("upstream")
    if isinstance(value, CommentedSeq):
        return value
    if value is not None and not isinstance(value, str):
        raise UserInputError(f"block {block.get('name')!r}: upstream must be a list of names")
    listed = CommentedSeq([value] if value else [])
    listed.fa.set_flow_style()
    block["upstream"] = listed
    return listed


def _drop_upstream(block: CommentedMap, name: str) -> None:
    """Remove ``name`` from the block's upstream; an emptied ``upstream:`` goes too."""
    listed = _upstream_list(block)
    while name in listed:
        listed.remove(name)
    if not listed:
        del block["upstream"]


def _set_block_file(entry: CommentedMap, file: str) -> None:
    """Set a block's ``file:``, a new one right after its ``name:``."""
    if "file" in entry:
        entry["file"] = file
    else:
        entry.insert(list(entry).index("name") + 1, "file", file)


def _set_key(data: CommentedMap, key: str, value: Any) -> None:
    """Set a top-level key; a new one goes before ``blocks:``, an empty value removes it."""
    current = data.get(key)
    if value in ("", None) or (isinstance(value, Mapping) and not value):
        data.pop(key, None)
    elif isinstance(current, CommentedMap) and isinstance(value, Mapping):
        _update_mapping(current, value)
    elif key in data or "blocks" not in data:
        data[key] = value
    else:
        data.insert(list(data).index("blocks"), key, value)


def _update_mapping(current: CommentedMap, new: Mapping[str, Any]) -> None:
    """Make ``current`` equal ``new``, touching only the keys that change (comments stay)."""
    for key in [k for k in current if k not in new]:
        del current[key]
    for key, value in new.items():
        if current.get(key) != value:
            current[key] = value
