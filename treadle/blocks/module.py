"""Load a block file into its functions: the block's own, its tests, condition, callbacks.

Loading runs the user's module code; the engine calls this inside its error boundary.
Loaded files are cached by path, modification time and size, so a file edited between
runs is loaded afresh.

Each block file is a real module, ``treadle_blocks.<folder>.<stem>``, findable by the
import system (``_BlockFinder``), so an object of a class defined in a block file can be
pickled as an output and unpickled in another process.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from treadle.blocks.decorators import MARK, BlockFunction
from treadle.errors import UserInputError

PACKAGE = "treadle_blocks"


@dataclass(frozen=True, slots=True)
class LoadedBlock:
    main: BlockFunction
    tests: tuple[BlockFunction, ...] = ()
    conditions: tuple[BlockFunction, ...] = ()
    callbacks: tuple[BlockFunction, ...] = ()


_cache: dict[Path, tuple[int, int, LoadedBlock]] = {}
_project_roots: list[Path] = []


def register_project(root: Path) -> None:
    """Let ``treadle_blocks.*`` modules be imported from ``root`` (for unpickling)."""
    if root not in _project_roots:
        _project_roots.insert(0, root)


def load_block_file(root: Path, file: str, role: str) -> LoadedBlock:
    """The functions of block file ``file`` (relative to ``root``) for a block of ``role``."""
    path = root / file
    stat = path.stat()
    cached = _cache.get(path)
    if cached and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return cached[2]
    register_project(root)
    loaded = _collect(_execute(module_name(file), path), role, path)
    _cache[path] = (stat.st_mtime_ns, stat.st_size, loaded)
    return loaded


def module_name(file: str) -> str:
    """``data_loaders/load.py`` → ``treadle_blocks.data_loaders.load``."""
    return ".".join((PACKAGE, *PurePosixPath(file).with_suffix("").parts))


def _execute(name: str, path: Path) -> types.ModuleType:
    _ensure_parents(name)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _ensure_parents(name: str) -> None:
    parts = name.split(".")
    for end in range(1, len(parts)):
        importlib.import_module(".".join(parts[:end]))


def _collect(module: types.ModuleType, role: str, path: Path) -> LoadedBlock:
    marked: list[BlockFunction] = []
    seen: set[int] = set()
    for value in vars(module).values():
        mark = getattr(value, MARK, None)
        if isinstance(mark, BlockFunction) and id(mark) not in seen:
            seen.add(id(mark))
            marked.append(mark)
    mains = [m for m in marked if m.role == role]
    if len(mains) != 1:
        raise UserInputError(
            f"expected exactly one @{role} function, found {len(mains)}",
            path=str(path),
            hint=f"decorate the block's function with @{role} (from treadle import {role})",
        )
    return LoadedBlock(
        main=mains[0],
        tests=tuple(m for m in marked if m.role == "test"),
        conditions=tuple(m for m in marked if m.role == "condition"),
        callbacks=tuple(m for m in marked if m.role == "callback"),
    )


class _BlockFinder(importlib.abc.MetaPathFinder):
    """Finds ``treadle_blocks.<folder>.<stem>`` in the registered projects."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        parts = fullname.split(".")
        if parts[0] != PACKAGE:
            return None
        if len(parts) >= 3:
            relative = Path(*parts[1:]).with_suffix(".py")
            for root in _project_roots:
                if (root / relative).is_file():
                    return importlib.util.spec_from_file_location(fullname, root / relative)
        # ``treadle_blocks`` and its folders are empty packages
        return importlib.util.spec_from_loader(fullname, _FolderLoader(), is_package=True)


class _FolderLoader(importlib.abc.Loader):
    def create_module(self, spec: Any) -> None:
        return None  # the default module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []


if not any(isinstance(f, _BlockFinder) for f in sys.meta_path):
    sys.meta_path.append(_BlockFinder())
