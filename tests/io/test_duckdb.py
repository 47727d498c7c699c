from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from treadle.errors import UserInputError
from treadle.io import DuckDB
from treadle.project import load_project
from treadle.project.active import activated


@pytest.fixture
def db(tmp_path):
    with DuckDB(tmp_path / "warehouse.duckdb") as database:
        yield database


def typed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "vendor_id": pd.array([1, None, 2], dtype="Int64"),
            "pickup": pd.to_datetime(
                ["2020-10-01 08:00", "2020-10-01 23:30", "2020-10-02 00:15"]
            ).tz_localize("America/New_York"),
            "pickup_date": [dt.date(2020, 10, 1), None, dt.date(2020, 10, 2)],
            "zone": ["Astoria", None, "Harlem"],
            "fare": [7.5, 12.0, None],
        }
    )


def test_pandas_round_trip_keeps_types(db):
    df = typed_frame()
    db.export(df, "trips")
    back = db.load("select * from trips")
    assert str(back["vendor_id"].dtype) == "Int64"
    assert back["vendor_id"].tolist() == [1, pd.NA, 2]
    assert isinstance(back["pickup"].dtype, pd.DatetimeTZDtype)
    assert (back["pickup"].dt.tz_convert("UTC") == df["pickup"].dt.tz_convert("UTC")).all()
    assert back["pickup_date"].tolist() == df["pickup_date"].tolist()
    assert back["zone"].isna().tolist() == [False, True, False]
    assert back["zone"].dropna().tolist() == ["Astoria", "Harlem"]
    assert back["fare"].dtype == "float64"


def test_polars_and_arrow_round_trip(db):
    frame = pl.DataFrame(
        {
            "n": pl.Series([1, None, 3], dtype=pl.Int32),
            "at": pl.Series(
                [dt.datetime(2020, 10, 1, 8), None, dt.datetime(2020, 10, 3)]
            ).dt.replace_time_zone("UTC"),
            "day": [dt.date(2020, 10, 1), dt.date(2020, 10, 2), None],
            "s": ["a", "b", None],
        }
    )
    db.export(frame, "from_polars")
    db.export(frame.to_arrow(), "from_arrow")
    db.export(frame.to_arrow().to_batches()[0], "from_batch")
    for table in ("from_polars", "from_arrow", "from_batch"):
        back = db.load_arrow(f"select * from {table}")
        types = dict(zip(back.schema.names, back.schema.types, strict=True))
        assert types["n"] == pa.int32()
        assert types["at"].unit == "us" and types["at"].tz is not None
        assert types["day"] == pa.date32()
        assert pa.types.is_string(types["s"]) or pa.types.is_large_string(types["s"])
        back_frame = pl.from_arrow(back).with_columns(pl.col("at").dt.convert_time_zone("UTC"))
        assert back_frame.equals(frame)


def test_replace_keeps_the_old_table_when_the_export_fails(db):
    db.export(pd.DataFrame({"a": [1, 2]}), "t")
    for bad in ([1, 2, 3], pd.DataFrame({"a": [1, "x", 2.5]})):
        with pytest.raises(UserInputError):
            db.export(bad, "t")
        assert db.load("select * from t")["a"].tolist() == [1, 2]
    db.export(pd.DataFrame({"b": ["new"]}), "t")
    assert db.load("select * from t").to_dict("list") == {"b": ["new"]}


def test_append_matches_columns_by_name_and_rolls_back_on_error(db):
    db.export(pd.DataFrame({"a": [1], "b": ["x"]}), "t")
    db.export(pd.DataFrame({"b": ["y"], "a": [2]}), "t", if_exists="append")
    assert db.load("select * from t order by a").to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}
    with pytest.raises(Exception, match="(?i)convert"):
        db.export(pd.DataFrame({"a": ["not a number"], "b": ["z"]}), "t", if_exists="append")
    assert db.load("select count(*) as n from t")["n"].tolist() == [2]
    db.export(pd.DataFrame({"a": [3], "b": ["z"]}), "t", if_exists="append")  # still usable
    assert len(db.load("select * from t")) == 3


def test_append_creates_a_missing_table(db):
    db.export(pd.DataFrame({"a": [1]}), "fresh", if_exists="append")
    assert db.load("select * from fresh")["a"].tolist() == [1]


def test_fail_raises_when_the_table_exists(db):
    db.export(pd.DataFrame({"a": [1]}), "t", if_exists="fail")
    with pytest.raises(UserInputError, match="already exists"):
        db.export(pd.DataFrame({"a": [2]}), "t", if_exists="fail")
    assert db.load("select * from t")["a"].tolist() == [1]


def test_bad_if_exists(db):
    with pytest.raises(UserInputError, match="if_exists"):
        db.export(pd.DataFrame({"a": [1]}), "t", if_exists="overwrite")


def test_schema_is_created_and_identifiers_are_quoted(db):
    df = pd.DataFrame({"a": [1]})
    db.export(df, 'odd "name"; drop table x', schema="raw data")
    assert db.table_exists('odd "name"; drop table x', schema="raw data")
    assert db.load('select * from "raw data"."odd ""name""; drop table x"')["a"].tolist() == [1]
    with pytest.raises(UserInputError):
        db.export(df, "")


def test_execute_and_parameters(db):
    db.execute("create table t (a integer, b varchar); insert into t values (1, 'x')")
    db.execute("insert into t values (?, ?)", [2, "y"])
    assert db.load("select b from t where a = ?", [2])["b"].tolist() == ["y"]
    assert db.load_arrow("select $n as n", {"n": 5}).to_pylist() == [{"n": 5}]


def test_the_database_file_persists_and_reopens(tmp_path):
    path = tmp_path / "deep" / "folder" / "w.duckdb"
    with DuckDB(path) as db:
        db.export(pd.DataFrame({"a": [1]}), "t")
    assert path.is_file()
    db.close()  # twice is fine
    assert db.load("select * from t")["a"].tolist() == [1]  # reopens on use
    db.close()


def test_from_profile_resolves_against_the_project(project):
    project.write("io_config.yaml", "default: {}\ndev:\n  DUCKDB_DATABASE: data/dev.duckdb\n")
    default = DuckDB.from_profile(project=project.root)
    assert default.database == str(project.root.resolve() / ".treadle" / "warehouse.duckdb")
    with activated(project.root), DuckDB.from_profile("dev") as dev:
        dev.export(pd.DataFrame({"a": [1]}), "t")
    assert (project.root / "data" / "dev.duckdb").is_file()
    with pytest.raises(UserInputError, match="unknown profile"):
        DuckDB.from_profile("prod", project=project.root)


def test_from_profile_accepts_a_loaded_project(project):
    project.write("io_config.yaml", "default:\n  DUCKDB_DATABASE: w.duckdb\n")
    loaded = load_project(project.root)
    assert DuckDB.from_profile(project=loaded).database == str(loaded.root / "w.duckdb")


def test_from_profile_uses_the_runs_variables(project):
    project.write(
        "io_config.yaml", "default:\n  DUCKDB_DATABASE: \"{{ variables('db') }}.duckdb\"\n"
    )
    with activated(project.root, {"db": "run_db"}):
        assert DuckDB.from_profile().database.endswith("run_db.duckdb")
