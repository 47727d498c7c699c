"""PostgreSQL (psycopg 3): query results as DataFrames, tables written with binary COPY.

Profile keys (``io_config.yaml``, Mage's names); a key left out falls back to libpq's
default and environment (``PGHOST``, ``PGUSER`` …):

``POSTGRES_HOST``, ``POSTGRES_PORT`` (5432), ``POSTGRES_DBNAME``, ``POSTGRES_USER``, ``POSTGRES_PASSWORD``
    Where and as whom to connect.
``POSTGRES_SCHEMA`` (``public``)
    Where ``export`` writes unless told otherwise. It is also first on the session's
    ``search_path``, so ``load("select * from trips")`` finds the table ``export`` wrote.
``POSTGRES_CONNECT_TIMEOUT`` (10)
    Seconds to wait for the server to answer (libpq waits at least 2).

``load`` reads through a server-side cursor, ``chunk_rows`` rows at a time, builds one Arrow
batch per chunk and converts to pandas once. ``export`` never inserts row by row: it
encodes ``chunk_rows`` rows at a time into PostgreSQL's binary COPY format with numpy and
Arrow kernels (no Python loop over rows, but for decimals; no text escaping: tabs,
newlines, backslashes and time zones cannot be misread) and streams them with ``COPY … FROM STDIN (FORMAT binary)``,
logging the rows sent so far to the ``treadle.io.postgres`` logger after every chunk.
The server reads binary rows faster than CSV: a million NYC-taxi rows take about two thirds
of the time of ``psql``'s ``\\copy`` of the same data as CSV (``bench/README.md``). Binary
is two to three times as many bytes as CSV, which would matter only on a slow network.

Types, Arrow → PostgreSQL (``export``) and PostgreSQL → Arrow → pandas (``load``):

========================================  =============================  =========================
Arrow (pandas, polars)                    PostgreSQL                     ``load`` gives back
========================================  =============================  =========================
int8, int16, uint8                        smallint                       Int16 (nullable)
int32, uint16                             integer                        Int32 (nullable)
int64, uint32                             bigint                         Int64 (nullable)
uint64                                    numeric(20,0)                  float64
float16, float32, float64                 double precision               float64
bool                                      boolean                        boolean (nullable)
string, large_string, string_view         text                           str
binary, large_binary, fixed_size_binary   bytea                          bytes
timestamp with a time zone                timestamp with time zone       datetime64[us, UTC]
timestamp without one                     timestamp without time zone    datetime64[us]
date32, date64                            date                           datetime.date objects
time32, time64                            time without time zone         datetime.time objects
duration                                  interval                       timedelta64[us]
decimal128(p, s), decimal256(p, s)        numeric(p,s)                   float64
dictionary (pandas category)              the type of its values
null (a column of only None)              text
========================================  =============================  =========================

Anything else (a list, struct or map column, e.g. a pandas object column of lists or dicts)
is refused with a ``UserInputError`` naming the column, before the database is touched.
``numeric`` loads as ``float64``, what a DataFrame computes with (a column of ``Decimal``
objects is slow and awkward); select ``x::text`` for the exact digits. Timestamps are stored
to the microsecond (nanoseconds are truncated). ``json``/``jsonb`` and ``uuid`` load as
their text, arrays as lists, other types as Arrow infers them from psycopg's values, or as
their text.

``if_exists``:

``replace``
    One transaction: create ``<table>__treadle_new_<random>`` in the same schema, COPY into
    it, drop the old table, rename the new one. Readers keep reading the old table during
    the COPY and see the new one once the transaction commits (a query that arrives during
    the drop and rename waits a moment, then reads the new table); they never see a
    missing or half-loaded table. If the load fails, is interrupted or the process is
    killed, the transaction rolls back: the old table is untouched and the new one never
    existed for anyone else (nothing is left over to clean up). The new table is built
    fresh: indexes, constraints and grants of the old one are not carried over.
``append``
    COPY into the existing table in one transaction, columns matched by name (the table
    may have more). When a column's type differs from the mapping above, the rows go
    through a temporary table and ``INSERT … SELECT CAST(…)``, PostgreSQL's conversions
    (a naive timestamp going into a ``timestamptz`` column is read in the session's
    ``TimeZone``). A missing table is created.
``fail``
    ``UserInputError`` if the table exists; otherwise it is created and loaded in one
    transaction.
``upsert``
    Needs ``unique_key``. One transaction: COPY into a temporary table, then
    ``INSERT … SELECT … ON CONFLICT (unique_key) DO UPDATE SET`` every other column. A
    missing table is created with ``PRIMARY KEY (unique_key)``. An existing table must
    already have a primary key or unique index on exactly those columns (it is not added
    for you: adding one can fail on existing duplicates, and it is a schema change to
    make on purpose); the error says how to add it. Loading the same rows twice leaves
    the table as after the first time.

Schemas and tables are created when missing; every name is quoted, never pasted into SQL.
Passwords appear in no message and no log line. A ``Postgres`` holds one connection: use
one per thread.

The type mapping and the binary COPY encoding are in ``postgres_types.py``.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

import pyarrow as pa

from treadle.errors import MissingExtra, UserInputError
from treadle.io.base import (
    IF_EXISTS_WITH_UPSERT,
    Connector,
    check_if_exists,
    check_no_null_keys,
    check_unique_key,
    read_profile,
)
from treadle.io.tables import to_arrow, to_pandas

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
except ImportError as exc:
    raise MissingExtra(
        "the PostgreSQL connector needs psycopg 3", hint="pip install 'treadle[postgres]'"
    ) from exc

from treadle.io.postgres_types import (  # noqa: E402 (after the check for psycopg)
    COPY_HEADER,
    COPY_TRAILER,
    MAX_NAME_BYTES,
    ColumnSpec,
    check_name,
    column_specs,
    concat_batches,
    encode_batch,
    load_cursor,
    rows_to_batch,
)

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("treadle.io.postgres")

PostgresIfExists = Literal["replace", "append", "fail", "upsert"]
IF_EXISTS = IF_EXISTS_WITH_UPSERT
Params = Sequence[Any] | dict[str, Any] | None
Query = str | sql.Composable

DEFAULT_SCHEMA = "public"
DEFAULT_CONNECT_TIMEOUT = 10
CHUNK_ROWS = 50_000
FIRST_CHUNK_ROWS = 1_000
STAGING_MARK = "__treadle_new_"
PROFILE_KEYS = {
    "host": "POSTGRES_HOST",
    "dbname": "POSTGRES_DBNAME",
    "user": "POSTGRES_USER",
    "password": "POSTGRES_PASSWORD",
}


class Postgres(Connector):
    """A PostgreSQL database; the connection opens on first use.

    ``conninfo`` is a libpq connection string or URL (``postgresql://user@host:5432/db``);
    the keyword arguments add to it or override it.
    """

    def __init__(
        self,
        conninfo: str = "",
        *,
        host: str | None = None,
        port: int | str | None = None,
        dbname: str | None = None,
        user: str | None = None,
        password: str | None = None,
        schema: str = DEFAULT_SCHEMA,
        connect_timeout: float | None = None,
        chunk_rows: int = CHUNK_ROWS,
        profile: str | None = None,
    ) -> None:
        """``chunk_rows``: rows per fetch and per COPY chunk. ``profile`` only names where
        the settings came from, in messages."""
        timeout = None if connect_timeout is None else math.ceil(connect_timeout)
        given = {"host": host, "port": port, "dbname": dbname, "user": user}
        given |= {"password": password, "connect_timeout": timeout}
        try:
            params = conninfo_to_dict(make_conninfo(conninfo, **given))
        except psycopg.ProgrammingError as exc:
            message = f"invalid PostgreSQL connection string: {exc}"
            raise UserInputError(_without(message, password)) from None
        params.setdefault("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        if not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise UserInputError(f"chunk_rows must be a whole number above 0, not {chunk_rows!r}")
        self._params = params
        self.schema = check_name(schema, "schema")
        self.chunk_rows = chunk_rows
        self.profile = profile
        self._connection: psycopg.Connection[Any] | None = None

    @classmethod
    def from_profile(cls, profile: str = "default", *, project: Any = None) -> Self:
        """See ``Connector.from_profile``; reads the ``POSTGRES_*`` keys (module docstring)."""
        _, settings = read_profile(profile, project)
        if not any(str(key).startswith("POSTGRES_") for key in settings):
            raise UserInputError(
                f"profile {profile!r} has no PostgreSQL settings",
                path="io_config.yaml",
                hint="add POSTGRES_HOST, POSTGRES_DBNAME, POSTGRES_USER and POSTGRES_PASSWORD",
            )
        values = {name: _text_setting(settings, key) for name, key in PROFILE_KEYS.items()}
        return cls(
            **values,
            port=_number_setting(settings, "POSTGRES_PORT", profile),
            schema=_text_setting(settings, "POSTGRES_SCHEMA") or DEFAULT_SCHEMA,
            connect_timeout=_number_setting(settings, "POSTGRES_CONNECT_TIMEOUT", profile),
            profile=profile,
        )

    # -- the connection ------------------------------------------------------------------

    @property
    def where(self) -> str:
        """``user@host:port/dbname`` (and the profile), never the password: for messages."""
        params = self._params
        user = f"{params['user']}@" if params.get("user") else ""
        port = f":{params['port']}" if params.get("port") else ""
        place = f"{user}{params.get('host') or 'localhost'}{port}/{params.get('dbname') or ''}"
        return f"{place} (profile {self.profile!r})" if self.profile else place

    def __repr__(self) -> str:
        return f"Postgres({self.where})"

    def check(self) -> str:
        self.connection.execute("select 1")
        return f"PostgreSQL {self.where}"

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The open psycopg connection (autocommit), for anything this class does not wrap."""
        if self._connection is None or self._connection.closed:
            self._connection = self._connect()
        return self._connection

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            connection = psycopg.connect(
                **self._params, autocommit=True, application_name="treadle", client_encoding="UTF8"
            )
        except psycopg.OperationalError as exc:
            raise self._connection_error(exc) from None
        if self.schema != DEFAULT_SCHEMA:
            statement = sql.SQL("set search_path to {}, public").format(sql.Identifier(self.schema))
            connection.execute(statement)
        return connection

    def _connection_error(self, exc: psycopg.OperationalError) -> UserInputError:
        """What went wrong connecting, where, and what to check; never the password."""
        if isinstance(exc, psycopg.errors.ConnectionTimeout):
            seconds = max(2, int(self._params["connect_timeout"]))  # libpq's minimum is 2
            reason = f"no answer within {seconds} s (connect timeout)"
        else:
            reason = _libpq_reason(str(exc))
        if re.search(r"password|authenticat|role .* does not exist", reason):
            hint = "check the user and password (POSTGRES_USER, POSTGRES_PASSWORD)"
        elif re.search(r"database .* does not exist", reason):
            hint = "check the database name (POSTGRES_DBNAME)"
        else:
            hint = "check the host and port (POSTGRES_HOST, POSTGRES_PORT) and that the server runs"
        message = f"cannot connect to PostgreSQL at {self.where}: {reason}"
        return UserInputError(_without(message, self._params.get("password")), hint=hint)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def execute(self, query: Query, params: Params = None) -> None:
        """Run a statement (several, without ``params``); PostgreSQL errors propagate."""
        self.connection.execute(query, params)

    # -- load ----------------------------------------------------------------------------

    def load_arrow(
        self, query: Query, params: Params = None, *, limit: int | None = None
    ) -> pa.Table:
        """The result of ``query`` as a ``pyarrow.Table`` (types: see the module docstring);
        only its first ``limit`` rows when given.

        Rows come ``chunk_rows`` at a time through a server-side cursor, so neither the
        server nor psycopg holds the whole result as Python objects. PostgreSQL errors
        propagate.
        """
        connection = self.connection
        batches: list[pa.RecordBatch] = []
        rows = 0
        with connection.transaction(), load_cursor(connection) as cursor:
            cursor.execute(query, params)
            columns = [(column.name, column.type_code) for column in cursor.description or ()]
            while (size := _next_chunk(self.chunk_rows, rows, limit)) and (
                chunk := cursor.fetchmany(size)
            ):
                batches.append(rows_to_batch(chunk, columns))
                rows += len(chunk)
                logger.info("loaded %d rows so far", rows)
        return concat_batches(batches, columns)

    def load(
        self, query: Query, params: Params = None, *, limit: int | None = None
    ) -> pd.DataFrame:
        """The result of ``query`` as a pandas DataFrame (integers with NULLs stay integers)."""
        return to_pandas(self.load_arrow(query, params, limit=limit))

    # -- export --------------------------------------------------------------------------

    def table_exists(self, table: str, *, schema: str | None = None) -> bool:
        return relation_kind(self.connection, schema or self.schema, table) is not None

    def export(
        self,
        obj: Any,
        table: str,
        *,
        schema: str | None = None,
        if_exists: PostgresIfExists = "replace",
        unique_key: str | Sequence[str] | None = None,
    ) -> None:
        """Write ``obj`` to ``schema.table`` with binary COPY (see ``Connector.export``).

        ``obj`` is a pandas or polars DataFrame, a pyarrow Table or RecordBatch, or a
        ``pyarrow.RecordBatchReader`` (streamed: it need not fit in memory). ``schema``
        defaults to the connector's. For ``if_exists`` and ``unique_key`` see the module
        docstring. Bad arguments and columns with no PostgreSQL type raise
        ``UserInputError`` before the database is touched; a failed export leaves the
        table as it was.
        """
        check_if_exists(if_exists, IF_EXISTS)
        schema = check_name(self.schema if schema is None else schema, "schema")
        check_name(table, "table")
        source = Source.of(obj, self.chunk_rows)
        columns = column_specs(source.schema)
        keys = check_unique_key(unique_key, if_exists, source.schema.names)
        if keys and isinstance(source.data, pa.Table):
            check_no_null_keys(source.data, keys)
        started = time.perf_counter()
        export = Export(self.connection, schema, table, columns, source, keys)
        getattr(export, if_exists)()  # Export.replace, .append, .fail or .upsert
        logger.info(
            "exported %d rows to %s.%s (%s) in %.2f s",
            export.rows,
            schema,
            table,
            if_exists,
            time.perf_counter() - started,
        )


def _next_chunk(chunk_rows: int, fetched: int, limit: int | None) -> int:
    """How many rows to fetch next: a chunk, or what is left of ``limit`` (0: stop;
    psycopg's ``fetchmany(0)`` would fetch a default-sized chunk)."""
    return chunk_rows if limit is None else max(0, min(chunk_rows, limit - fetched))


def copy_to_temp_table(db: Postgres, obj: Any, name: str) -> int:
    """COPY ``obj`` into the TEMP table ``name`` of ``db``'s session (how SQL blocks see
    their upstream outputs); return the rows."""
    check_name(name, "table")
    source = Source.of(obj, db.chunk_rows)
    export = Export(db.connection, "pg_temp", name, column_specs(source.schema), source, [])
    export.temporary()
    return export.rows


class Export:
    """One ``export`` call: the statements of each ``if_exists``, around one COPY."""

    def __init__(
        self,
        connection: psycopg.Connection[Any],
        schema: str,
        table: str,
        columns: list[ColumnSpec],
        source: Source,
        keys: list[str],
    ) -> None:
        self.connection = connection
        self.schema = schema
        self.table = table
        self.target = sql.Identifier(schema, table)
        self.columns = columns
        self.source = source
        self.keys = keys
        self.rows = 0

    def replace(self) -> None:
        """COPY into a new table, then drop the old one and rename: all one transaction."""
        with self.connection.transaction():
            self._check_is_table(self._prepare())
            staging = sql.Identifier(self.schema, staging_name(self.table))
            self._create(staging)
            self._copy(staging, freeze=True)
            self._run(
                "DROP TABLE IF EXISTS {}; ALTER TABLE {} RENAME TO {}",
                self.target,
                staging,
                sql.Identifier(self.table),
            )

    def temporary(self) -> None:
        """A TEMP table of this session (replaced if it exists), gone when it closes."""
        with self.connection.transaction():
            table = sql.Identifier(self.table)
            self._run("DROP TABLE IF EXISTS pg_temp.{}", table)
            self._run("CREATE TEMP TABLE {} ({})", table, self._column_definitions())
            self._copy(table)

    def fail(self) -> None:
        with self.connection.transaction():
            if self._prepare() is not None:
                raise UserInputError(
                    f"table {self.schema}.{self.table} already exists",
                    hint="pass if_exists='replace', 'append' or 'upsert'",
                )
            self._create(self.target)
            self._copy(self.target, freeze=True)

    def append(self) -> None:
        """COPY straight into the table when its column types are ours, else via a temp table."""
        with self.connection.transaction():
            kind = self._prepare()
            if kind is None:
                self._create(self.target)
                self._copy(self.target, freeze=True)
                return
            self._check_is_table(kind)
            types = self._existing_types()
            if all(types[column.name].full == column.pg_type for column in self.columns):
                self._copy(self.target)
            else:
                self._insert_through_temp_table(types)

    def upsert(self) -> None:
        """COPY into a temp table, then ``INSERT … ON CONFLICT DO UPDATE``: one transaction."""
        with self.connection.transaction():
            kind = self._prepare()
            if kind is None:
                self._create(self.target, primary_key=self.keys)
            else:
                self._check_is_table(kind)
                self._check_unique_index()
            self._insert_through_temp_table(self._existing_types())

    # -- the steps -----------------------------------------------------------------------

    def _run(self, template: str, *identifiers: sql.Composable) -> None:
        self.connection.execute(sql.SQL(template).format(*identifiers))

    def _prepare(self) -> str | None:
        """Create the schema if it is missing; the kind of relation the target is (None
        when there is none). Only a missing schema is created: ``CREATE SCHEMA IF NOT
        EXISTS`` needs the CREATE privilege on the database even when the schema exists."""
        schema_exists, kind = self.connection.execute(
            "select exists (select from pg_namespace where nspname = %(schema)s),"
            " (select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            "  where n.nspname = %(schema)s and c.relname = %(table)s)",
            {"schema": self.schema, "table": self.table},
        ).fetchone()
        if not schema_exists:
            self._run("CREATE SCHEMA IF NOT EXISTS {}", sql.Identifier(self.schema))
        return None if kind is None else str(kind)

    def _check_is_table(self, kind: str | None) -> None:
        if kind not in (None, "r", "p"):
            what = RELATION_KINDS.get(kind, "not a table")
            raise UserInputError(
                f"{self.schema}.{self.table} is {what}, not a table",
                hint="export to another table name, or drop it first",
            )

    def _create(self, table: sql.Identifier, *, primary_key: Sequence[str] = ()) -> None:
        definitions = [
            sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.pg_type))
            for column in self.columns
        ]
        if primary_key:
            keys = sql.SQL(", ").join(map(sql.Identifier, primary_key))
            definitions.append(sql.SQL("PRIMARY KEY ({})").format(keys))
        self._run("CREATE TABLE {} ({})", table, sql.SQL(", ").join(definitions))

    def _existing_types(self) -> dict[str, ExistingType]:
        """The table's column types by name; ``UserInputError`` if a data column is missing."""
        rows = self.connection.execute(
            "select a.attname, format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, null)"
            " from pg_attribute a join pg_class c on c.oid = a.attrelid"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped",
            [self.schema, self.table],
        ).fetchall()
        types = {name: ExistingType(full, base) for name, full, base in rows}
        missing = [column.name for column in self.columns if column.name not in types]
        if missing:
            raise UserInputError(
                f"table {self.schema}.{self.table} has no column {_names(missing)}"
                f" (its columns: {_names(list(types))})",
                hint="add the column to the table (ALTER TABLE … ADD COLUMN), drop it from the"
                " data, or pass if_exists='replace' to recreate the table",
            )
        return types

    def _check_unique_index(self) -> None:
        found = self.connection.execute(
            UNIQUE_INDEX_QUERY, [self.schema, self.table, sorted(self.keys)]
        )
        if found.fetchone() is None:
            keys = sql.SQL(", ").join(map(sql.Identifier, self.keys)).as_string(self.connection)
            target = self.target.as_string(self.connection)
            raise UserInputError(
                f"table {self.schema}.{self.table} has no primary key or unique index on"
                f" exactly ({', '.join(self.keys)}), which upsert needs to find existing rows",
                hint=f"add one: ALTER TABLE {target} ADD UNIQUE ({keys}); or pass the columns"
                " of its primary key as unique_key",
            )

    def _insert_through_temp_table(self, types: dict[str, ExistingType]) -> None:
        """COPY into a temp table of our types, then insert with PostgreSQL's casts to the
        table's types (``ON CONFLICT … DO UPDATE`` when upserting).

        The explicit cast is to the type without its modifier (``jsonb`` from text, say):
        the insert then checks the modifier as any insert does, so a string too long for a
        ``varchar(5)`` is an error rather than cut short, as an explicit cast would do.
        """
        temp = sql.Identifier(f"treadle_rows_{secrets.token_hex(4)}")
        self._create_temp(temp)
        self._copy(temp, freeze=True)
        names = [sql.Identifier(column.name) for column in self.columns]
        values = [
            sql.SQL("CAST({} AS {})").format(name, sql.SQL(types[column.name].base))
            for name, column in zip(names, self.columns, strict=True)
        ]
        insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            self.target, sql.SQL(", ").join(names), sql.SQL(", ").join(values), temp
        )
        if self.keys:
            insert += self._on_conflict()
        try:
            self.connection.execute(insert)
        except psycopg.errors.CardinalityViolation:
            raise UserInputError(
                f"the data has several rows with the same unique_key ({', '.join(self.keys)}),"
                f" so upsert into {self.schema}.{self.table} cannot tell which one to keep",
                hint="keep one row per key first, e.g. df.drop_duplicates(subset=unique_key,"
                " keep='last')",
            ) from None

    def _create_temp(self, temp: sql.Identifier) -> None:
        self._run("CREATE TEMP TABLE {} ({}) ON COMMIT DROP", temp, self._column_definitions())

    def _column_definitions(self) -> sql.Composable:
        """``"name" type, …`` of the columns, for CREATE TABLE."""
        return sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.pg_type))
            for column in self.columns
        )

    def _on_conflict(self) -> sql.Composable:
        keys = sql.SQL(", ").join(map(sql.Identifier, self.keys))
        others = [sql.Identifier(c.name) for c in self.columns if c.name not in self.keys]
        if not others:
            return sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(keys)
        updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(name) for name in others)
        return sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(keys, updates)

    def _copy(self, table: sql.Identifier, *, freeze: bool = False) -> None:
        """Stream the source into ``table`` with binary COPY, a chunk at a time.

        ``freeze`` (only for a table created in this transaction) writes the rows already
        frozen: no later vacuum pass rewrites them, and a reader whose snapshot predates
        the commit sees the whole new table rather than an empty one.
        """
        names = sql.SQL(", ").join(sql.Identifier(column.name) for column in self.columns)
        options = sql.SQL("FORMAT binary, FREEZE" if freeze else "FORMAT binary")
        statement = sql.SQL("COPY {} ({}) FROM STDIN ({})").format(table, names, options)
        with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(COPY_HEADER)
            for batch in self.source.batches():
                if self.keys:
                    check_no_null_keys(batch, self.keys)
                copy.write(encode_batch(batch, self.columns))
                self.rows += batch.num_rows
                logger.info("%s.%s: %d rows sent so far", self.schema, self.table, self.rows)
            copy.write(COPY_TRAILER)


@dataclass(frozen=True)
class ExistingType:
    """A column type of an existing table, as ``format_type()`` spells it."""

    full: str  # with its modifier: varchar(5), numeric(8,2)
    base: str  # without: character varying, numeric


RELATION_KINDS = {
    "v": "a view",
    "m": "a materialized view",
    "f": "a foreign table",
    "S": "a sequence",
    "i": "an index",
    "I": "an index",
    "c": "a composite type",
}

UNIQUE_INDEX_QUERY = """
select 1
from pg_index i
join pg_class c on c.oid = i.indrelid
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = %s and c.relname = %s
  and i.indisunique and i.indimmediate and i.indisvalid
  and i.indpred is null and i.indexprs is null
  and (select array_agg(a.attname::text order by a.attname::text)
       from pg_attribute a
       where a.attrelid = i.indrelid and a.attnum = any(i.indkey)) = %s::text[]
"""


def relation_kind(connection: psycopg.Connection[Any], schema: str, name: str) -> str | None:
    """``pg_class.relkind`` of ``schema.name`` (``r`` a table …), or None when missing."""
    row = connection.execute(
        "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s",
        [schema, name],
    ).fetchone()
    return None if row is None else str(row[0])


def staging_name(table: str) -> str:
    """``<table>__treadle_new_<random>``, the table cut short so the whole fits in 63 bytes."""
    suffix = f"{STAGING_MARK}{secrets.token_hex(4)}"
    base = table.encode()[: MAX_NAME_BYTES - len(suffix)].decode("utf-8", "ignore")
    return base + suffix


# -- checking arguments (before the database is touched) -------------------------------


# -- the data to export ----------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """What ``export`` reads from: a whole Arrow table, or a stream of batches."""

    schema: pa.Schema
    data: pa.Table | pa.RecordBatchReader
    chunk_rows: int

    @classmethod
    def of(cls, obj: Any, chunk_rows: int) -> Source:
        if isinstance(obj, pa.RecordBatchReader):
            return cls(obj.schema, obj, chunk_rows)
        table = to_arrow(obj)
        return cls(table.schema, table, chunk_rows)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Batches of at most ``chunk_rows`` rows (a reader can be read once).

        The first ones are small (1,000 rows, then twice as many each time): the server
        starts on them while the next are encoded, which makes a small export faster.
        """
        batches = self.data.to_batches() if isinstance(self.data, pa.Table) else self.data
        size = min(FIRST_CHUNK_ROWS, self.chunk_rows)
        for batch in batches:
            start = 0
            while start < batch.num_rows:
                yield batch.slice(start, size)
                start += size
                size = min(size * 2, self.chunk_rows)


# -- settings --------------------------------------------------------------------------


def _text_setting(settings: dict[str, Any], key: str) -> str | None:
    value = settings.get(key)
    return None if value is None or value == "" else str(value)


def _number_setting(settings: dict[str, Any], key: str, profile: str) -> int | None:
    value = _text_setting(settings, key)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise UserInputError(
            f"{key} of profile {profile!r} must be a number above 0, not {value!r}",
            path="io_config.yaml",
        )
    return math.ceil(number)


def _libpq_reason(message: str) -> str:
    """The useful part of libpq's message: 'password authentication failed for user …'."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0] if lines else message
    reason = first.rsplit(" failed: ", 1)[-1]
    return re.sub(r"^(FATAL|ERROR):\s+", "", reason)


def _without(text: str, password: Any) -> str:
    return text.replace(str(password), "***") if password else text


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)
