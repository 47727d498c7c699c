"""The GCS connector against the real gcp-storage-emulator (tests/io/conftest.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from treadle.errors import UserInputError
from treadle.io.gcs import GCS

FAKE_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nTOPSECRET-not-a-key\n-----END PRIVATE KEY-----\n"


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
          GCS_BUCKET: from-profile-bucket
        """,
    )
    store = GCS.from_profile("dev", project=project.root)
    assert (store.project_id, store.location, store.endpoint, store.bucket) == (
        "test-project",
        "EU",
        gcs_emulator,
        "from-profile-bucket",
    )
    store.filesystem.mkdir("from-profile-bucket")
    assert store.check() == f"GCS bucket gs://from-profile-bucket (endpoint {gcs_emulator})"
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
    for bucket, message in [
        (gcs_bucket.name, f"GCS refused access to bucket '{gcs_bucket.name}'"),
        (None, "GCS refused to list the buckets"),
    ]:
        store.bucket = bucket
        with pytest.raises(UserInputError, match=message) as info:
            store.check()
        assert "PRIVATE KEY" not in str(info.value) and "profile 'dev'" in info.value.hint


def test_listing_the_buckets_needs_a_project(gcs_endpoint):
    with pytest.raises(UserInputError, match="needs a Google Cloud project") as info:
        GCS(profile="dev").check()
    assert "GOOGLE_PROJECT_ID" in info.value.hint and "GCS_BUCKET" in info.value.hint


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
