"""`treadle io test PROFILE`: connects and says so, or says exactly why not."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.io.conftest import emulator_profile

TREADLE = [sys.executable, "-m", "treadle.cli"]


def treadle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREADLE, *args], capture_output=True, text=True, timeout=120)


def _io_config(project, url_parts: dict[str, str]) -> None:
    dev = "\n".join(f"  {key}: {value!r}" for key, value in url_parts.items())
    project.write(
        "io_config.yaml",
        "version: 0.1.1\ndefault:\n  DUCKDB_DATABASE: .treadle/warehouse.duckdb\n"
        f"dev:\n{dev}\n  POSTGRES_PASSWORD: \"{{{{ env_var('PG_PASSWORD') }}}}\"\n",
    )


def test_the_default_duckdb_profile(project) -> None:
    _io_config(project, {"POSTGRES_HOST": "127.0.0.1"})
    done = treadle("io", "test", "--project", str(project.root))
    assert done.returncode == 0, done.stderr
    assert "ok: profile 'default' connects to DuckDB" in done.stdout


def test_a_postgres_profile(project, pg_databases, monkeypatch) -> None:
    url = pg_databases.create()
    dbname = url.rsplit("/", 1)[1]
    _io_config(
        project,
        {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_USER": "postgres",
         "POSTGRES_DBNAME": dbname},
    )  # fmt: skip
    monkeypatch.setenv("PG_PASSWORD", "not-needed-with-trust")
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 0, done.stderr
    assert f"PostgreSQL postgres@127.0.0.1:5432/{dbname}" in done.stdout


def test_an_unreachable_server_is_named_without_the_password(project, monkeypatch) -> None:
    _io_config(
        project,
        {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "1", "POSTGRES_USER": "postgres",
         "POSTGRES_DBNAME": "x", "POSTGRES_CONNECT_TIMEOUT": "2"},
    )  # fmt: skip
    monkeypatch.setenv("PG_PASSWORD", "s3cret-pw")
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 2
    assert "127.0.0.1:1" in done.stderr and "s3cret-pw" not in done.stderr + done.stdout


def test_an_unknown_profile_lists_the_others(project) -> None:
    _io_config(project, {"POSTGRES_HOST": "127.0.0.1"})
    done = treadle("io", "test", "prod", "--project", str(project.root))
    assert done.returncode == 2 and "default, dev" in done.stderr


# -- object stores (GCS, S3), against the emulators of tests/io/conftest.py ---------------


def _store_profile(project, bucket, **extra: str) -> None:
    """A profile ``dev`` reaching ``bucket``'s emulator the way its test connector does."""
    _dev_profile(project, emulator_profile(bucket) | extra)


def _dev_profile(project, settings: dict[str, str]) -> None:
    dev = "".join(f"  {key}: {value!r}\n" for key, value in settings.items())
    project.write("io_config.yaml", f"version: 0.1.1\ndefault: {{}}\ndev:\n{dev}")


def _one_line(text: str) -> str:
    """The error as one line: the console wraps it at 80 columns."""
    return " ".join(text.split())


def test_an_object_store_profile_with_its_bucket(project, bucket) -> None:
    _store_profile(project, bucket, **{bucket.store.bucket_key: bucket.name})
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 0, done.stderr
    service, scheme = bucket.store.service, bucket.store.scheme
    assert f"connects to {service} bucket {scheme}://{bucket.name} (endpoint http://" in done.stdout


def test_an_object_store_profile_without_a_bucket_lists_them(project, bucket) -> None:
    _store_profile(project, bucket)
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 0, done.stderr
    assert re.search(
        rf"connects to {bucket.store.service} at http://\S+, \d+ buckets?", done.stdout
    )


def test_a_missing_bucket_is_named_with_its_profile(project, bucket) -> None:
    _store_profile(project, bucket, **{bucket.store.bucket_key: "no-such-bucket-x"})
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 2
    assert "bucket 'no-such-bucket-x' of profile 'dev' does not exist" in _one_line(done.stderr)


def test_refused_s3_credentials(project, moto_with_auth) -> None:
    _dev_profile(
        project,
        {"AWS_ACCESS_KEY_ID": "AKIAWRONGWRONG", "AWS_SECRET_ACCESS_KEY": "TOPSECRET-wrong",
         "AWS_REGION": "eu-west-1", "AWS_ENDPOINT": moto_with_auth.endpoint, "S3_BUCKET": "lake"},
    )  # fmt: skip
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 2
    error = _one_line(done.stderr)
    assert "S3 refused access to bucket 'lake'" in error and "profile 'dev'" in error
    assert "TOPSECRET" not in done.stdout + done.stderr


def test_refused_gcs_credentials(project, gcs_emulator) -> None:
    """A well-formed key whose token service (the emulator, which has none) says no."""
    key = rejected_service_account_key(token_uri=f"{gcs_emulator}/token")
    project.write("keys/sa.json", json.dumps(key))
    _dev_profile(
        project,
        {"GOOGLE_SERVICE_ACC_KEY_FILEPATH": "keys/sa.json", "GCS_ENDPOINT": gcs_emulator},
    )
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 2
    error = _one_line(done.stderr)
    assert "GCS refused to list the buckets" in error and "profile 'dev'" in error
    assert "PRIVATE KEY" not in done.stdout + done.stderr


def rejected_service_account_key(token_uri: str) -> dict[str, str]:
    """A service account key with a real RSA private key, for a token service at ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "type": "service_account",
        "project_id": "test-project",
        "client_email": "treadle@test-project.iam.gserviceaccount.com",
        "private_key": pem.decode(),
        "token_uri": token_uri,
    }
