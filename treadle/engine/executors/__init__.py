"""Executors by name. ``EXECUTORS`` is the registry the CLI and settings choose from.

Each entry imports its executor when asked, so a run pays only for the one it uses
(the process executor brings ``multiprocessing``).
"""

from __future__ import annotations

from collections.abc import Callable

from treadle.engine.executors.base import Executor as Executor


def _inline() -> type[Executor]:
    from treadle.engine.executors.inline import InlineExecutor

    return InlineExecutor


def _process() -> type[Executor]:
    from treadle.engine.executors.process import ProcessExecutor

    return ProcessExecutor


EXECUTORS: dict[str, Callable[[], type[Executor]]] = {"inline": _inline, "process": _process}
