"""The decorators block files use: ``@data_loader``, ``@transformer`` … ``@test``.

A decorator does not wrap the function: it returns it unchanged (so it stays testable
as plain Python) after attaching a ``BlockFunction`` that records its role and its
``InjectionPlan``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from treadle.blocks.injection import InjectionPlan

F = TypeVar("F", bound=Callable[..., Any])
MARK = "__treadle_block__"
CallbackWhen = Literal["success", "failure", "always"]


@dataclass(frozen=True, slots=True)
class BlockFunction:
    """A function of a block file, the role its decorator gave it, and how to call it."""

    role: str  # a BlockType value, or "test", "condition", "callback"
    func: Callable[..., Any]
    plan: InjectionPlan
    when: CallbackWhen = "always"  # callbacks only


def _mark(func: F, role: str, when: CallbackWhen = "always") -> F:
    if not callable(func):
        raise TypeError(f"@{role} decorates a function, not {type(func).__name__}")
    setattr(func, MARK, BlockFunction(role, func, InjectionPlan.of(func), when))
    return func


def data_loader(func: F) -> F:
    """The block's function: loads data (no upstream needed)."""
    return _mark(func, "data_loader")


def transformer(func: F) -> F:
    """The block's function: takes upstream outputs, returns a new output."""
    return _mark(func, "transformer")


def data_exporter(func: F) -> F:
    """The block's function: writes upstream outputs somewhere."""
    return _mark(func, "data_exporter")


def custom(func: F) -> F:
    """The block's function, for anything else."""
    return _mark(func, "custom")


def sensor(func: F) -> F:
    """The block's function: polled until it returns True (or the block's timeout)."""
    return _mark(func, "sensor")


def test(func: F) -> F:
    """Runs on the block's output after the block; a failed assert fails the block."""
    return _mark(func, "test")


test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def condition(func: F) -> F:
    """Runs before the block; returning False skips it and its downstream."""
    return _mark(func, "condition")


@overload
def callback(func: F) -> F: ...
@overload
def callback(when: CallbackWhen = "always") -> Callable[[F], F]: ...


def callback(func: Any = "always") -> Any:
    """Runs after the block: ``@callback`` always, ``@callback("success")`` or ``("failure")``.

    The callback gets the context by name, plus ``status`` and ``error`` in ``**kwargs``.
    """
    if callable(func):
        return _mark(func, "callback")
    if func not in ("success", "failure", "always"):
        raise ValueError(f"@callback({func!r}): write 'success', 'failure' or 'always'")
    return lambda f: _mark(f, "callback", func)
