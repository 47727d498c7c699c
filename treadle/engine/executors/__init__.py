"""Executors by name. ``EXECUTORS`` is the registry the CLI and settings choose from."""

from __future__ import annotations

from treadle.engine.executors.base import Executor as Executor
from treadle.engine.executors.inline import InlineExecutor
from treadle.engine.executors.process import ProcessExecutor

EXECUTORS: dict[str, type[Executor]] = {
    InlineExecutor.name: InlineExecutor,
    ProcessExecutor.name: ProcessExecutor,
}
