"""The output store keeps every output faithfully, with metadata readable on its own."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from treadle.engine.outputs import BackgroundWriter, OutputStore, list_runs


@pytest.fixture
def store(tmp_path) -> OutputStore:
    return OutputStore(tmp_path / "outputs", "run1")


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.array([1, None, 3], dtype="Int64"),
            "at": pd.to_datetime(["2020-10-01 05:00", "2020-10-02 06:00", None]).tz_localize(
                "Europe/Amsterdam"
            ),
            "day": [dt.date(2020, 10, 1), dt.date(2020, 10, 2), None],
            "name": pd.array(["a", None, "c"], dtype="string"),
            "amount": [1.5, 2.5, float("nan")],
        }
    )


def test_pandas_round_trip_keeps_types_and_index(store):
    df = frame()[lambda d: d.index > 0]  # a filtered frame keeps its index
    meta = store.save("t", df)
    back = store.load("t")
    pd.testing.assert_frame_equal(back, df)
    assert meta.kind == "table" and meta.python_type == "pandas" and meta.rows == 2
    assert ("id", "int64") in meta.columns and meta.file == "t.arrow"
    assert meta.bytes == (store.run_dir / "t.arrow").stat().st_size > 0
    shown = [name for name, _ in meta.columns]  # the index is stored, not shown as data
    assert shown == ["id", "at", "day", "name", "amount"]
    assert set(meta.preview[0]) == set(shown)


def test_a_named_index_is_data_in_the_preview(store):
    totals = pd.DataFrame({"vendor": [1, 2, 1], "fare": [3.0, 4.0, 5.0]}).groupby("vendor").sum()
    meta = store.save("t", totals)
    assert [name for name, _ in meta.columns] == ["fare", "vendor"]
    assert meta.preview[0] == {"fare": 8.0, "vendor": 1}
    pd.testing.assert_frame_equal(store.load("t"), totals)


def test_polars_and_arrow_come_back_as_themselves(store):
    polars_df = pl.DataFrame({"x": [1, 2, None], "s": ["a", "b", "c"]})
    store.save("p", polars_df)
    assert store.load("p").equals(polars_df)
    table = pa.table({"x": [1, 2, 3]})
    store.save("a", table)
    assert store.load("a").equals(table)
    store.save("b", pa.record_batch({"x": [1]}))
    assert store.load("b").equals(pa.table({"x": [1]}))


def test_metadata_and_preview_without_loading(store):
    store.save("t", pd.DataFrame({"n": range(1000), "d": [dt.date(2020, 1, 1)] * 1000}))
    meta = OutputStore(store.outputs_root, "run1").meta("t")
    assert meta.rows == 1000
    assert len(meta.preview) == 10 and meta.preview[0] == {"n": 0, "d": "2020-01-01"}
    assert meta.columns == (("n", "int64"), ("d", "date32[day]"))


def test_arrow_read_back_is_zero_copy(store):
    store.save("big", pa.table({"x": pa.array(range(1_000_000), pa.int64())}))
    before = pa.total_allocated_bytes()
    table = store.load_arrow(store.meta("big"))
    assert table.num_rows == 1_000_000
    assert pa.total_allocated_bytes() - before < 1_000_000  # mapped, not copied (8 MB)


def test_json_values_inline_and_in_a_file(store):
    small = store.save("small", {"a": [1, 2]})
    assert small.file is None and small.rows is None  # a dict is one record, not rows
    assert store.load("small") == {"a": [1, 2]}
    big = list(range(100_000))
    meta = store.save("big", big)
    assert meta.file == "big.json" and meta.rows == 100_000 and meta.preview == list(range(10))
    assert store.load("big") == big
    assert store.save("none", None).kind == "json" and store.load("none") is None


def test_other_values_are_pickled_exactly(store):
    value = (dt.datetime(2020, 1, 1, tzinfo=dt.UTC), {1, 2}, float("nan"))
    meta = store.save("obj", value)
    assert meta.kind == "pickle" and meta.python_type == "tuple"
    back = store.load("obj")
    assert back[:2] == value[:2] and back[2] != back[2]


def test_parquet_format(tmp_path):
    store = OutputStore(tmp_path, "r", table_format="parquet")
    meta = store.save("t", frame())
    assert meta.file == "t.parquet"
    pd.testing.assert_frame_equal(store.load("t"), frame())


def test_writes_leave_no_temporary_files(store):
    store.save("t", frame())
    store.save("j", [1])
    store.save("o", ValueError("kept as a pickle"))
    assert not [p for p in store.run_dir.iterdir() if p.name.startswith(".")]


def test_background_writer_stores_other_values_at_once(store):
    writer = BackgroundWriter(store)
    assert writer.save("j", [1, 2]).rows == 2  # an OutputMeta: written already
    with pytest.raises(TypeError, match="pickle"):
        writer.save("g", (i for i in range(2)))  # raises in the caller, inside the boundary


def test_background_writer_converts_before_returning(store):
    writer = BackgroundWriter(store)
    df = pd.DataFrame({"x": [1, 2, 3]})
    pending = writer.save("t", df)
    assert pending.rows == 3  # known before the file is written
    df["x"] = [9, 9, 9]  # a later change must not reach the stored copy
    df["y"] = 1
    writer.close()
    assert pending.future.result().rows == 3
    assert store.load("t").to_dict("list") == {"x": [1, 2, 3]}


def test_unknown_key_and_run_listing(store, tmp_path):
    with pytest.raises(KeyError):
        store.load("missing")
    OutputStore(store.outputs_root, "20200101").save("a", 1)
    OutputStore(store.outputs_root, "20300101").save("a", 1)
    assert list_runs(store.outputs_root) == ["20300101", "20200101"]  # newest first
    assert list_runs(tmp_path / "nothing") == []
