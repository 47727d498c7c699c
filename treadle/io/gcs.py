"""Google Cloud Storage: CSV, JSON and Parquet objects, and Hive-partitioned datasets.

``pip install 'treadle[gcp]'`` (gcsfs, google-cloud-storage). Reading and writing, and
exactly what is atomic, are shared with ``S3``: see ``treadle.io.object_store``.

``GCS.from_profile('dev')`` reads these keys of ``io_config.yaml`` (Mage's names):

* ``GOOGLE_SERVICE_ACC_KEY_FILEPATH``: a service account key file, relative to the project;
* ``GOOGLE_SERVICE_ACC_KEY``: the key's JSON inline (a string, or a YAML mapping);
* ``GOOGLE_PROJECT_ID``, ``GOOGLE_LOCATION`` (the location of buckets created through it);
* ``GCS_ENDPOINT``: another endpoint, e.g. an emulator (``http://127.0.0.1:9023``);
* ``GCS_BUCKET`` (optional): the bucket ``treadle io test`` checks; without it, the test
  lists the buckets of the project (which needs ``GOOGLE_PROJECT_ID`` or a key's project).

Without a key, the application default credentials are used. Without ``GCS_ENDPOINT``,
the ``STORAGE_EMULATOR_HOST`` environment variable is honoured, as google-cloud-storage
does; with an endpoint and no key, requests are anonymous (emulators need no credentials).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Self

from treadle.errors import MissingExtra, UserInputError
from treadle.io.base import read_profile
from treadle.io.google_credentials import (
    KEY_FILE,
    KEY_INLINE,
    service_account_key,
    text_setting,
)
from treadle.io.object_store import ObjectStore

try:
    from gcsfs.core import GCSFileSystem
    from gcsfs.retry import HttpError
    from google.auth.exceptions import GoogleAuthError, RefreshError
except ImportError as exc:
    raise MissingExtra(
        "the GCS connector needs gcsfs and google-cloud-storage",
        hint="pip install 'treadle[gcp]'",
    ) from exc

DEFAULT_ENDPOINT = "https://storage.googleapis.com"


class GCS(ObjectStore):
    """Objects in Google Cloud Storage, addressed as ``gs://bucket/key``."""

    scheme = "gs"
    service = "GCS"
    bucket_key = "GCS_BUCKET"

    def __init__(
        self,
        *,
        credentials: dict[str, Any] | None = None,
        project_id: str | None = None,
        location: str | None = None,
        endpoint: str | None = None,
        profile: str | None = None,
        bucket: str | None = None,
    ) -> None:
        """``credentials``: a service account key (parsed JSON); ``None`` for the default."""
        super().__init__(profile, bucket)
        self._credentials = credentials
        self.project_id = project_id
        self.location = location
        self.endpoint = endpoint

    @classmethod
    def from_profile(cls, profile: str = "default", *, project: Any = None) -> Self:
        """See ``Connector.from_profile``; the keys are in the module docstring."""
        root, settings = read_profile(profile, project)
        key = service_account_key(root, settings, profile)
        return cls(
            credentials=key,
            project_id=text_setting(settings.get("GOOGLE_PROJECT_ID"))
            or (key or {}).get("project_id"),
            location=text_setting(settings.get("GOOGLE_LOCATION")),
            endpoint=text_setting(settings.get("GCS_ENDPOINT")),
            profile=profile,
            bucket=text_setting(settings.get(cls.bucket_key)),
        )

    def endpoint_url(self) -> str | None:
        """The endpoint in use: ``GCS_ENDPOINT``, else ``STORAGE_EMULATOR_HOST``, else none."""
        endpoint = self.endpoint or os.environ.get("STORAGE_EMULATOR_HOST") or None
        if endpoint and "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        return endpoint

    def _make_filesystem(self) -> GCSFileSystem:
        # gcsfs.GCSFileSystem may be the gRPC "extended" class, which emulators do not
        # speak; the JSON-API class in gcsfs.core serves every bucket but zonal ones.
        endpoint = self.endpoint_url()
        if self._credentials is not None:
            token: Any = self._credentials
        else:
            token = "anon" if endpoint else "google_default"
        try:
            with warnings.catch_warnings():  # reading and writing objects needs no project
                warnings.filterwarnings("ignore", "GCS project not set", UserWarning)
                filesystem = GCSFileSystem(
                    project=self.project_id,
                    token=token,
                    endpoint_url=endpoint,
                    default_location=self.location,
                    skip_instance_cache=True,
                    use_listings_cache=False,
                )
        except (ValueError, TypeError, KeyError) as exc:
            raise UserInputError(
                f"the GCS credentials{self._of_profile()} are not a valid service account key"
                f" ({type(exc).__name__})",
                hint=f"check {KEY_FILE} or {KEY_INLINE}",
            ) from None
        except GoogleAuthError as exc:  # no application default credentials, mostly
            raise UserInputError(
                f"no usable GCS credentials{self._of_profile()}: {type(exc).__name__}",
                hint=f"set {KEY_FILE} or {KEY_INLINE} in io_config.yaml, or run"
                " `gcloud auth application-default login`",
            ) from None
        _fetch_token(filesystem)
        return filesystem

    def _where(self) -> str:
        return self.endpoint_url() or DEFAULT_ENDPOINT

    def _list_one_object(self, bucket: str) -> None:
        self.filesystem.call("GET", "b/{}/o", bucket, maxResults=1, json_out=True)

    def _bucket_names(self) -> list[str]:
        if not self.filesystem.project:  # real GCS lists the buckets of one project
            raise UserInputError(
                f"listing the GCS buckets{self._of_profile()} needs a Google Cloud project",
                hint=f"set GOOGLE_PROJECT_ID, or {self.bucket_key} to test one bucket",
            )
        return [name.rstrip("/") for name in self.filesystem.buckets]

    def _is_access_denied(self, exc: Exception) -> bool:
        # gcsfs raises OSError("Forbidden: …") for 403 and HttpError for 401; google-auth
        # raises RefreshError when the token service rejects the key.
        if isinstance(exc, OSError) and str(exc).startswith("Forbidden"):
            return True
        if isinstance(exc, HttpError) and exc.code in (401, 403):
            return True
        return isinstance(exc, PermissionError | RefreshError)


def _fetch_token(filesystem: GCSFileSystem) -> None:
    """Get the first access token now, so a key the token service rejects fails at once:
    gcsfs would retry each request for about half a minute. A transient failure is left to
    gcsfs's retries."""
    try:
        filesystem.credentials.maybe_refresh()
    except RefreshError as exc:
        if not getattr(exc, "retryable", False):
            raise
