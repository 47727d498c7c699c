"""SQL blocks: ``.sql`` files rendered with Jinja before they run.

In the template, ``{{ df_1 }}`` … ``{{ df_N }}`` name the upstream outputs (in the order
of ``upstream``) as tables, ``{{ execution_date }}`` and the other context values are
there by name, and ``{{ variables('x') }}`` reads a runtime variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treadle.errors import UserInputError


def upstream_table_name(position: int) -> str:
    """The name the ``position``-th upstream output (from 1) has inside the query."""
    return f"df_{position}"


def render_sql(
    source: str,
    *,
    path: str,
    input_count: int,
    context: Mapping[str, Any],
    variables: Mapping[str, Any],
) -> str:
    """The SQL to run; a template error or an unknown name raises ``UserInputError``."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)

    def variable(name: str, default: Any = None) -> Any:
        if name in variables:
            return variables[name]
        if default is not None:
            return default
        raise UserInputError(
            f"variables({name!r}): no runtime variable {name!r}",
            path=path,
            hint=f"add it to the pipeline's variables or pass --var {name}=…",
        )

    names = {upstream_table_name(i): upstream_table_name(i) for i in range(1, input_count + 1)}
    values = {**{k: v for k, v in context.items() if k != "logger"}, **names, "variables": variable}
    try:
        return env.from_string(source).render(values)
    except jinja2.TemplateSyntaxError as exc:
        raise UserInputError(f"template error: {exc.message}", path=path, line=exc.lineno) from None
    except jinja2.UndefinedError as exc:
        raise UserInputError(
            f"template error: {exc.message}",
            path=path,
            hint=f"upstream outputs are df_1 … df_{input_count}; context values by name",
        ) from None
