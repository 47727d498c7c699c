"""Object-storage emulators for the GCS and S3 tests, each started once per session.

``gcs_emulator`` runs ``gcp-storage-emulator`` (in memory) and ``moto_server`` runs the
moto S3 server, each as a child process on a free port of 127.0.0.1, stopped at the end
of the session. When one cannot start (not installed, does not answer) its tests skip,
saying why, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; under CI=true the emulator tests must run")
    pytest.skip(message)


def _command(script: str) -> str | None:
    """The console script installed beside this Python, else one on the PATH."""
    beside = Path(sys.executable).parent / script
    return str(beside) if beside.is_file() else shutil.which(script)


def _wait_for_port(process: subprocess.Popen[bytes], port: int, name: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _unavailable(f"{name} exited at start with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    _stop(process)
    _unavailable(f"{name} did not answer on port {port} within {STARTUP_SECONDS:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def start_emulator(
    script: str, args: list[str], env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``script`` with ``args`` (``{port}`` filled in); yields ``http://127.0.0.1:port``."""
    command = _command(script)
    if command is None:
        _unavailable(f"{script} is not installed (pip install -e '.[dev]')")
    port = free_port()
    process = subprocess.Popen(
        [command, *(arg.format(port=port) for arg in args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        _wait_for_port(process, port, script)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """The endpoint of an in-memory GCS emulator."""
    args = ["start", "--host", "127.0.0.1", "--port", "{port}", "--in-memory", "--quiet"]
    with start_emulator("gcp-storage-emulator", args) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint of a moto server (any credentials are accepted)."""
    with start_emulator("moto_server", ["-H", "127.0.0.1", "-p", "{port}"]) as endpoint:
        yield endpoint


class Bucket:
    """A fresh bucket in an emulator, seen through ``store`` (a ``GCS`` or ``S3``)."""

    def __init__(self, store, name: str) -> None:
        self.store = store
        self.name = name
        store.filesystem.mkdir(name)

    def url(self, key: str) -> str:
        return f"{self.store.scheme}://{self.name}/{key}"

    def objects(self) -> list[str]:
        """Every object's key in the bucket, hidden ones too, sorted."""
        prefix = f"{self.name}/"
        return sorted(path.removeprefix(prefix) for path in self.store.filesystem.find(self.name))

    def put(self, key: str, data: bytes) -> None:
        self.store.filesystem.pipe(f"{self.name}/{key}", data)


def new_bucket_name() -> str:
    import uuid

    return f"treadle-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_bucket():
    """Makes a fresh bucket through a connector: ``make_bucket(store) -> Bucket``."""
    return lambda store: Bucket(store, new_bucket_name())


@pytest.fixture
def gcs_endpoint(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The emulator, announced to clients the way google-cloud-storage expects."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    return gcs_emulator


@pytest.fixture
def gcs_bucket(gcs_endpoint: str) -> Bucket:
    from treadle.io.gcs import GCS

    return Bucket(GCS(project_id="test-project"), new_bucket_name())


@pytest.fixture
def s3_bucket(moto_server: str) -> Bucket:
    from treadle.io.s3 import S3

    store = S3(
        access_key_id="test", secret_access_key="test", region="eu-west-1", endpoint=moto_server
    )
    return Bucket(store, new_bucket_name())


@pytest.fixture
def trips():
    """NYC-taxi-shaped rows over two pickup days, with nulls."""
    import datetime as dt

    import pandas as pd

    return pd.DataFrame(
        {
            "lpep_pickup_date": [dt.date(2020, 10, 1), dt.date(2020, 10, 1), dt.date(2020, 10, 2)],
            "passenger_count": pd.array([1, None, 3], dtype="Int64"),
            "trip_distance": [1.5, 0.0, 7.25],
            "zone": ["Astoria", "Harlem", None],
        }
    )


#: The policy of ``moto_with_auth``'s user: anything in S3, except writing the objects of
#: the 2020-10-02 partition of a dataset at ``<bucket>/guarded`` (its hidden staging
#: prefix, ``.treadle-….guarded``, stays writable). A real refusal, midway through an export.
GUARDED_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::*/guarded/*=2020-10-02/*",
        },
    ],
}
SETUP_REQUESTS = 3  # create_user, create_access_key, put_user_policy: before auth applies


class MotoWithAuth:
    """A moto server that checks credentials and IAM policies, and one user's keys."""

    def __init__(self, endpoint: str, access_key_id: str, secret_access_key: str) -> None:
        self.endpoint = endpoint
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key


@pytest.fixture(scope="session")
def moto_with_auth() -> Iterator[MotoWithAuth]:
    """A second moto server, enforcing IAM (``INITIAL_NO_AUTH_ACTION_COUNT``)."""
    import json

    env = {"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
    with start_emulator("moto_server", ["-H", "127.0.0.1", "-p", "{port}"], env) as endpoint:
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="eu-west-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="writer")
        key = iam.create_access_key(UserName="writer")["AccessKey"]
        iam.put_user_policy(
            UserName="writer", PolicyName="guarded", PolicyDocument=json.dumps(GUARDED_POLICY)
        )
        yield MotoWithAuth(endpoint, key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture(params=["gcs_bucket", "s3_bucket"])
def bucket(request):
    """A fresh bucket on each emulator in turn (tests run once for GCS, once for S3)."""
    return request.getfixturevalue(request.param)


def emulator_profile(bucket) -> dict[str, str]:
    """The settings of a profile that reaches the emulator as ``bucket.store`` does."""
    if bucket.store.scheme == "gs":
        return {"GCS_ENDPOINT": bucket.store.endpoint_url(), "GOOGLE_PROJECT_ID": "test-project"}
    return {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT": bucket.store.endpoint,
    }
