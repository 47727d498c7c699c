"""Treadle: a fast, sturdy data pipeline orchestrator.

Block files import their decorators from here. ``run_pipeline`` (which records the run
in the project's history) is imported lazily so that ``import treadle`` stays cheap.
"""

from typing import TYPE_CHECKING, Any

from treadle.blocks.decorators import callback as callback
from treadle.blocks.decorators import condition as condition
from treadle.blocks.decorators import custom as custom
from treadle.blocks.decorators import data_exporter as data_exporter
from treadle.blocks.decorators import data_loader as data_loader
from treadle.blocks.decorators import sensor as sensor
from treadle.blocks.decorators import test as test
from treadle.blocks.decorators import transformer as transformer
from treadle.errors import TreadleError as TreadleError
from treadle.errors import UserInputError as UserInputError

if TYPE_CHECKING:
    from treadle.engine.api import RunResult as RunResult
    from treadle.scheduler.launch import run_pipeline as run_pipeline

__version__ = "0.1.0"
_LAZY = {"run_pipeline": "treadle.scheduler.launch", "RunResult": "treadle.engine.api"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'treadle' has no attribute {name!r}")
