"""Run a ``.sql`` block: render it, register the upstream outputs, query the profile.

SQL blocks run on the block's profile: DuckDB (the embedded ``default`` one, or any
profile with ``DUCKDB_DATABASE``), where the upstream outputs are visible as tables
``df_1`` … ``df_N`` without being copied (Arrow); or PostgreSQL (``POSTGRES_*``), where
they are COPYed into TEMP tables of that name first. The result comes back as a pandas
DataFrame; the block's settings in ``pipeline.yaml`` (``SqlSettings``) can also write it
to a table, cap its rows, or run the SQL as plain statements.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from treadle.blocks.sql import render_sql, upstream_table_name
from treadle.engine.tasks import BlockTask
from treadle.errors import QueryFailed, UserInputError

logger = logging.getLogger("treadle.engine.sql_blocks")


def run_sql_block(task: BlockTask, inputs: Sequence[Any], context: Mapping[str, Any]) -> Any:
    import treadle.io
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
    connector = treadle.io.connector_name_for(settings)
    if connector == "Postgres":
        return _on_postgres(task, sql, inputs)
    if connector == "DuckDB":
        return _on_duckdb(task, sql, inputs)
    raise UserInputError(
        f"profile {block.profile!r} is for {connector}; SQL blocks run on DuckDB and"
        " PostgreSQL profiles",
        path=block.file,
        hint=f"use a Python block with {connector}.from_profile({block.profile!r})",
    )


def _on_duckdb(task: BlockTask, sql: str, inputs: Sequence[Any]) -> Any:
    """Upstream outputs registered as Arrow tables (no copy), the query run, Arrow back."""
    import duckdb

    from treadle.io.duckdb import DuckDB
    from treadle.io.tables import to_arrow

    with DuckDB.from_profile(task.block.profile, project=task.run.project_root) as db:
        for position, value in enumerate(inputs, start=1):
            if value is None:
                raise _nothing_from(task, position)
            db.connection.register(upstream_table_name(position), to_arrow(value))
        return _run_query(task, db, sql, duckdb.Error, default_schema="main")


def _nothing_from(task: BlockTask, position: int) -> UserInputError:
    upstream = task.block.upstream[position - 1]
    return UserInputError(
        f"upstream block {upstream!r} returned nothing (is it an exporter?), so there is no"
        f" table {upstream_table_name(position)} to query",
        hint="connect this SQL block after a loader or a transformer",
    )


def _on_postgres(task: BlockTask, sql: str, inputs: Sequence[Any]) -> Any:
    """Upstream outputs COPYed into TEMP tables of the session, then the query run."""
    import psycopg

    from treadle.io.postgres import Postgres, copy_to_temp_table

    with Postgres.from_profile(task.block.profile, project=task.run.project_root) as db:
        for position, value in enumerate(inputs, start=1):
            copy_to_temp_table(db, value, upstream_table_name(position))
        return _run_query(task, db, sql, psycopg.Error, default_schema=db.schema)


def _run_query(
    task: BlockTask, db: Any, sql: str, db_error: type[Exception], *, default_schema: str
) -> Any:
    """Run the block's SQL as its settings say (see ``SqlSettings``); the output goes
    downstream. The result is written to the table with the connector's own ``export``
    (atomic ``replace``), after the query has succeeded."""
    from treadle.io.tables import to_pandas

    settings = task.block.sql
    try:
        if settings.raw:
            db.execute(sql)
            return None
        result = db.load_arrow(sql, limit=settings.limit)
    except db_error as exc:
        raise _query_failed(task, sql, exc) from None
    if settings.table is not None:
        schema = settings.schema or default_schema
        db.export(result, settings.table, schema=schema, if_exists=settings.if_exists)
        logger.info(
            "wrote %d rows to %s.%s (%s)",
            result.num_rows,
            schema,
            settings.table,
            settings.if_exists,
        )
    return to_pandas(result)


def _query_failed(task: BlockTask, sql: str, exc: Exception) -> QueryFailed:
    """The database's own words, where, and the SQL it ran, with line numbers."""
    numbered = "\n".join(f"{n:4} | {line}" for n, line in enumerate(sql.splitlines(), 1))
    return QueryFailed(f"{task.block.file}: {exc}\nthe SQL as run:\n{numbered}")
