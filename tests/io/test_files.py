from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from treadle.errors import UserInputError
from treadle.io import Files
from treadle.project.active import activated


@pytest.fixture
def files(project) -> Files:
    return Files(project.root)


def trips() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lpep_pickup_date": [dt.date(2020, 10, 1), dt.date(2020, 10, 1), dt.date(2020, 10, 2)],
            "passenger_count": pd.array([1, None, 3], dtype="Int64"),
            "trip_distance": [1.5, 0.0, 7.25],
            "zone": ["Astoria", "Harlem", None],
        }
    )


def listing(root: Path) -> list[str]:
    """Every file and folder under ``root``, hidden ones too, relative and sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.json", "t.jsonl", "t.parquet"])
def test_single_file_round_trip(files, name):
    df = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"], "v": [0.5, None, 2.0]})
    files.export(df, f"data/{name}")
    back = files.load(f"data/{name}")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert listing(files.root / "data") == [name]  # no temporary file left behind


def test_parquet_keeps_types(files):
    df = trips()
    df["at"] = pd.to_datetime(["2020-10-01 08:00"] * 3).tz_localize("UTC")
    files.export(df, "t.parquet")
    pd.testing.assert_frame_equal(files.load("t.parquet"), df)
    assert files.load("t.parquet", columns=["zone"]).columns.tolist() == ["zone"]


def test_json_array_and_explicit_format(files, project):
    project.write("a.json", '[{"a": 1}, {"a": 2}]')
    project.write("lines.txt", '{"a": 1}\n{"a": 2}\n')
    assert files.load("a.json")["a"].tolist() == [1, 2]
    assert files.load("lines.txt", format="json")["a"].tolist() == [1, 2]
    with pytest.raises(UserInputError, match="format"):
        files.load("lines.txt")
    with pytest.raises(UserInputError, match="did you mean 'json'"):
        files.load("lines.txt", format="jsn")


def test_json_writes_dates_as_text(files):
    files.export(trips(), "t.json")
    assert '"lpep_pickup_date":"2020-10-01"' in (files.root / "t.json").read_text()


def test_export_accepts_polars_and_arrow(files):
    files.export(pl.DataFrame({"a": [1, 2]}), "p.parquet")
    files.export(pa.table({"a": [1, 2]}), "a.csv")
    assert files.load("p.parquet")["a"].tolist() == [1, 2]
    assert files.load("a.csv")["a"].tolist() == [1, 2]


@pytest.mark.parametrize("name", ["t.csv", "t.json", "t.parquet"])
def test_append_and_fail(files, name):
    files.export(pd.DataFrame({"a": [1], "b": ["x"]}), name)
    files.export(pd.DataFrame({"a": [2], "b": ["y"]}), name, if_exists="append")
    assert files.load(name)["a"].tolist() == [1, 2]
    with pytest.raises(UserInputError, match="already exists"):
        files.export(pd.DataFrame({"a": [3], "b": ["z"]}), name, if_exists="fail")
    with pytest.raises(UserInputError, match="columns"):
        files.export(pd.DataFrame({"c": [3]}), name, if_exists="append")
    assert files.load(name)["a"].tolist() == [1, 2]


def test_partitioned_layout_and_round_trip(files):
    df = trips()
    files.export(df, "green/2020-10", partition_by=["lpep_pickup_date"])
    folder = files.root / "green" / "2020-10"
    assert [p.name for p in sorted(folder.iterdir()) if p.is_dir()] == [
        "lpep_pickup_date=2020-10-01",
        "lpep_pickup_date=2020-10-02",
    ]
    assert not [p for p in listing(files.root / "green") if p.startswith(".")]
    back = files.load("green/2020-10")
    assert back["lpep_pickup_date"].tolist() == df["lpep_pickup_date"].tolist()  # dates again
    pd.testing.assert_frame_equal(back, df)
    one_day = files.load("green/2020-10", filters=[("lpep_pickup_date", "=", dt.date(2020, 10, 2))])
    assert one_day["trip_distance"].tolist() == [7.25]


def test_partitioned_timestamps_round_trip(files):
    df = pd.DataFrame(
        {"hour": pd.to_datetime(["2020-10-01 08:00", "2020-10-01 09:00"]), "v": [1, 2]}
    )
    files.export(df, "hours", partition_by="hour")
    pd.testing.assert_frame_equal(files.load("hours"), df)


def test_partitioned_append_replace_and_fail(files):
    df = trips()
    files.export(df, "ds", partition_by=["lpep_pickup_date"])
    files.export(df, "ds", partition_by=["lpep_pickup_date"], if_exists="append")
    assert len(files.load("ds")) == 6
    files.export(df.head(1), "ds", partition_by=["lpep_pickup_date"])  # replace
    assert len(files.load("ds")) == 1
    assert [p.name for p in (files.root / "ds").iterdir() if p.is_dir()] == [
        "lpep_pickup_date=2020-10-01"
    ]
    with pytest.raises(UserInputError, match="already exists"):
        files.export(df, "ds", partition_by=["lpep_pickup_date"], if_exists="fail")
    with pytest.raises(UserInputError, match="partitioned by"):
        files.export(df, "ds", partition_by=["zone"], if_exists="append")
    assert len(files.load("ds")) == 1
    assert not [p for p in listing(files.root) if Path(p).name.startswith(".treadle")]


def test_failed_partitioned_export_leaves_the_old_dataset(files):
    df = trips()
    files.export(df, "ds", partition_by=["lpep_pickup_date"])
    before = listing(files.root)

    with pytest.raises(UserInputError, match="did you mean 'lpep_pickup_date'"):
        files.export(df, "ds", partition_by=["lpep_pickup_dat"])
    with pytest.raises(UserInputError):
        files.export({"not": "a table"}, "ds", partition_by=["lpep_pickup_date"])
    # A writer failing midway: the third partition's folder name is too long for the disk.
    long = pd.DataFrame({"k": ["a", "b", "x" * 300], "v": [1, 2, 3]})
    for if_exists in ("replace", "append"):
        with pytest.raises(OSError):
            files.export(long, "ds", partition_by=["k"], if_exists=if_exists)
        with pytest.raises(OSError):
            files.export(long, "new_ds", partition_by=["k"], if_exists=if_exists)

    assert listing(files.root) == before
    pd.testing.assert_frame_equal(files.load("ds"), df)


def test_paths_must_stay_inside_the_project(files, project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (project.root / "link").symlink_to(outside)
    for path in ("../escape.csv", str(outside / "x.csv"), "link/x.csv", ".", "a/../.."):
        with pytest.raises(UserInputError, match="not inside the project"):
            files.export(pd.DataFrame({"a": [1]}), path)
        with pytest.raises(UserInputError, match="not inside the project"):
            files.load(path)
    assert list(outside.iterdir()) == []
    files.export(pd.DataFrame({"a": [1]}), str(project.root / "inside.csv"))  # absolute, inside
    assert (project.root / "inside.csv").is_file()


def test_remote_urls_point_to_the_cloud_connectors(files):
    with pytest.raises(UserInputError, match="remote path") as info:
        files.load("gs://bucket/trips.parquet")
    assert "GCS or S3" in info.value.hint


def test_replace_refuses_a_folder_that_is_not_a_dataset(files, project):
    project.write("pipelines/p/pipeline.yaml", "blocks: []\n")
    with pytest.raises(UserInputError, match="will not replace"):
        files.export(trips(), "pipelines", partition_by=["lpep_pickup_date"])
    assert (project.root / "pipelines/p/pipeline.yaml").is_file()


def test_missing_file(files):
    with pytest.raises(UserInputError, match="does not exist"):
        files.load("nope.csv")


def test_root_defaults_to_the_active_project(project):
    with activated(project.root):
        Files().export(pd.DataFrame({"a": [1]}), "out/a.csv")
        assert Files.from_profile().load("out/a.csv")["a"].tolist() == [1]
    assert (project.root / "out" / "a.csv").is_file()


def test_temporaries_left_by_a_killed_export_are_removed_later(files, project):
    import os
    import time

    lake = project.root / "data" / "lake"
    lake.mkdir(parents=True)
    stale = lake / ".treadle-0123456789ab.trips"
    fresh = lake / ".treadle-ba9876543210.trips"
    for leftover in (stale, fresh):
        (leftover / "day=1").mkdir(parents=True)
        (leftover / "day=1" / "part-0.parquet").write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    files.export(
        pd.DataFrame({"day": [1, 2], "x": [3, 4]}), "data/lake/trips", partition_by=["day"]
    )
    assert not stale.exists()  # left by a process killed long ago
    assert fresh.exists()  # could be another export, still writing
    assert sorted(p.name for p in (lake / "trips").iterdir() if p.is_dir()) == ["day=1", "day=2"]
