"""DuckDB, the embedded warehouse: the ``default`` profile works with no server.

Profile keys (``io_config.yaml``):

``DUCKDB_DATABASE``
    The database file, relative to the project root (an absolute path and ``:memory:``
    also work). Default ``.treadle/warehouse.duckdb``; its folder is created.

Data moves through Arrow both ways: ``export`` registers the Arrow table and copies it
with one ``CREATE TABLE … AS SELECT``; ``load`` fetches Arrow and converts once.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import duckdb
import pyarrow as pa

from treadle.errors import UserInputError
from treadle.io.base import Connector, IfExists, check_if_exists, read_profile
from treadle.io.tables import to_arrow, to_pandas

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_DATABASE = ".treadle/warehouse.duckdb"
Params = list[Any] | tuple[Any, ...] | dict[str, Any] | None


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier; raises ``UserInputError`` if empty."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise UserInputError(f"{name!r} is not a valid table or schema name")
    return '"' + name.replace('"', '""') + '"'


class DuckDB(Connector):
    """A DuckDB database file (or ``:memory:``); the connection opens on first use."""

    def __init__(self, database: str | Path = ":memory:") -> None:
        self.database = str(database)
        self._connection: duckdb.DuckDBPyConnection | None = None

    @classmethod
    def from_profile(cls, profile: str = "default", *, project: Any = None) -> Self:
        """See ``Connector.from_profile``; reads ``DUCKDB_DATABASE``."""
        root, settings = read_profile(profile, project)
        database = str(settings.get("DUCKDB_DATABASE") or DEFAULT_DATABASE)
        if database == ":memory:":
            return cls(database)
        return cls(root / Path(database).expanduser())

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The open ``duckdb`` connection, for anything this class does not wrap."""
        if self._connection is None:
            if self.database != ":memory:":
                Path(self.database).parent.mkdir(parents=True, exist_ok=True)
            self._connection = duckdb.connect(self.database)
        return self._connection

    def check(self) -> str:
        self.connection.execute("select 1").fetchall()
        return f"DuckDB {self.database}"

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def execute(self, sql: str, params: Params = None) -> None:
        """Run ``sql``: one statement with ``params``, or several without. DuckDB errors propagate."""
        con = self.connection.execute(sql, params)
        complete = getattr(con, "complete", None)  # duckdb 2 streams results: run them out
        if complete is not None:
            complete()

    def load_arrow(
        self, query: str, params: Params = None, *, limit: int | None = None
    ) -> pa.Table:
        """The result of ``query`` (its first ``limit`` rows, when given) as a
        ``pyarrow.Table``; DuckDB errors propagate."""
        relation = self.connection.sql(query, params=params)
        if relation is None:  # a statement without a result
            return pa.table({})
        if limit is not None:
            relation = relation.limit(limit)
        fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
        return fetch()

    def load(self, query: str, params: Params = None, *, limit: int | None = None) -> pd.DataFrame:
        """The result of ``query`` as a pandas DataFrame (integer columns stay integers)."""
        return to_pandas(self.load_arrow(query, params, limit=limit))

    def table_exists(self, table: str, *, schema: str = "main") -> bool:
        rows = self.connection.execute(
            "select count(*) from information_schema.tables"
            " where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
        return bool(rows[0][0])

    def export(
        self, obj: Any, table: str, *, schema: str = "main", if_exists: IfExists = "replace"
    ) -> None:
        """Write ``obj`` to ``schema.table`` in one transaction (see ``Connector.export``).

        The schema is created when missing. ``append`` matches columns by name.
        """
        check_if_exists(if_exists)
        target = f"{quote_identifier(schema)}.{quote_identifier(table)}"
        data = to_arrow(obj)  # before touching the database: a bad object changes nothing
        con = self.connection
        view = f"treadle_export_{uuid.uuid4().hex}"
        con.register(view, data)
        try:
            con.execute("begin transaction")
            try:
                con.execute(f"create schema if not exists {quote_identifier(schema)}")
                exists = self.table_exists(table, schema=schema)
                if exists and if_exists == "fail":
                    raise UserInputError(
                        f"table {schema}.{table} already exists",
                        hint="pass if_exists='replace' or 'append'",
                    )
                if exists and if_exists == "append":
                    con.execute(f"insert into {target} by name select * from {view}")
                else:
                    con.execute(f"create or replace table {target} as select * from {view}")
                con.execute("commit")
            except BaseException:
                with contextlib.suppress(duckdb.Error):  # keep the original error
                    con.execute("rollback")
                raise
        finally:
            con.unregister(view)
