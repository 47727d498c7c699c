"""The GCS connector against the real gcp-storage-emulator (tests/io/conftest.py)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from treadle.errors import UserInputError
from treadle.io.gcs import GCS

FAKE_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nTOPSECRET-not-a-key\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.json", "t.jsonl", "t.parquet"])
def test_single_file_round_trip(gcs_bucket, name):
    df = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"], "v": [0.5, None, 2.0]})
    gcs_bucket.store.export(df, gcs_bucket.url(f"data/{name}"))
    back = gcs_bucket.store.load(gcs_bucket.url(f"data/{name}"))
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert gcs_bucket.objects() == [f"data/{name}"]  # nothing staged is left behind


def test_bucket_and_key_form_and_explicit_format(gcs_bucket, trips):
    gcs_bucket.store.export(trips, gcs_bucket.name, "exports/trips.data", format="parquet")
    back = gcs_bucket.store.load(gcs_bucket.name, "exports/trips.data", format="parquet")
    pd.testing.assert_frame_equal(back, trips)
    assert gcs_bucket.store.load(
        gcs_bucket.url("exports/trips.data"), format="parquet", columns=["zone"]
    ).columns.tolist() == ["zone"]


def test_single_file_append_and_fail(gcs_bucket):
    url = gcs_bucket.url("t.csv")
    gcs_bucket.store.export(pd.DataFrame({"a": [1], "b": ["x"]}), url)
    gcs_bucket.store.export(pd.DataFrame({"a": [2], "b": ["y"]}), url, if_exists="append")
    assert gcs_bucket.store.load(url)["a"].tolist() == [1, 2]
    with pytest.raises(UserInputError, match="already exists"):
        gcs_bucket.store.export(pd.DataFrame({"a": [3], "b": ["z"]}), url, if_exists="fail")
    with pytest.raises(UserInputError, match="columns"):
        gcs_bucket.store.export(pd.DataFrame({"c": [3]}), url, if_exists="append")
    gcs_bucket.store.export(pd.DataFrame({"a": [9], "b": ["q"]}), url)  # replace
    assert gcs_bucket.store.load(url)["a"].tolist() == [9]
    assert gcs_bucket.objects() == ["t.csv"]


def test_partitioned_layout_and_round_trip(gcs_bucket, trips):
    url = gcs_bucket.url("lake/green_taxi")
    gcs_bucket.store.export(trips, url, partition_by=["lpep_pickup_date"])
    objects = gcs_bucket.objects()
    assert "lake/green_taxi/_common_metadata" in objects
    assert sorted({o.split("/")[2] for o in objects if o.endswith(".parquet")}) == [
        "lpep_pickup_date=2020-10-01",
        "lpep_pickup_date=2020-10-02",
    ]
    assert all(o.startswith("lake/green_taxi/") for o in objects)  # no staging left
    back = gcs_bucket.store.load(url)
    pd.testing.assert_frame_equal(back, trips)  # same rows, partition values as dates again
    one_day = gcs_bucket.store.load(url, filters=[("lpep_pickup_date", "=", dt.date(2020, 10, 2))])
    assert one_day["trip_distance"].tolist() == [7.25]


def test_partitioned_append_replace_and_fail(gcs_bucket, trips):
    store, url = gcs_bucket.store, gcs_bucket.url("ds")
    store.export(trips, url, partition_by="lpep_pickup_date")
    store.export(trips, url, partition_by="lpep_pickup_date", if_exists="append")
    assert len(store.load(url)) == 6
    store.export(trips.head(1), url, partition_by="lpep_pickup_date")  # replace
    pd.testing.assert_frame_equal(store.load(url), trips.head(1))
    assert {o.split("/")[1] for o in gcs_bucket.objects()} == {
        "_common_metadata",
        "lpep_pickup_date=2020-10-01",
    }
    with pytest.raises(UserInputError, match="already exists"):
        store.export(trips, url, partition_by="lpep_pickup_date", if_exists="fail")
    with pytest.raises(UserInputError, match="partitioned by"):
        store.export(trips, url, partition_by="zone", if_exists="append")
    assert len(store.load(url)) == 1


def test_failed_partitioned_export_leaves_the_old_dataset(gcs_bucket, trips):
    store, url = gcs_bucket.store, gcs_bucket.url("ds")
    store.export(trips, url, partition_by=["lpep_pickup_date"])
    before = gcs_bucket.objects()

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
            store.export(long, gcs_bucket.url("new_ds"), partition_by=["k"], if_exists=if_exists)

    assert gcs_bucket.objects() == before
    pd.testing.assert_frame_equal(store.load(url), trips)


def test_replace_refuses_a_folder_that_is_not_a_dataset(gcs_bucket, trips):
    gcs_bucket.put("docs/readme.txt", b"keep me")
    with pytest.raises(UserInputError, match="will not replace"):
        gcs_bucket.store.export(trips, gcs_bucket.url("docs"), partition_by="zone")
    with pytest.raises(UserInputError, match="is a folder"):
        gcs_bucket.store.export(trips, gcs_bucket.url("docs"), format="csv")
    with pytest.raises(UserInputError, match="is a file"):
        gcs_bucket.store.export(trips, gcs_bucket.url("docs/readme.txt"), partition_by="zone")
    assert gcs_bucket.objects() == ["docs/readme.txt"]


def test_loads_a_hive_dataset_written_elsewhere(gcs_bucket):
    store = gcs_bucket.store
    for day, value in (("2020-10-01", 1), ("2020-10-02", 2)):
        table = pa.table({"v": [value]})
        with store.filesystem.open(f"{gcs_bucket.name}/ext/day={day}/part-0.parquet", "wb") as f:
            pq.write_table(table, f)
    back = store.load(gcs_bucket.url("ext")).sort_values("v")
    assert back["v"].tolist() == [1, 2]
    assert [str(d) for d in back["day"]] == ["2020-10-01", "2020-10-02"]


def test_bad_inputs_name_what_is_wrong_and_change_nothing(gcs_bucket, trips):
    store = gcs_bucket.store
    with pytest.raises(UserInputError, match="bucket 'no-such-bucket-x' does not exist"):
        store.load("gs://no-such-bucket-x/t.parquet")
    with pytest.raises(UserInputError, match="bucket 'no-such-bucket-x' does not exist"):
        store.export(trips, "gs://no-such-bucket-x/t.parquet")
    with pytest.raises(UserInputError, match=r"gs://.*/nope\.csv does not exist"):
        store.load(gcs_bucket.url("nope.csv"))
    with pytest.raises(UserInputError, match="if_exists must be one of"):
        store.export(trips, gcs_bucket.url("t.parquet"), if_exists="overwrite")
    with pytest.raises(UserInputError, match="not a gs:// URL"):
        store.load("s3://bucket/t.parquet")
    with pytest.raises(UserInputError, match="needs a bucket and a path"):
        store.export(trips, "gs://bucket-only")
    with pytest.raises(UserInputError, match="cannot tell the format"):
        store.export(trips, gcs_bucket.url("t.txt"))
    with pytest.raises(UserInputError, match="partition_by needs the parquet format"):
        store.export(trips, gcs_bucket.url("t.csv"), partition_by="zone")
    assert gcs_bucket.objects() == []


def test_staging_left_by_a_killed_export_is_removed_later(gcs_bucket):
    import time

    long_ago, now = int(time.time()) - 7200, int(time.time())
    stale = f"lake/.treadle-{long_ago}-0123abcd.trips/day=1/part-0.parquet"
    fresh = f"lake/.treadle-{now}-4567cdef.trips/day=1/part-0.parquet"
    other = f"lake/.treadle-{long_ago}-89abcdef.other/day=1/part-0.parquet"
    for key in (stale, fresh, other):
        gcs_bucket.put(key, b"half")
    gcs_bucket.store.export(
        pd.DataFrame({"day": [1, 2], "x": [3, 4]}), gcs_bucket.url("lake/trips"), partition_by="day"
    )
    objects = gcs_bucket.objects()
    assert stale not in objects  # left by a process killed long ago
    assert fresh in objects and other in objects  # another export's, or another dataset's
    assert len(gcs_bucket.store.load(gcs_bucket.url("lake/trips"))) == 2


def write_io_config(project, dev: str) -> None:
    project.write("io_config.yaml", "version: 0.1.1\ndefault: {}\ndev:\n" + dev)


def test_from_profile_reads_env_vars(gcs_emulator, project, monkeypatch, trips):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("TEST_GCS_ENDPOINT", gcs_emulator)
    write_io_config(
        project,
        """
          GOOGLE_PROJECT_ID: test-project
          GOOGLE_LOCATION: EU
          GCS_ENDPOINT: "{{ env_var('TEST_GCS_ENDPOINT') }}"
        """,
    )
    store = GCS.from_profile("dev", project=project.root)
    assert (store.project_id, store.location, store.endpoint) == (
        "test-project",
        "EU",
        gcs_emulator,
    )
    store.filesystem.mkdir("from-profile-bucket")
    store.export(trips, "gs://from-profile-bucket/t.parquet")
    pd.testing.assert_frame_equal(store.load("gs://from-profile-bucket/t.parquet"), trips)


def test_storage_emulator_host_is_honoured(gcs_endpoint, project, trips):
    write_io_config(project, "  GOOGLE_PROJECT_ID: test-project\n")
    store = GCS.from_profile("dev", project=project.root)
    assert store.endpoint is None
    store.filesystem.mkdir("emulator-host-bucket")
    store.export(trips, "gs://emulator-host-bucket/t.json")
    assert len(store.load("gs://emulator-host-bucket/t.json")) == 3


def test_without_a_key_or_default_credentials(project, monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(project.root / "missing.json"))
    write_io_config(project, "  GOOGLE_PROJECT_ID: test-project\n")
    store = GCS.from_profile("dev", project=project.root)
    with pytest.raises(UserInputError, match="no usable GCS credentials of profile 'dev'"):
        store.load("gs://bucket/t.parquet")


def service_account_key(private_key: str = FAKE_PRIVATE_KEY) -> dict[str, str]:
    return {
        "type": "service_account",
        "project_id": "test-project",
        "client_email": "treadle@test-project.iam.gserviceaccount.com",
        "private_key": private_key,
        "token_uri": "http://127.0.0.1:9/token",
    }


def test_key_file_is_relative_to_the_project(project):
    project.write("keys/sa.json", json.dumps(service_account_key()))
    write_io_config(project, "  GOOGLE_SERVICE_ACC_KEY_FILEPATH: keys/sa.json\n")
    store = GCS.from_profile("dev", project=project.root)
    assert store._credentials["client_email"].startswith("treadle@")
    assert "TOPSECRET" not in repr(store)
    with pytest.raises(UserInputError, match="not a valid service account key") as info:
        store.filesystem  # noqa: B018  (the private key is not a key)
    assert "TOPSECRET" not in str(info.value)


def test_a_key_the_token_service_rejects(gcs_bucket, project, trips):
    """A well-formed key whose token service (here the emulator, which has none) says no."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key = service_account_key(pem) | {"token_uri": f"{gcs_bucket.store.endpoint_url()}/token"}
    project.write("keys/sa.json", json.dumps(key))
    write_io_config(project, "  GOOGLE_SERVICE_ACC_KEY_FILEPATH: keys/sa.json\n")
    store = GCS.from_profile("dev", project=project.root)
    with pytest.raises(
        UserInputError, match=f"refused access to bucket '{gcs_bucket.name}'"
    ) as info:
        store.export(trips, gcs_bucket.url("t.parquet"))
    assert "PRIVATE KEY" not in str(info.value) and "profile 'dev'" in info.value.hint
    assert gcs_bucket.objects() == []


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("  GOOGLE_SERVICE_ACC_KEY_FILEPATH: keys/missing.json\n", "keys/missing.json"),
        ('  GOOGLE_SERVICE_ACC_KEY: \'{"private_key": "TOPSECRET"\'\n', "not a service account"),
        (
            '  GOOGLE_SERVICE_ACC_KEY: \'{"type": "x", "private_key": "TOPSECRET"}\'\n',
            "it has no client_email",
        ),
    ],
)
def test_bad_keys_are_named_never_quoted(project, setting, message):
    write_io_config(project, setting)
    with pytest.raises(UserInputError, match=message) as info:
        GCS.from_profile("dev", project=project.root)
    assert "TOPSECRET" not in str(info.value)
    assert "'dev'" in str(info.value)


def run_python(code: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_missing_extra_names_the_pip_install():
    code = (
        "import sys\n"
        "sys.modules['gcsfs'] = sys.modules['gcsfs.core'] = None  # as if not installed\n"
        "try:\n"
        "    import treadle.io.gcs\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc.hint)\n"
    )
    assert run_python(code) == "MissingExtra pip install 'treadle[gcp]'"


def test_the_shared_object_store_code_imports_no_cloud_client():
    code = (
        "import json, sys, treadle.io, treadle.io.object_store\n"
        "names = ('gcsfs', 's3fs', 'boto3', 'botocore', 'google.auth', 'google.cloud')\n"
        "print(json.dumps([name for name in names if name in sys.modules]))\n"
    )
    assert json.loads(run_python(code)) == []
