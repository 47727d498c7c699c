"""The project and runtime variables that the code running right now belongs to.

The engine activates them around each block call, so helpers used inside a block
(``DuckDB.from_profile('default')``, ``{{ variables('x') }}`` in io_config.yaml) know
which project's files and which run's variables to use without being passed them.
Outside a run, the project is found from the working directory upwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from treadle.errors import UserInputError


@dataclass(frozen=True)
class ActiveContext:
    root: Path
    variables: Mapping[str, Any] = field(default_factory=dict)
    #: Names of the secrets the code decrypted while active (for the audit trail).
    secrets_read: set[str] = field(default_factory=set)


_active: ContextVar[ActiveContext | None] = ContextVar("treadle_active", default=None)


@contextmanager
def activated(root: Path, variables: Mapping[str, Any] | None = None) -> Iterator[ActiveContext]:
    context = ActiveContext(root, variables or {})
    token = _active.set(context)
    try:
        yield context
    finally:
        _active.reset(token)


def note_secret_read(name: str) -> None:
    """Remember that the running code decrypted secret ``name`` (outside a run: nothing)."""
    context = _active.get()
    if context is not None:
        context.secrets_read.add(name)


def active_context() -> ActiveContext:
    """The active project, else the project containing the working directory."""
    context = _active.get()
    if context is not None:
        return context
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "treadle.yaml").is_file():
            return ActiveContext(folder)
    raise UserInputError(
        "no Treadle project is active and none contains the working directory",
        hint="run inside a pipeline, cd into the project, or pass project=PATH",
    )
