"""The S3 connector against the real moto server (tests/io/conftest.py)."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from treadle.errors import UserInputError
from treadle.io.s3 import S3


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
          S3_BUCKET: from-profile-bucket
        """,
    )
    store = S3.from_profile("dev", project=project.root)
    assert (store.region, store.endpoint, store.bucket) == (
        "eu-west-1",
        moto_server,
        "from-profile-bucket",
    )
    assert "TOPSECRET" not in repr(store)
    store.filesystem.mkdir("from-profile-bucket")
    assert store.check() == f"S3 bucket s3://from-profile-bucket (endpoint {moto_server})"
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


def with_wrong_keys(endpoint: str, bucket: str | None = None) -> S3:
    """A connector whose keys the server does not know (profile 'dev')."""
    return S3(
        access_key_id="AKIAWRONGWRONG",
        secret_access_key="TOPSECRET-wrong",
        region="eu-west-1",
        endpoint=endpoint,
        profile="dev",
        bucket=bucket,
    )


def test_bad_credentials_name_the_bucket_not_the_secret(moto_with_auth, guarded, trips):
    guarded.store.export(trips, guarded.url("t.parquet"))
    wrong = with_wrong_keys(moto_with_auth.endpoint)
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


def test_check_with_refused_credentials(moto_with_auth, guarded):
    guarded.store.bucket = guarded.name
    assert guarded.store.check().startswith(f"S3 bucket s3://{guarded.name} (endpoint ")
    for bucket, message in [
        (guarded.name, f"S3 refused access to bucket '{guarded.name}'"),
        (None, "S3 refused to list the buckets"),
    ]:
        with pytest.raises(UserInputError, match=message) as info:
            with_wrong_keys(moto_with_auth.endpoint, bucket).check()
        assert "TOPSECRET" not in str(info.value) and "profile 'dev'" in info.value.hint


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
