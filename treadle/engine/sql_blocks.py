"""Run a ``.sql`` block: render it, register the upstream outputs, query the profile.

SQL blocks run on a DuckDB profile (the embedded ``default`` one, or any profile with
``DUCKDB_DATABASE``); the upstream outputs are visible as tables ``df_1`` … ``df_N``
without being copied (Arrow). The result comes back as a pandas DataFrame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from treadle.blocks.sql import render_sql, upstream_table_name
from treadle.engine.tasks import BlockTask
from treadle.errors import QueryFailed, UserInputError


def run_sql_block(task: BlockTask, inputs: Sequence[Any], context: Mapping[str, Any]) -> Any:
    from treadle.io.base import read_profile
    from treadle.io.duckdb import DuckDB
    from treadle.io.tables import to_arrow

    block = task.block
    _, settings = read_profile(block.profile, task.run.project_root)
    if any(key.startswith("POSTGRES_") for key in settings) and "DUCKDB_DATABASE" not in settings:
        raise UserInputError(
            f"SQL block {block.name!r} uses profile {block.profile!r}, a PostgreSQL profile; "
            "SQL blocks run on DuckDB profiles for now",
            path=block.file,
            hint="point `profile:` at a DuckDB profile, or load from PostgreSQL in a Python block",
        )
    source = (task.run.project_root / block.file).read_text(encoding="utf-8")
    sql = render_sql(
        source,
        path=block.file,
        input_count=len(inputs),
        context=context,
        variables=task.run.variables,
    )
    import duckdb

    with DuckDB.from_profile(block.profile, project=task.run.project_root) as db:
        for position, value in enumerate(inputs, start=1):
            db.connection.register(upstream_table_name(position), to_arrow(value))
        try:
            return db.load(sql)
        except duckdb.Error as exc:  # the database's own words, where, and the SQL it ran
            numbered = "\n".join(f"{n:4} | {line}" for n, line in enumerate(sql.splitlines(), 1))
            raise QueryFailed(f"{block.file}: {exc}\nthe SQL as run:\n{numbered}") from None
