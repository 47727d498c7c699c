"""Load a block file into its functions: the block's own, its tests, condition, callbacks.

Loading runs the user's module code; the engine calls this inside its error boundary.
Loaded files are cached by path, modification time and size, so a file edited between
runs is loaded afresh.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path

from treadle.blocks.decorators import MARK, BlockFunction
from treadle.errors import UserInputError


@dataclass(frozen=True, slots=True)
class LoadedBlock:
    main: BlockFunction
    tests: tuple[BlockFunction, ...] = ()
    conditions: tuple[BlockFunction, ...] = ()
    callbacks: tuple[BlockFunction, ...] = ()


_cache: dict[Path, tuple[int, int, LoadedBlock]] = {}


def load_block_file(path: Path, role: str) -> LoadedBlock:
    """The functions of the block file at ``path`` whose block function has ``role``."""
    stat = path.stat()
    cached = _cache.get(path)
    if cached and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return cached[2]
    loaded = _collect(_execute(path), role, path)
    _cache[path] = (stat.st_mtime_ns, stat.st_size, loaded)
    return loaded


def _execute(path: Path) -> types.ModuleType:
    source = path.read_bytes()
    code = compile(source, str(path), "exec", dont_inherit=True)
    name = f"treadle_blocks.{path.parent.name}.{path.stem}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    # Registered so that objects defined in the block (classes returned as outputs) pickle.
    sys.modules[name] = module
    exec(code, module.__dict__)
    return module


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
