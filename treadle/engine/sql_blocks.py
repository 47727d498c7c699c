"""Run a ``.sql`` block: render it, register the upstream outputs, query the profile.

SQL blocks run on the block's profile: DuckDB (the embedded ``default`` one, or any
profile with ``DUCKDB_DATABASE``), where the upstream outputs are visible as tables
``df_1`` … ``df_N`` without being copied (Arrow); or PostgreSQL (``POSTGRES_*``), where
they are COPYed into TEMP tables of that name first. The result comes back as a pandas
DataFrame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from treadle.blocks.sql import render_sql, upstream_table_name
from treadle.engine.tasks import BlockTask
from treadle.errors import QueryFailed


def run_sql_block(task: BlockTask, inputs: Sequence[Any], context: Mapping[str, Any]) -> Any:
    from treadle.io.base import read_profile

    block = task.block
    _, settings = read_profile(block.profile, task.run.project_root)
    source = (task.run.project_root / block.file).read_text(encoding="utf-8")
    sql = render_sql(
        source,
        path=block.file,
        input_count=len(inputs),
        context=context,
        variables=task.run.variables,
    )
    is_postgres = any(key.startswith("POSTGRES_") for key in settings)
    if is_postgres and "DUCKDB_DATABASE" not in settings:
        return _on_postgres(task, sql, inputs)
    return _on_duckdb(task, sql, inputs)


def _on_duckdb(task: BlockTask, sql: str, inputs: Sequence[Any]) -> Any:
    """Upstream outputs registered as Arrow tables (no copy), the query run, Arrow back."""
    import duckdb

    from treadle.io.duckdb import DuckDB
    from treadle.io.tables import to_arrow

    with DuckDB.from_profile(task.block.profile, project=task.run.project_root) as db:
        for position, value in enumerate(inputs, start=1):
            db.connection.register(upstream_table_name(position), to_arrow(value))
        try:
            return db.load(sql)
        except duckdb.Error as exc:
            raise _query_failed(task, sql, exc) from None


def _on_postgres(task: BlockTask, sql: str, inputs: Sequence[Any]) -> Any:
    """Upstream outputs COPYed into TEMP tables of the session, then the query run."""
    import psycopg

    from treadle.io.postgres import Postgres, copy_to_temp_table

    with Postgres.from_profile(task.block.profile, project=task.run.project_root) as db:
        for position, value in enumerate(inputs, start=1):
            copy_to_temp_table(db, value, upstream_table_name(position))
        try:
            return db.load(sql)
        except psycopg.Error as exc:
            raise _query_failed(task, sql, exc) from None


def _query_failed(task: BlockTask, sql: str, exc: Exception) -> QueryFailed:
    """The database's own words, where, and the SQL it ran, with line numbers."""
    numbered = "\n".join(f"{n:4} | {line}" for n, line in enumerate(sql.splitlines(), 1))
    return QueryFailed(f"{task.block.file}: {exc}\nthe SQL as run:\n{numbered}")
