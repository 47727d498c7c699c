"""The S3 connector against the real moto server (tests/io/conftest.py)."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from treadle.errors import UserInputError
from treadle.io.s3 import S3


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.json", "t.jsonl", "t.parquet"])
def test_single_file_round_trip(s3_bucket, name):
    df = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"], "v": [0.5, None, 2.0]})
    s3_bucket.store.export(df, s3_bucket.url(f"data/{name}"))
    back = s3_bucket.store.load(s3_bucket.url(f"data/{name}"))
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert s3_bucket.objects() == [f"data/{name}"]  # nothing staged is left behind


def test_bucket_and_key_form_and_explicit_format(s3_bucket, trips):
    s3_bucket.store.export(trips, s3_bucket.name, "exports/trips.data", format="parquet")
    back = s3_bucket.store.load(s3_bucket.name, "exports/trips.data", format="parquet")
    pd.testing.assert_frame_equal(back, trips)
    assert s3_bucket.store.load(
        s3_bucket.url("exports/trips.data"), format="parquet", columns=["zone"]
    ).columns.tolist() == ["zone"]


def test_single_file_append_and_fail(s3_bucket):
    url = s3_bucket.url("t.csv")
    s3_bucket.store.export(pd.DataFrame({"a": [1], "b": ["x"]}), url)
    s3_bucket.store.export(pd.DataFrame({"a": [2], "b": ["y"]}), url, if_exists="append")
    assert s3_bucket.store.load(url)["a"].tolist() == [1, 2]
    with pytest.raises(UserInputError, match="already exists"):
        s3_bucket.store.export(pd.DataFrame({"a": [3], "b": ["z"]}), url, if_exists="fail")
    with pytest.raises(UserInputError, match="columns"):
        s3_bucket.store.export(pd.DataFrame({"c": [3]}), url, if_exists="append")
    s3_bucket.store.export(pd.DataFrame({"a": [9], "b": ["q"]}), url)  # replace
    assert s3_bucket.store.load(url)["a"].tolist() == [9]
    assert s3_bucket.objects() == ["t.csv"]


def test_partitioned_layout_and_round_trip(s3_bucket, trips):
    url = s3_bucket.url("lake/green_taxi")
    s3_bucket.store.export(trips, url, partition_by=["lpep_pickup_date"])
    objects = s3_bucket.objects()
    assert "lake/green_taxi/_common_metadata" in objects
    assert sorted({o.split("/")[2] for o in objects if o.endswith(".parquet")}) == [
        "lpep_pickup_date=2020-10-01",
        "lpep_pickup_date=2020-10-02",
    ]
    assert all(o.startswith("lake/green_taxi/") for o in objects)  # no staging left
    back = s3_bucket.store.load(url)
    pd.testing.assert_frame_equal(back, trips)  # same rows, partition values as dates again
    one_day = s3_bucket.store.load(url, filters=[("lpep_pickup_date", "=", dt.date(2020, 10, 2))])
    assert one_day["trip_distance"].tolist() == [7.25]


def test_partitioned_append_replace_and_fail(s3_bucket, trips):
    store, url = s3_bucket.store, s3_bucket.url("ds")
    store.export(trips, url, partition_by="lpep_pickup_date")
    store.export(trips, url, partition_by="lpep_pickup_date", if_exists="append")
    assert len(store.load(url)) == 6
    store.export(trips.head(1), url, partition_by="lpep_pickup_date")  # replace
    pd.testing.assert_frame_equal(store.load(url), trips.head(1))
    assert {o.split("/")[1] for o in s3_bucket.objects()} == {
        "_common_metadata",
        "lpep_pickup_date=2020-10-01",
    }
    with pytest.raises(UserInputError, match="already exists"):
        store.export(trips, url, partition_by="lpep_pickup_date", if_exists="fail")
    with pytest.raises(UserInputError, match="partitioned by"):
        store.export(trips, url, partition_by="zone", if_exists="append")
    assert len(store.load(url)) == 1


def test_failed_partitioned_export_leaves_the_old_dataset(s3_bucket, trips):
    store, url = s3_bucket.store, s3_bucket.url("ds")
    store.export(trips, url, partition_by=["lpep_pickup_date"])
    before = s3_bucket.objects()

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
            store.export(long, s3_bucket.url("new_ds"), partition_by=["k"], if_exists=if_exists)

    assert s3_bucket.objects() == before
    pd.testing.assert_frame_equal(store.load(url), trips)


def test_replace_refuses_a_folder_that_is_not_a_dataset(s3_bucket, trips):
    s3_bucket.put("docs/readme.txt", b"keep me")
    with pytest.raises(UserInputError, match="will not replace"):
        s3_bucket.store.export(trips, s3_bucket.url("docs"), partition_by="zone")
    with pytest.raises(UserInputError, match="is a folder"):
        s3_bucket.store.export(trips, s3_bucket.url("docs"), format="csv")
    with pytest.raises(UserInputError, match="is a file"):
        s3_bucket.store.export(trips, s3_bucket.url("docs/readme.txt"), partition_by="zone")
    assert s3_bucket.objects() == ["docs/readme.txt"]


def test_loads_a_hive_dataset_written_elsewhere(s3_bucket):
    store = s3_bucket.store
    for day, value in (("2020-10-01", 1), ("2020-10-02", 2)):
        table = pa.table({"v": [value]})
        with store.filesystem.open(f"{s3_bucket.name}/ext/day={day}/part-0.parquet", "wb") as f:
            pq.write_table(table, f)
    back = store.load(s3_bucket.url("ext")).sort_values("v")
    assert back["v"].tolist() == [1, 2]
    assert [str(d) for d in back["day"]] == ["2020-10-01", "2020-10-02"]


def test_bad_inputs_name_what_is_wrong_and_change_nothing(s3_bucket, trips):
    store = s3_bucket.store
    with pytest.raises(UserInputError, match="bucket 'no-such-bucket-x' does not exist"):
        store.load("s3://no-such-bucket-x/t.parquet")
    with pytest.raises(UserInputError, match="bucket 'no-such-bucket-x' does not exist"):
        store.export(trips, "s3://no-such-bucket-x/t.parquet")
    with pytest.raises(UserInputError, match=r"s3://.*/nope\.csv does not exist"):
        store.load(s3_bucket.url("nope.csv"))
    with pytest.raises(UserInputError, match="if_exists must be one of"):
        store.export(trips, s3_bucket.url("t.parquet"), if_exists="overwrite")
    with pytest.raises(UserInputError, match="not a s3:// URL"):
        store.load("gs://bucket/t.parquet")
    with pytest.raises(UserInputError, match="needs a bucket and a path"):
        store.export(trips, "s3://bucket-only")
    with pytest.raises(UserInputError, match="cannot tell the format"):
        store.export(trips, s3_bucket.url("t.txt"))
    with pytest.raises(UserInputError, match="partition_by needs the parquet format"):
        store.export(trips, s3_bucket.url("t.csv"), partition_by="zone")
    assert s3_bucket.objects() == []


def write_io_config(project, dev: str) -> None:
    project.write("io_config.yaml", "version: 0.1.1\ndefault: {}\ndev:\n" + dev)


def test_from_profile_reads_env_vars(moto_server, project, monkeypatch, trips, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_AWS_ENDPOINT", moto_server)
    monkeypatch.setenv("TEST_AWS_SECRET", "TOPSECRET-access-key")
    write_io_config(
        project,
        """
          AWS_ACCESS_KEY_ID: AKIATESTTREADLE
          AWS_SECRET_ACCESS_KEY: "{{ env_var('TEST_AWS_SECRET') }}"
          AWS_REGION: eu-west-1
          AWS_ENDPOINT: "{{ env_var('TEST_AWS_ENDPOINT') }}"
        """,
    )
    store = S3.from_profile("dev", project=project.root)
    assert (store.region, store.endpoint) == ("eu-west-1", moto_server)
    assert "TOPSECRET" not in repr(store)
    store.filesystem.mkdir("from-profile-bucket")
    store.export(trips, "s3://from-profile-bucket/lake/t", partition_by="lpep_pickup_date")
    pd.testing.assert_frame_equal(store.load("s3://from-profile-bucket/lake/t"), trips)
    assert "s3://from-profile-bucket/lake/t" in caplog.text and "TOPSECRET" not in caplog.text


def test_half_credentials_are_refused(project):
    write_io_config(project, "  AWS_SECRET_ACCESS_KEY: TOPSECRET\n")
    with pytest.raises(UserInputError, match="both an access key id and a secret") as info:
        S3.from_profile("dev", project=project.root)
    assert "TOPSECRET" not in str(info.value) and "'dev'" in str(info.value)


@pytest.fixture
def guarded(moto_with_auth, make_bucket):
    """A bucket on the moto server that enforces IAM, seen with the policy's user's keys."""
    store = S3(
        access_key_id=moto_with_auth.access_key_id,
        secret_access_key=moto_with_auth.secret_access_key,
        region="eu-west-1",
        endpoint=moto_with_auth.endpoint,
    )
    return make_bucket(store)


def test_bad_credentials_name_the_bucket_not_the_secret(moto_with_auth, guarded, trips):
    guarded.store.export(trips, guarded.url("t.parquet"))
    wrong = S3(
        access_key_id="AKIAWRONGWRONG",
        secret_access_key="TOPSECRET-wrong",
        region="eu-west-1",
        endpoint=moto_with_auth.endpoint,
        profile="dev",
    )
    for attempt in (
        lambda: wrong.load(guarded.url("t.parquet")),
        lambda: wrong.export(trips, guarded.url("t.parquet")),
        lambda: wrong.export(trips, guarded.url("ds"), partition_by="zone"),
    ):
        with pytest.raises(
            UserInputError, match=f"refused access to bucket '{guarded.name}'"
        ) as info:
            attempt()
        assert "TOPSECRET" not in str(info.value) and "profile 'dev'" in info.value.hint
    pd.testing.assert_frame_equal(guarded.store.load(guarded.url("t.parquet")), trips)
    assert guarded.objects() == ["t.parquet"]


def test_export_refused_midway_leaves_the_old_dataset_and_no_strays(guarded, trips):
    """The service refuses the 2020-10-02 partition while the 2020-10-01 one goes in."""
    store, url = guarded.store, guarded.url("guarded")
    old = trips[trips["lpep_pickup_date"] == trips["lpep_pickup_date"].min()]
    store.export(old, url, partition_by="lpep_pickup_date")
    before = guarded.objects()
    for if_exists in ("replace", "append"):
        with pytest.raises(UserInputError, match="refused access"):
            store.export(trips, url, partition_by="lpep_pickup_date", if_exists=if_exists)
        assert guarded.objects() == before
    pd.testing.assert_frame_equal(store.load(url), old)


def test_missing_extra_names_the_pip_install():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['s3fs'] = None  # as if not installed\n"
        "try:\n"
        "    import treadle.io.s3\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc.hint)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "MissingExtra pip install 'treadle[aws]'"
