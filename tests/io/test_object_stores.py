"""What GCS and S3 share (``treadle/io/object_store.py``), run against both real
emulators (``tests/io/conftest.py``): the same tests, once per backend."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from treadle.errors import UserInputError

OTHER = {"gs": "s3", "s3": "gs"}  # the scheme a store must refuse


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.json", "t.jsonl", "t.parquet"])
def test_single_file_round_trip(bucket, name):
    df = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"], "v": [0.5, None, 2.0]})
    bucket.store.export(df, bucket.url(f"data/{name}"))
    back = bucket.store.load(bucket.url(f"data/{name}"))
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert bucket.objects() == [f"data/{name}"]  # nothing staged is left behind


def test_bucket_and_key_form_and_explicit_format(bucket, trips):
    bucket.store.export(trips, bucket.name, "exports/trips.data", format="parquet")
    back = bucket.store.load(bucket.name, "exports/trips.data", format="parquet")
    pd.testing.assert_frame_equal(back, trips)
    assert bucket.store.load(
        bucket.url("exports/trips.data"), format="parquet", columns=["zone"]
    ).columns.tolist() == ["zone"]


def test_single_file_append_and_fail(bucket):
    url = bucket.url("t.csv")
    bucket.store.export(pd.DataFrame({"a": [1], "b": ["x"]}), url)
    bucket.store.export(pd.DataFrame({"a": [2], "b": ["y"]}), url, if_exists="append")
    assert bucket.store.load(url)["a"].tolist() == [1, 2]
    with pytest.raises(UserInputError, match="already exists"):
        bucket.store.export(pd.DataFrame({"a": [3], "b": ["z"]}), url, if_exists="fail")
    with pytest.raises(UserInputError, match="columns"):
        bucket.store.export(pd.DataFrame({"c": [3]}), url, if_exists="append")
    bucket.store.export(pd.DataFrame({"a": [9], "b": ["q"]}), url)  # replace
    assert bucket.store.load(url)["a"].tolist() == [9]
    assert bucket.objects() == ["t.csv"]


def test_partitioned_layout_and_round_trip(bucket, trips):
    url = bucket.url("lake/green_taxi")
    bucket.store.export(trips, url, partition_by=["lpep_pickup_date"])
    objects = bucket.objects()
    assert "lake/green_taxi/_common_metadata" in objects
    assert sorted({o.split("/")[2] for o in objects if o.endswith(".parquet")}) == [
        "lpep_pickup_date=2020-10-01",
        "lpep_pickup_date=2020-10-02",
    ]
    assert all(o.startswith("lake/green_taxi/") for o in objects)  # no staging left
    back = bucket.store.load(url)
    pd.testing.assert_frame_equal(back, trips)  # same rows, partition values as dates again
    one_day = bucket.store.load(url, filters=[("lpep_pickup_date", "=", dt.date(2020, 10, 2))])
    assert one_day["trip_distance"].tolist() == [7.25]


def test_partitioned_append_replace_and_fail(bucket, trips):
    store, url = bucket.store, bucket.url("ds")
    store.export(trips, url, partition_by="lpep_pickup_date")
    store.export(trips, url, partition_by="lpep_pickup_date", if_exists="append")
    assert len(store.load(url)) == 6
    store.export(trips.head(1), url, partition_by="lpep_pickup_date")  # replace
    pd.testing.assert_frame_equal(store.load(url), trips.head(1))
    assert {o.split("/")[1] for o in bucket.objects()} == {
        "_common_metadata",
        "lpep_pickup_date=2020-10-01",
    }
    with pytest.raises(UserInputError, match="already exists"):
        store.export(trips, url, partition_by="lpep_pickup_date", if_exists="fail")
    with pytest.raises(UserInputError, match="partitioned by"):
        store.export(trips, url, partition_by="zone", if_exists="append")
    assert len(store.load(url)) == 1


def test_failed_partitioned_export_leaves_the_old_dataset(bucket, trips):
    store, url = bucket.store, bucket.url("ds")
    store.export(trips, url, partition_by=["lpep_pickup_date"])
    before = bucket.objects()

    with pytest.raises(UserInputError, match="did you mean 'lpep_pickup_date'"):
        store.export(trips, url, partition_by=["lpep_pickup_dat"])
    with pytest.raises(UserInputError, match="cannot export"):
        store.export({"not": "a table"}, url, partition_by=["lpep_pickup_date"])
    # A write failing midway: the third partition's folder name is too long to stage.
    long = pd.DataFrame({"k": ["a", "b", "x" * 300], "v": [1, 2, 3]})
    for if_exists in ("replace", "append"):
        with pytest.raises(OSError):
            store.export(long, url, partition_by=["k"], if_exists=if_exists)
        with pytest.raises(OSError):
            store.export(long, bucket.url("new_ds"), partition_by=["k"], if_exists=if_exists)

    assert bucket.objects() == before
    pd.testing.assert_frame_equal(store.load(url), trips)


def test_replace_refuses_a_folder_that_is_not_a_dataset(bucket, trips):
    bucket.put("docs/readme.txt", b"keep me")
    with pytest.raises(UserInputError, match="will not replace"):
        bucket.store.export(trips, bucket.url("docs"), partition_by="zone")
    with pytest.raises(UserInputError, match="is a folder"):
        bucket.store.export(trips, bucket.url("docs"), format="csv")
    with pytest.raises(UserInputError, match="is a file"):
        bucket.store.export(trips, bucket.url("docs/readme.txt"), partition_by="zone")
    assert bucket.objects() == ["docs/readme.txt"]


def test_loads_a_hive_dataset_written_elsewhere(bucket):
    store = bucket.store
    for day, value in (("2020-10-01", 1), ("2020-10-02", 2)):
        table = pa.table({"v": [value]})
        with store.filesystem.open(f"{bucket.name}/ext/day={day}/part-0.parquet", "wb") as f:
            pq.write_table(table, f)
    back = store.load(bucket.url("ext")).sort_values("v")
    assert back["v"].tolist() == [1, 2]
    assert [str(d) for d in back["day"]] == ["2020-10-01", "2020-10-02"]


def test_bad_inputs_name_what_is_wrong_and_change_nothing(bucket, trips):
    store = bucket.store
    with pytest.raises(UserInputError, match="bucket 'no-such-bucket-x' does not exist"):
        store.load(f"{bucket.store.scheme}://no-such-bucket-x/t.parquet")
    with pytest.raises(UserInputError, match="bucket 'no-such-bucket-x' does not exist"):
        store.export(trips, f"{bucket.store.scheme}://no-such-bucket-x/t.parquet")
    with pytest.raises(
        UserInputError, match=rf"{bucket.store.scheme}://.*/nope\.csv does not exist"
    ):
        store.load(bucket.url("nope.csv"))
    with pytest.raises(UserInputError, match="if_exists must be one of"):
        store.export(trips, bucket.url("t.parquet"), if_exists="overwrite")
    with pytest.raises(UserInputError, match=f"not a {bucket.store.scheme}:// URL"):
        store.load(f"{OTHER[bucket.store.scheme]}://bucket/t.parquet")
    with pytest.raises(UserInputError, match="needs a bucket and a path"):
        store.export(trips, f"{bucket.store.scheme}://bucket-only")
    with pytest.raises(UserInputError, match="cannot tell the format"):
        store.export(trips, bucket.url("t.txt"))
    with pytest.raises(UserInputError, match="partition_by needs the parquet format"):
        store.export(trips, bucket.url("t.csv"), partition_by="zone")
    assert bucket.objects() == []


def test_check_lists_the_profile_bucket(bucket):
    store = bucket.store
    store.bucket = bucket.name
    assert store.check().startswith(
        f"{store.service} bucket {store.scheme}://{bucket.name} (endpoint http://127.0.0.1:"
    )


def test_check_without_a_bucket_counts_the_buckets(bucket):
    where = bucket.store.check()
    count = len(bucket.store.filesystem.ls("", refresh=True))
    assert where.startswith(f"{bucket.store.service} at http://127.0.0.1:")
    assert where.endswith(f", {count} bucket{'' if count == 1 else 's'}") and count >= 1


def test_check_names_a_missing_bucket_and_its_profile(bucket):
    bucket.store.bucket, bucket.store.profile = "no-such-bucket-x", "dev"
    with pytest.raises(UserInputError) as info:
        bucket.store.check()
    assert info.value.message == (
        "bucket 'no-such-bucket-x' of profile 'dev' does not exist"
        f" ({bucket.store.scheme}://no-such-bucket-x)"
    )
    assert bucket.store.bucket_key in info.value.hint
