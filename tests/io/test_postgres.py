"""The PostgreSQL connector against the real server (``pg_databases``: one database per test)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pandas as pd
import polars as pl
import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from treadle.errors import MissingExtra, UserInputError
from treadle.io import Postgres
from treadle.project.active import activated

LOGGER = "treadle.io.postgres"
ODD_STRINGS = [
    "",
    "tab\there",
    "new\nline",
    "carriage\r\nreturn",
    "back\\slash",
    "\\.",
    "\\N",
    "quotes ' and \"",
    "comma, semicolon;",
    "ünïcödé ✓ 日本 😀",
    "NULL",
]


@pytest.fixture
def pg_url(pg_databases) -> str:
    return pg_databases.create()


@pytest.fixture
def pg(pg_url):
    with Postgres(pg_url) as connector:
        yield connector


@pytest.fixture
def raw(pg_url):
    """A plain psycopg connection, to look at the database without the connector."""
    with psycopg.connect(pg_url, autocommit=True) as connection:
        yield connection


def column_types(raw, table: str, schema: str = "public") -> dict[str, str]:
    rows = raw.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a"
        " join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped"
        " order by a.attnum",
        [schema, table],
    ).fetchall()
    return dict(rows)


def leftovers(raw) -> list[str]:
    rows = raw.execute("select relname from pg_class where strpos(relname, '__treadle_new_') > 0")
    return [name for (name,) in rows.fetchall()]


def rows_of(raw, query: str | sql.Composable) -> list[tuple]:
    return raw.execute(query).fetchall()


def unreachable() -> Postgres:
    """A connector whose database cannot be reached: using it at all would fail."""
    return Postgres(host="127.0.0.1", port=1, dbname="nowhere", user="nobody")


# -- round trips -----------------------------------------------------------------------


def every_type() -> pa.Table:
    new_york = "America/New_York"
    n = len(ODD_STRINGS)
    at = dt.datetime(2020, 10, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)

    def with_null(values: list, arrow_type: pa.DataType) -> pa.Array:
        return pa.array([*values[: n - 1], None], type=arrow_type)

    def cycle(values: list) -> list:
        return [values[i % len(values)] for i in range(n)]

    return pa.table(
        {
            "row": pa.array(range(n), pa.int64()),
            "i8": with_null(cycle([-128, 0, 127]), pa.int8()),
            "i16": with_null(cycle([-32768, 1, 32767]), pa.int16()),
            "i32": with_null(cycle([-(2**31), 2, 2**31 - 1]), pa.int32()),
            "i64": with_null(cycle([-(2**63), 3, 2**63 - 1]), pa.int64()),
            "u8": with_null(cycle([0, 255]), pa.uint8()),
            "u16": with_null(cycle([0, 65535]), pa.uint16()),
            "u32": with_null(cycle([0, 2**32 - 1]), pa.uint32()),
            "u64": with_null(cycle([0, 2**64 - 1]), pa.uint64()),
            "f32": with_null(cycle([1.5, -0.25]), pa.float32()),
            "f64": with_null(
                cycle([0.1, 1e300, -5e-324, float("inf"), float("-inf")]), pa.float64()
            ),
            "flag": with_null(cycle([True, False]), pa.bool_()),
            "text": with_null(ODD_STRINGS, pa.string()),
            "large_text": with_null(ODD_STRINGS[::-1], pa.large_string()),
            "bytes": with_null(cycle([b"\x00\xff", b"", b"\\x00", b"\t\n"]), pa.binary()),
            "at_tz": with_null(
                [at + dt.timedelta(days=400 * i) for i in range(n)],
                pa.timestamp("ns", tz=new_york),
            ),
            "at_naive": with_null(
                [dt.datetime(1900 + 10 * i, 2, 28, 23, 59, 59) for i in range(n)],
                pa.timestamp("s"),
            ),
            "at_ms": with_null(
                [dt.datetime(2020, 1, 1, 0, 0, 0, 1000 * i) for i in range(n)],
                pa.timestamp("ms"),
            ),
            "day": with_null(
                cycle([dt.date(1, 1, 1), dt.date(2000, 1, 1), dt.date(9999, 12, 31)]), pa.date32()
            ),
            "clock": with_null(cycle([dt.time(0), dt.time(23, 59, 59, 999999)]), pa.time64("us")),
            "took": with_null(
                cycle([dt.timedelta(days=3, microseconds=7), -dt.timedelta(seconds=1)]),
                pa.duration("us"),
            ),
            "money": with_null(cycle([Decimal("12.34"), Decimal("-0.01")]), pa.decimal128(10, 2)),
            "zone": pa.array(cycle(["Astoria", "Harlem", None])).dictionary_encode(),
            "nothing": pa.nulls(n),
            "no_float": pa.nulls(n, pa.float64()),
        }
    )


EXPECTED_TYPES = {
    "row": "bigint",
    "i8": "smallint",
    "i16": "smallint",
    "i32": "integer",
    "i64": "bigint",
    "u8": "smallint",
    "u16": "integer",
    "u32": "bigint",
    "u64": "numeric(20,0)",
    "f32": "double precision",
    "f64": "double precision",
    "flag": "boolean",
    "text": "text",
    "large_text": "text",
    "bytes": "bytea",
    "at_tz": "timestamp with time zone",
    "at_naive": "timestamp without time zone",
    "at_ms": "timestamp without time zone",
    "day": "date",
    "clock": "time without time zone",
    "took": "interval",
    "money": "numeric(10,2)",
    "zone": "text",
    "nothing": "text",
    "no_float": "double precision",
}


def test_every_type_round_trips_with_nulls_and_odd_strings(pg, raw):
    table = every_type()
    pg.export(table, "every")
    assert column_types(raw, "every") == EXPECTED_TYPES

    stored = raw.execute("select * from every order by row").fetchall()
    by_column = dict(zip(table.column_names, zip(*stored, strict=True), strict=True))
    source = table.to_pydict()
    assert list(by_column["text"]) == source["text"]  # exact bytes, '' is not NULL
    assert list(by_column["large_text"]) == source["large_text"]
    assert list(by_column["bytes"]) == source["bytes"]
    assert list(by_column["at_tz"]) == source["at_tz"]  # the same instants
    assert list(by_column["u64"]) == [None if v is None else Decimal(v) for v in source["u64"]]
    assert list(by_column["money"]) == source["money"]
    assert list(by_column["took"]) == source["took"]
    assert list(by_column["zone"]) == source["zone"]
    assert set(by_column["nothing"]) == set(by_column["no_float"]) == {None}

    pg.export(pa.table({"x": [float("nan"), None, 1.0]}), "nan")  # Arrow keeps NaN apart
    assert rows_of(raw, "select x::text from nan") == [("NaN",), (None,), ("1",)]

    back = pg.load_arrow("select * from every order by row")
    assert back.num_rows == table.num_rows
    for name in ("i8", "i16", "i32", "i64", "f64", "flag", "at_naive", "at_ms", "day", "clock"):
        assert back[name].to_pylist() == table[name].to_pylist(), name
    assert back["f32"].to_pylist() == table["f32"].cast(pa.float64()).to_pylist()
    assert back.schema.field("at_tz").type == pa.timestamp("us", tz="UTC")
    assert back["at_tz"].to_pylist() == table["at_tz"].to_pylist()


def test_pandas_types_come_back(pg, raw):
    df = pd.DataFrame(
        {
            "vendor_id": pd.array([1, None, 2], dtype="Int64"),
            "pickup": pd.to_datetime(
                ["2020-10-01 08:00", "2020-10-01 23:30", "2020-10-02 00:15"]
            ).tz_localize("America/New_York"),
            "pickup_date": [dt.date(2020, 10, 1), None, dt.date(2020, 10, 2)],
            "zone": ["Astoria", None, ""],
            "fare": [7.5, 12.0, None],
            "ratio": [float("nan"), 1.0, 2.0],  # NaN is pandas' missing value: NULL
            "ok": pd.array([True, None, False], dtype="boolean"),
        }
    )
    pg.export(df, "trips")
    assert rows_of(raw, "select count(*) from trips where ratio is null") == [(1,)]
    back = pg.load("select * from trips order by pickup")
    assert str(back["vendor_id"].dtype) == "Int64"
    assert back["vendor_id"].tolist() == [1, pd.NA, 2]
    assert isinstance(back["pickup"].dtype, pd.DatetimeTZDtype)
    assert (back["pickup"] == df["pickup"].dt.tz_convert("UTC")).all()
    assert back["pickup_date"].tolist() == [dt.date(2020, 10, 1), None, dt.date(2020, 10, 2)]
    assert back["zone"].tolist()[0] == "Astoria" and back["zone"].tolist()[2] == ""
    assert pd.isna(back["zone"][1])
    assert back["fare"].dtype == "float64" and back["fare"].isna().tolist() == [False, False, True]
    assert str(back["ok"].dtype) == "boolean"


def test_polars_and_arrow_inputs(pg, raw):
    frame = pl.DataFrame(
        {
            "n": pl.Series([1, None, 3], dtype=pl.Int32),
            "at": pl.Series(
                [dt.datetime(2020, 10, 1, 8), None, dt.datetime(2020, 10, 3)]
            ).dt.replace_time_zone("Europe/Paris"),
            "day": [dt.date(2020, 10, 1), dt.date(2020, 10, 2), None],
            "s": ["a\tb", "b\nc", None],
            "cat": pl.Series(["x", "y", "x"], dtype=pl.Categorical),
        }
    )
    arrow = frame.to_arrow()
    schema = arrow.schema
    reader = pa.RecordBatchReader.from_batches(schema, arrow.to_batches())
    inputs = {
        "from_polars": frame,
        "from_lazy": frame.lazy(),
        "from_arrow": arrow,
        "from_batch": arrow.to_batches()[0],
        "from_reader": reader,
    }
    for table, obj in inputs.items():
        pg.export(obj, table)
    for table in inputs:
        assert column_types(raw, table) == {
            "n": "integer",
            "at": "timestamp with time zone",
            "day": "date",
            "s": "text",
            "cat": "text",
        }
        back = pl.from_arrow(
            pg.load_arrow(sql.SQL("select * from {}").format(sql.Identifier(table)))
        )
        expected = frame.with_columns(
            pl.col("at").dt.convert_time_zone("UTC"), pl.col("cat").cast(pl.String)
        )
        assert back.equals(expected), table


def test_a_big_export_goes_in_chunks_and_logs_progress(pg_url, raw, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    data = pa.table({"id": pa.array(range(25_000), pa.int64()), "label": ["x"] * 25_000})
    with Postgres(pg_url, chunk_rows=10_000) as pg:
        pg.export(data, "many")
    progress = [r.getMessage() for r in caplog.records if "rows sent so far" in r.getMessage()]
    # chunks start small (1,000 rows, doubling) so the server starts early, up to chunk_rows
    assert [int(m.split(": ")[1].split()[0]) for m in progress] == [
        1_000, 3_000, 7_000, 15_000, 25_000
    ]  # fmt: skip
    assert rows_of(raw, "select count(*), sum(id) from many") == [(25_000, sum(range(25_000)))]


# -- if_exists -------------------------------------------------------------------------


def test_replace_swaps_the_table_and_leaves_nothing_behind(pg, raw):
    pg.export(pd.DataFrame({"a": [1, 2]}), "t")
    pg.export(pd.DataFrame({"b": ["new"]}), "t")
    assert column_types(raw, "t") == {"b": "text"}
    assert rows_of(raw, "select * from t") == [("new",)]
    assert leftovers(raw) == []


def test_fail_raises_when_the_table_exists(pg, raw):
    pg.export(pd.DataFrame({"a": [1]}), "t", if_exists="fail")
    with pytest.raises(UserInputError, match=r"table public\.t already exists"):
        pg.export(pd.DataFrame({"a": [2]}), "t", if_exists="fail")
    assert rows_of(raw, "select a from t") == [(1,)]


def test_append_matches_columns_by_name(pg, raw):
    pg.export(pd.DataFrame({"a": [1], "b": ["x"]}), "t", if_exists="append")  # created
    pg.export(pd.DataFrame({"b": ["y"], "a": [2]}), "t", if_exists="append")
    pg.export(pd.DataFrame({"a": [3]}), "t", if_exists="append")  # b left NULL
    assert rows_of(raw, "select a, b from t order by a") == [(1, "x"), (2, "y"), (3, None)]


def test_append_a_column_the_table_lacks_is_an_error(pg, raw):
    pg.export(pd.DataFrame({"a": [1]}), "t")
    with pytest.raises(UserInputError, match=r"public\.t has no column 'extra'") as error:
        pg.export(pd.DataFrame({"a": [2], "extra": [1.5]}), "t", if_exists="append")
    assert "ADD COLUMN" in str(error.value)
    assert rows_of(raw, "select a from t") == [(1,)]


def test_append_converts_to_the_tables_own_types(pg, raw):
    raw.execute(
        "create table typed (id integer primary key, code varchar(5), amount numeric(8,2),"
        " doc jsonb, seen timestamptz default now())"
    )
    df = pd.DataFrame(
        {
            "id": [1, 2],
            "code": ["ab", "cd"],
            "amount": [1.25, 99.5],
            "doc": [json.dumps({"k": [1, 2]}), "null"],
        }
    )
    pg.export(df, "typed", if_exists="append")
    assert rows_of(raw, "select id, code, amount, doc from typed order by id") == [
        (1, "ab", Decimal("1.25"), {"k": [1, 2]}),
        (2, "cd", Decimal("99.50"), None),
    ]
    with pytest.raises(psycopg.errors.StringDataRightTruncation):
        pg.export(pd.DataFrame({"id": [3], "code": ["too long"]}), "typed", if_exists="append")
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        pg.export(pd.DataFrame({"id": [3], "doc": ["{not json"]}), "typed", if_exists="append")
    assert rows_of(raw, "select count(*) from typed") == [(2,)]
    pg.export(pd.DataFrame({"id": [3]}), "typed", if_exists="append")  # still usable
    assert rows_of(raw, "select count(*) from typed") == [(3,)]


def test_upsert_is_idempotent_and_updates_changed_rows(pg, raw):
    month = pd.DataFrame(
        {
            "vendor": [1, 1, 2],
            "pickup": pd.to_datetime(["2020-10-01 08:00", "2020-10-01 09:00", "2020-10-01 08:00"]),
            "fare": [7.5, 12.0, 9.0],
        }
    )
    key = ["vendor", "pickup"]
    pg.export(month, "trips", if_exists="upsert", unique_key=key)
    first = rows_of(raw, "select * from trips order by vendor, pickup")
    pg.export(month, "trips", if_exists="upsert", unique_key=key)  # the same month again
    assert rows_of(raw, "select * from trips order by vendor, pickup") == first
    primary_key = raw.execute(
        "select pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = 'trips'::regclass and contype = 'p'"
    ).fetchall()
    assert primary_key == [("PRIMARY KEY (vendor, pickup)",)]

    changed = pd.DataFrame(
        {
            "vendor": [1, 3],
            "pickup": pd.to_datetime(["2020-10-01 09:00", "2020-10-02 10:00"]),
            "fare": [13.5, 4.0],
        }
    )
    pg.export(changed, "trips", if_exists="upsert", unique_key=key)
    fares = rows_of(raw, "select vendor, fare from trips order by vendor, pickup")
    assert fares == [(1, 7.5), (1, 13.5), (2, 9.0), (3, 4.0)]


def test_upsert_with_only_key_columns_inserts_what_is_new(pg, raw):
    pg.export(pd.DataFrame({"id": [1, 2]}), "ids", if_exists="upsert", unique_key="id")
    pg.export(pd.DataFrame({"id": [2, 3]}), "ids", if_exists="upsert", unique_key="id")
    assert rows_of(raw, "select id from ids order by id") == [(1,), (2,), (3,)]


def test_upsert_needs_a_unique_index_on_exactly_the_key(pg, raw):
    raw.execute("create table plain (a bigint, b bigint, v text)")
    df = pd.DataFrame({"a": [1], "b": [2], "v": ["x"]})
    with pytest.raises(UserInputError, match=r"no primary key or unique index") as error:
        pg.export(df, "plain", if_exists="upsert", unique_key=["a", "b"])
    assert 'ALTER TABLE "public"."plain" ADD UNIQUE ("a", "b")' in str(error.value)
    raw.execute("create unique index on plain (a)")  # on a alone: not enough
    with pytest.raises(UserInputError, match="no primary key or unique index"):
        pg.export(df, "plain", if_exists="upsert", unique_key=["a", "b"])
    raw.execute("alter table plain add unique (b, a)")  # any order works
    pg.export(df, "plain", if_exists="upsert", unique_key=["a", "b"])
    pg.export(df.assign(v="y"), "plain", if_exists="upsert", unique_key=["a", "b"])
    assert rows_of(raw, "select * from plain") == [(1, 2, "y")]


def test_upsert_refuses_duplicate_or_missing_keys_and_changes_nothing(pg, raw):
    pg.export(pd.DataFrame({"id": [1], "v": ["old"]}), "t", if_exists="upsert", unique_key="id")
    twice = pd.DataFrame({"id": [1, 1], "v": ["a", "b"]})
    with pytest.raises(UserInputError, match=r"several rows with the same unique_key \(id\)"):
        pg.export(twice, "t", if_exists="upsert", unique_key="id")
    missing = pd.DataFrame({"id": pd.array([2, None], dtype="Int64"), "v": ["a", "b"]})
    with pytest.raises(UserInputError, match="unique_key column 'id' has 1 missing value"):
        pg.export(missing, "t", if_exists="upsert", unique_key="id")
    assert rows_of(raw, "select * from t") == [(1, "old")]


# -- failures leave the destination as it was ------------------------------------------


def breaking_reader(schema: pa.Schema, good: list[pa.RecordBatch]) -> pa.RecordBatchReader:
    """A stream that yields ``good`` batches, then fails, as a source can mid-export."""

    def batches():
        yield from good
        raise RuntimeError("the source broke mid-stream")

    return pa.RecordBatchReader.from_batches(schema, batches())


def test_an_interrupted_replace_keeps_the_old_table(pg_url, raw, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with Postgres(pg_url, chunk_rows=1_000) as pg:
        pg.export(pd.DataFrame({"id": [1, 2, 3], "label": ["old"] * 3}), "trips")
        batch = pa.record_batch({"id": pa.array(range(5_000)), "label": ["new"] * 5_000})
        with pytest.raises(RuntimeError, match="broke mid-stream"):
            pg.export(breaking_reader(batch.schema, [batch]), "trips")
        assert any("rows sent so far" in r.getMessage() for r in caplog.records)  # mid-COPY
        assert rows_of(raw, "select * from trips order by id") == [
            (1, "old"),
            (2, "old"),
            (3, "old"),
        ]
        assert leftovers(raw) == []
        pg.export(pd.DataFrame({"id": [9], "label": ["next"]}), "trips")  # the connector recovers
    assert rows_of(raw, "select * from trips") == [(9, "next")]
    assert leftovers(raw) == []


def test_an_interrupted_upsert_and_append_change_nothing(pg_url, raw):
    with Postgres(pg_url, chunk_rows=1_000) as pg:
        pg.export(
            pd.DataFrame({"id": [1, 2], "v": ["a", "b"]}), "t", if_exists="upsert", unique_key="id"
        )
        batch = pa.record_batch({"id": pa.array(range(3_000)), "v": ["new"] * 3_000})
        with pytest.raises(RuntimeError, match="broke mid-stream"):
            pg.export(
                breaking_reader(batch.schema, [batch]), "t", if_exists="upsert", unique_key="id"
            )
        with pytest.raises(RuntimeError, match="broke mid-stream"):
            pg.export(breaking_reader(batch.schema, [batch]), "t", if_exists="append")
    assert rows_of(raw, "select * from t order by id") == [(1, "a"), (2, "b")]


KILLED_EXPORT = """
import sys, time, pathlib
import pyarrow as pa
from treadle.io import Postgres

url, marker = sys.argv[1], pathlib.Path(sys.argv[2])
schema = pa.schema([("id", pa.int64()), ("label", pa.string())])

def batches():
    for i in range(1_000):
        yield pa.record_batch(
            [pa.array(range(i * 10_000, (i + 1) * 10_000)), pa.array(["new"] * 10_000)],
            schema=schema,
        )
        if i == 5:
            marker.write_text("copying")
        if i >= 5:
            time.sleep(0.05)

with Postgres(url, chunk_rows=10_000) as pg:
    pg.export(pa.RecordBatchReader.from_batches(schema, batches()), "trips")
"""


def copy_backends(raw) -> list[int]:
    rows = raw.execute(
        "select pid from pg_stat_activity where datname = current_database()"
        " and application_name = 'treadle' and query like 'COPY%%'"
    )
    return [pid for (pid,) in rows.fetchall()]


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_a_killed_export_leaves_the_old_table_and_nothing_behind(pg_url, raw, tmp_path):
    with Postgres(pg_url) as pg:
        pg.export(pd.DataFrame({"id": [1, 2, 3], "label": ["old"] * 3}), "trips")
    marker = tmp_path / "copying"
    process = subprocess.Popen([sys.executable, "-c", KILLED_EXPORT, pg_url, str(marker)])
    try:
        wait_until(lambda: marker.exists() or process.poll() is not None)
        assert process.poll() is None, "the export ended before it could be killed"
        wait_until(lambda: copy_backends(raw))  # the COPY is running on the server
        assert rows_of(raw, "select count(*) from trips") == [(3,)]  # readable meanwhile
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    wait_until(lambda: not copy_backends(raw))  # the server noticed and rolled back
    assert rows_of(raw, "select * from trips order by id") == [(1, "old"), (2, "old"), (3, "old")]
    assert leftovers(raw) == []
    with Postgres(pg_url) as pg:
        pg.export(pd.DataFrame({"id": [4], "label": ["next"]}), "trips")
    assert rows_of(raw, "select * from trips") == [(4, "next")]
    assert leftovers(raw) == []


def test_a_reader_never_sees_a_missing_or_half_loaded_table(pg_url):
    sizes = [30_000, 60_000, 10_000, 45_000, 20_000, 50_000]

    def generation(number: int) -> pa.Table:
        size = sizes[number]
        return pa.table({"id": pa.array(range(size)), "gen": pa.array([number] * size)})

    seen: list[tuple[int, tuple[int, ...]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(pg_url, autocommit=True) as connection:
            while not stop.is_set():
                try:
                    count, gens = connection.execute(
                        "select count(*), array_agg(distinct gen) from live"
                    ).fetchone()
                except psycopg.Error as exc:
                    errors.append(exc)
                    return
                seen.append((count, tuple(gens)))

    with Postgres(pg_url, chunk_rows=5_000) as pg:
        pg.export(generation(0), "live")
        reader = threading.Thread(target=read)
        reader.start()
        try:
            for number in range(1, len(sizes)):
                pg.export(generation(number), "live")
        finally:
            stop.set()
            reader.join()
    assert errors == []
    assert set(seen) <= {(size, (number,)) for number, size in enumerate(sizes)}
    assert len({gens for _, gens in seen}) >= 3, "the reader saw too few generations"


def lock_waiters(raw) -> int:
    rows = raw.execute(
        "select count(*) from pg_stat_activity"
        " where datname = current_database() and wait_event_type = 'Lock'"
    )
    return rows.fetchone()[0]


def test_a_query_arriving_during_the_swap_waits_then_reads_the_new_table(pg_url, raw):
    with Postgres(pg_url) as pg:
        pg.export(pa.table({"id": range(3)}), "live")
    holder = psycopg.connect(pg_url)  # a long read holds the old table until it commits
    holder.execute("select count(*) from live")
    results: dict[str, object] = {}

    def export() -> None:
        with Postgres(pg_url) as pg:
            pg.export(pa.table({"id": range(5)}), "live")
        results["export"] = "done"

    def late_read() -> None:
        with psycopg.connect(pg_url, autocommit=True) as connection:
            results["late"] = connection.execute("select count(*) from live").fetchone()[0]

    threads = [threading.Thread(target=export), threading.Thread(target=late_read)]
    try:
        threads[0].start()
        wait_until(lambda: lock_waiters(raw) == 1)  # the swap waits for the long read
        threads[1].start()
        wait_until(lambda: lock_waiters(raw) == 2)  # the late query waits behind the swap
        assert "late" not in results
    finally:
        holder.commit()
        holder.close()
        for thread in threads:
            thread.join(timeout=30)
    assert results == {"export": "done", "late": 5}


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "type_name"),
    [
        (pd.Series([{"a": 1}, {"a": 2}]), "struct<a: int64>"),
        (pd.Series([[1, 2], [3]]), "list<item: int64>"),
    ],
)
def test_a_column_with_no_postgres_type_is_refused_before_connecting(column, type_name):
    df = pd.DataFrame({"id": [1, 2], "payload": column})
    with pytest.raises(UserInputError) as error:
        unreachable().export(df, "t")  # it would fail to connect had it tried
    message = str(error.value)
    assert "column 'payload'" in message and type_name in message
    assert "json.dumps" in message


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"if_exists": "overwrite"}, "if_exists must be one of replace, append, fail, upsert"),
        ({"if_exists": "upsert"}, "needs unique_key"),
        ({"if_exists": "upsert", "unique_key": ["id", "vendor"]}, "'vendor' is not in the data"),
        ({"if_exists": "append", "unique_key": "id"}, "only with if_exists='upsert'"),
        ({"schema": ""}, "not a valid schema name"),
    ],
)
def test_bad_arguments_are_refused_before_connecting(kwargs, match):
    with pytest.raises(UserInputError, match=match):
        unreachable().export(pd.DataFrame({"id": [1], "vendorid": [2]}), "t", **kwargs)


def test_bad_names_are_refused():
    pg = unreachable()
    with pytest.raises(UserInputError, match="not a valid table name"):
        pg.export(pd.DataFrame({"a": [1]}), "")
    with pytest.raises(UserInputError, match="longer than PostgreSQL's limit of 63 bytes"):
        pg.export(pd.DataFrame({"a": [1]}), "x" * 64)
    with pytest.raises(UserInputError, match="two columns named 'a'"):
        pg.export(pa.table([pa.array([1]), pa.array([2])], names=["a", "a"]), "t")
    with pytest.raises(UserInputError, match="no columns"):
        pg.export(pd.DataFrame(), "t")


def test_odd_names_are_quoted_not_injected(pg, raw):
    raw.execute("create table x (keep integer)")
    odd = 'trips "2024"; drop table x'
    pg.export(pd.DataFrame({'col "1"; -- 100%': [1, 2]}), odd, schema="raw data")
    pg.export(pd.DataFrame({'col "1"; -- 100%': [3]}), odd, schema="raw data")  # replace
    pg.export(pd.DataFrame({'col "1"; -- 100%': [4]}), odd, schema="raw data", if_exists="append")
    assert pg.table_exists(odd, schema="raw data")
    assert rows_of(raw, "select count(*) from x") == [(0,)]  # still there
    name = sql.Identifier("raw data", odd)
    assert pg.load(sql.SQL("select * from {} order by 1").format(name)).to_dict("list") == {
        'col "1"; -- 100%': [3, 4]
    }
    for _ in range(2):
        pg.export(pd.DataFrame({"k; --": [1]}), odd, if_exists="upsert", unique_key="k; --")
    assert rows_of(raw, sql.SQL("select * from {}").format(sql.Identifier(odd))) == [(1,)]
    long_name = "é" * 31  # 62 bytes: the staging name must be cut, by whole characters
    pg.export(pd.DataFrame({"a": [1]}), long_name)
    pg.export(pd.DataFrame({"a": [2]}), long_name)
    assert rows_of(raw, f'select a from "{long_name}"') == [(2,)]
    assert leftovers(raw) == []


def test_exporting_over_a_view_is_refused(pg, raw):
    raw.execute("create view v as select 1 as a")
    with pytest.raises(UserInputError, match=r"public\.v is a view, not a table"):
        pg.export(pd.DataFrame({"a": [2]}), "v")
    assert rows_of(raw, "select a from v") == [(1,)]


# -- load ------------------------------------------------------------------------------


def test_load_streams_a_result_larger_than_a_chunk(pg_url, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with Postgres(pg_url, chunk_rows=1_000) as pg:
        df = pg.load(
            "select n, case when n %% 7 = 0 then null else n end as maybe,"
            " 'row ' || n as label from generate_series(1, %s) as n",
            [2_500],
        )
        cursors = pg.connection.execute("select count(*) from pg_cursors").fetchall()
    progress = [r.getMessage() for r in caplog.records if "rows so far" in r.getMessage()]
    assert progress[:3] == [
        "loaded 1000 rows so far",
        "loaded 2000 rows so far",
        "loaded 2500 rows so far",
    ]
    assert len(df) == 2_500 and df["n"].tolist() == list(range(1, 2_501))
    assert str(df["maybe"].dtype) == "Int32" and df["maybe"].isna().sum() == 2_500 // 7
    assert df["label"].iloc[-1] == "row 2500"
    assert cursors == [(0,)]  # the server-side cursor is closed


def test_load_types(pg):
    df = pg.load(
        "select 1.5::numeric(10,2) as amount, '{\"a\": [1]}'::jsonb as doc,"
        " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as id, array[1, 2] as ints,"
        " interval '1 day 2 hours' as took, '2020-10-01 08:00+02'::timestamptz as at,"
        " '2020-10-01'::date as day, 'x'::varchar(3) as short, null::integer as nothing,"
        " '192.168.0.1'::inet as address"
    )
    row = df.iloc[0]
    assert df["amount"].dtype == "float64" and row["amount"] == 1.5
    assert json.loads(row["doc"]) == {"a": [1]}
    assert row["id"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert list(row["ints"]) == [1, 2]
    assert row["took"] == pd.Timedelta(hours=26)
    assert row["at"] == pd.Timestamp("2020-10-01 06:00", tz="UTC")
    assert row["day"] == dt.date(2020, 10, 1)
    assert row["short"] == "x"
    assert str(df["nothing"].dtype) == "Int32" and pd.isna(row["nothing"])
    assert row["address"] == "192.168.0.1"
    empty = pg.load_arrow("select 1::bigint as a, 'x'::text as b where false")
    assert empty.num_rows == 0 and empty.schema.types == [pa.int64(), pa.string()]


def test_execute_and_parameters(pg):
    pg.execute("create table t (a integer, b text); insert into t values (1, 'x')")
    pg.execute("insert into t values (%s, %s)", [2, "y"])
    assert pg.load("select b from t where a = %(a)s", {"a": 2})["b"].tolist() == ["y"]
    pg.close()
    pg.close()  # twice is fine
    assert pg.table_exists("t")  # reconnects


# -- connecting ------------------------------------------------------------------------


def write_profile(project, url: str, *settings: str) -> None:
    """A ``dev`` profile for ``url``, the password from $TEST_PG_PASSWORD, plus ``settings``."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    lines = [
        "version: 0.1.1",
        "default:",
        "  DUCKDB_DATABASE: .treadle/warehouse.duckdb",
        "dev:",
        f'  POSTGRES_HOST: "{info["host"]}"',
        f"  POSTGRES_PORT: {info['port']}",
        f"  POSTGRES_DBNAME: {info['dbname']}",
        f"  POSTGRES_USER: {info['user']}",
        "  POSTGRES_PASSWORD: \"{{ env_var('TEST_PG_PASSWORD') }}\"",
        "  POSTGRES_SCHEMA: staging",
        *(f"  {setting}" for setting in settings),
    ]
    project.write("io_config.yaml", "\n".join(lines) + "\n")


def test_from_profile(project, pg_url, raw, monkeypatch):
    monkeypatch.setenv("TEST_PG_PASSWORD", "not-needed-with-trust")
    write_profile(project, pg_url, "POSTGRES_CONNECT_TIMEOUT: 3")
    with activated(project.root), Postgres.from_profile("dev") as pg:
        assert "(profile 'dev')" in pg.where and "not-needed" not in repr(pg)
        pg.export(pd.DataFrame({"a": [1]}), "trips")  # into POSTGRES_SCHEMA, created
        assert pg.load("select a from trips")["a"].tolist() == [1]  # found on the search_path
    assert rows_of(raw, "select a from staging.trips") == [(1,)]
    with pytest.raises(UserInputError, match="profile 'default' has no PostgreSQL settings"):
        Postgres.from_profile(project=project.root)
    with pytest.raises(UserInputError, match="unknown profile 'prod'"):
        Postgres.from_profile("prod", project=project.root)


def test_from_profile_checks_numbers(project, pg_url, monkeypatch):
    monkeypatch.setenv("TEST_PG_PASSWORD", "x")
    write_profile(project, pg_url, "POSTGRES_CONNECT_TIMEOUT: soon")
    with pytest.raises(UserInputError, match="POSTGRES_CONNECT_TIMEOUT of profile 'dev' must be a"):
        Postgres.from_profile("dev", project=project.root)


class RefusingServer:
    """Speaks just enough of PostgreSQL's protocol to ask for a password and refuse it."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.passwords: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        with self.socket:
            connection, _ = self.socket.accept()
            with connection:
                self.refuse(connection)

    def refuse(self, connection: socket.socket) -> None:
        while True:
            message = self.receive(connection, int.from_bytes(self.receive(connection, 4)) - 4)
            if int.from_bytes(message[:4]) in (80877103, 80877104):  # SSL or GSS request
                connection.sendall(b"N")
                continue
            break  # the startup message
        connection.sendall(b"R" + (8).to_bytes(4) + (3).to_bytes(4))  # send a cleartext password
        assert self.receive(connection, 1) == b"p"
        password = self.receive(connection, int.from_bytes(self.receive(connection, 4)) - 4)
        self.passwords.append(password.rstrip(b"\x00"))
        fields = (
            b'SFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed for user "bob"\x00\x00'
        )
        connection.sendall(b"E" + (len(fields) + 4).to_bytes(4) + fields)

    @staticmethod
    def receive(connection: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = connection.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data


def test_a_wrong_password_is_a_clear_error_without_the_password(project, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    server = RefusingServer()
    monkeypatch.setenv("TEST_PG_PASSWORD", "s3cret-Pa55")
    write_profile(project, f"postgresql://bob@127.0.0.1:{server.port}/db")
    pg = Postgres.from_profile("dev", project=project.root)
    with pytest.raises(UserInputError) as error:
        pg.load("select 1")
    message = str(error.value)
    assert message.startswith(f"cannot connect to PostgreSQL at bob@127.0.0.1:{server.port}/db")
    assert "(profile 'dev')" in message and "password authentication failed" in message
    assert "POSTGRES_PASSWORD" in message  # the hint
    assert server.passwords == [b"s3cret-Pa55"]  # it was sent, and refused
    assert "s3cret" not in message + repr(error.value.__cause__) + caplog.text


def test_an_unreachable_host_fails_fast(project, monkeypatch):
    monkeypatch.setenv("TEST_PG_PASSWORD", "s3cret")
    write_profile(project, "postgresql://postgres@127.0.0.1:1/db")
    started = time.monotonic()
    with pytest.raises(
        UserInputError, match=r"127\.0\.0\.1:1/db \(profile 'dev'\): .*refused"
    ) as error:
        Postgres.from_profile("dev", project=project.root).export(pd.DataFrame({"a": [1]}), "t")
    assert time.monotonic() - started < 5
    assert "POSTGRES_HOST" in str(error.value) and "s3cret" not in str(error.value)


def test_a_host_that_never_answers_times_out(project, monkeypatch):
    monkeypatch.setenv("TEST_PG_PASSWORD", "s3cret")
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    with silent:
        port = silent.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/db"
        write_profile(project, url, "POSTGRES_CONNECT_TIMEOUT: 1")
        started = time.monotonic()
        with pytest.raises(UserInputError, match=r"no answer within 2 s \(connect timeout\)"):
            Postgres.from_profile("dev", project=project.root).load("select 1")
        assert time.monotonic() - started < 8


def test_the_password_never_shows():
    pg = Postgres("postgresql://bob:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in repr(pg) and "s3cret" not in pg.where
    with pytest.raises(UserInputError) as error:
        pg.load("select 1")
    assert "s3cret" not in str(error.value)


def test_without_psycopg_the_error_names_the_extra():
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from treadle.errors import MissingExtra\n"
        "try:\n"
        "    from treadle.io import Postgres\n"
        "except MissingExtra as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'treadle[postgres]'" in done.stdout
    assert issubclass(MissingExtra, UserInputError)


def test_the_module_is_imported_only_on_use():
    code = "import sys, treadle.io; print('treadle.io.postgres' in sys.modules, 'psycopg' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
