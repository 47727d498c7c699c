"""Read a block function's signature once and fill its arguments on every call.

The rules, in parameter order:

* ``*args`` takes every upstream output not yet taken; ``**kwargs`` takes the whole
  context plus every runtime variable (as in Mage).
* A parameter named like a context value (``execution_date``, ``logger`` …) gets it.
* Other positional parameters take upstream outputs, in the order of ``upstream``.
* Any other parameter is filled from the runtime variable of the same name, else its
  default; a parameter with neither is an error that names it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from treadle.errors import UserInputError

CONTEXT_NAMES = frozenset(
    {
        "execution_date",
        "interval_start",
        "interval_end",
        "variables",
        "logger",
        "run_id",
        "block",
        "pipeline",
        "trigger",
    }
)

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD
_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    kind: inspect._ParameterKind
    has_default: bool
    is_context: bool


@dataclass(frozen=True, slots=True)
class InjectionPlan:
    """How to call one function: computed at decoration time, applied per call."""

    function_name: str
    params: tuple[_Param, ...]

    @classmethod
    def of(cls, func: Callable[..., Any]) -> InjectionPlan:
        params = tuple(
            _Param(
                name=p.name,
                kind=p.kind,
                has_default=p.default is not inspect.Parameter.empty,
                is_context=p.name in CONTEXT_NAMES,
            )
            for p in inspect.signature(func).parameters.values()
        )
        return cls(func.__name__, params)

    def arguments(
        self,
        inputs: Sequence[Any],
        context: Mapping[str, Any],
        variables: Mapping[str, Any],
        *,
        strict: bool = True,
    ) -> tuple[list[Any], dict[str, Any]]:
        """(args, kwargs) for one call; raises ``UserInputError`` when they cannot fit.

        With ``strict=False`` (tests, conditions, callbacks) inputs the function has no
        parameter for are left out instead of being an error.
        """
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        taken = 0
        in_order = True  # False once a positional parameter was left to its default
        for param in self.params:
            if param.kind is _VAR_POSITIONAL:
                args.extend(inputs[taken:])
                taken = len(inputs)
                continue
            if param.kind is _VAR_KEYWORD:
                extra = {**variables, **context}
                for name in kwargs:
                    extra.pop(name, None)
                kwargs.update(extra)
                continue
            if param.is_context:
                value = context[param.name]
            elif param.kind in _POSITIONAL and taken < len(inputs):
                value = inputs[taken]
                taken += 1
            elif param.name in variables:
                value = variables[param.name]
            elif param.has_default:
                in_order = False
                continue
            else:
                raise self._unfilled(param, len(inputs))
            if in_order and param.kind in _POSITIONAL:
                args.append(value)
            else:
                kwargs[param.name] = value
        if strict and taken < len(inputs):
            raise UserInputError(
                f"{self.function_name}() takes {taken} upstream input{'s' if taken != 1 else ''} "
                f"but the pipeline gives it {len(inputs)}",
                hint="add a parameter for each upstream block, or *args",
            )
        return args, kwargs

    def _unfilled(self, param: _Param, input_count: int) -> UserInputError:
        return UserInputError(
            f"{self.function_name}() parameter {param.name!r} has no value: it is not a context "
            f"name, the block has only {input_count} upstream input{'s' if input_count != 1 else ''}, "
            f"and there is no runtime variable {param.name!r}",
            hint="give it a default, pass --var "
            f"{param.name}=…, or add it to the pipeline's variables",
        )
