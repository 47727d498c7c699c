"""Amazon S3 and S3-compatible stores (MinIO, moto): CSV, JSON, Parquet and datasets.

``pip install 'treadle[aws]'`` (s3fs, boto3). Reading and writing, and exactly what is
atomic, are shared with ``GCS``: see ``treadle.io.object_store``.

``S3.from_profile('dev')`` reads these keys of ``io_config.yaml`` (Mage's names):
``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (both or neither), ``AWS_SESSION_TOKEN``,
``AWS_REGION``, and ``AWS_ENDPOINT`` for an S3-compatible server
(``http://127.0.0.1:9000``). Without keys, boto's usual chain is used (environment,
``~/.aws``, instance role). ``S3_BUCKET`` (optional) is the bucket ``treadle io test``
checks; without it, the test lists the buckets of the account.
"""

from __future__ import annotations

from typing import Any, Self

from treadle.errors import MissingExtra, UserInputError
from treadle.io.base import read_profile
from treadle.io.object_store import ObjectStore

try:
    from s3fs import S3FileSystem
except ImportError as exc:
    raise MissingExtra(
        "the S3 connector needs s3fs and boto3", hint="pip install 'treadle[aws]'"
    ) from exc


class S3(ObjectStore):
    """Objects in S3, addressed as ``s3://bucket/key``."""

    scheme = "s3"
    service = "S3"
    bucket_key = "S3_BUCKET"

    def __init__(
        self,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        region: str | None = None,
        endpoint: str | None = None,
        profile: str | None = None,
        bucket: str | None = None,
    ) -> None:
        super().__init__(profile, bucket)
        if bool(access_key_id) != bool(secret_access_key):
            raise UserInputError(
                f"the S3 credentials{self._of_profile()} need both an access key id"
                " and a secret access key",
                hint="set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither",
            )
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._session_token = session_token
        self.region = region
        self.endpoint = endpoint

    @classmethod
    def from_profile(cls, profile: str = "default", *, project: Any = None) -> Self:
        """See ``Connector.from_profile``; the keys are in the module docstring."""
        _, settings = read_profile(profile, project)
        return cls(
            access_key_id=_text(settings.get("AWS_ACCESS_KEY_ID")),
            secret_access_key=_text(settings.get("AWS_SECRET_ACCESS_KEY")),
            session_token=_text(settings.get("AWS_SESSION_TOKEN")),
            region=_text(settings.get("AWS_REGION")),
            endpoint=_text(settings.get("AWS_ENDPOINT")),
            profile=profile,
            bucket=_text(settings.get(cls.bucket_key)),
        )

    def _make_filesystem(self) -> S3FileSystem:
        client_kwargs = {"region_name": self.region} if self.region else {}
        return S3FileSystem(
            key=self._access_key_id,
            secret=self._secret_access_key,
            token=self._session_token,
            endpoint_url=self.endpoint,
            client_kwargs=client_kwargs,
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def _where(self) -> str:
        return self.filesystem.s3.meta.endpoint_url  # AWS_ENDPOINT, else the region's

    def _list_one_object(self, bucket: str) -> None:
        self.filesystem.call_s3("list_objects_v2", Bucket=bucket, MaxKeys=1)

    def _bucket_names(self) -> list[str]:
        # Not filesystem.ls(""): s3fs answers [] when the service refuses the listing.
        return [bucket["Name"] for bucket in self.filesystem.call_s3("list_buckets")["Buckets"]]


def _text(value: Any) -> str | None:
    """A setting as text; empty (an unset ``env_var`` default) counts as not set."""
    if value is None:
        return None
    return str(value).strip() or None
