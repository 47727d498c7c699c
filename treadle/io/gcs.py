"""Google Cloud Storage: CSV, JSON and Parquet objects, and Hive-partitioned datasets.

``pip install 'treadle[gcp]'`` (gcsfs, google-cloud-storage). Reading and writing, and
exactly what is atomic, are shared with ``S3``: see ``treadle.io.object_store``.

``GCS.from_profile('dev')`` reads these keys of ``io_config.yaml`` (Mage's names):

* ``GOOGLE_SERVICE_ACC_KEY_FILEPATH``: a service account key file, relative to the project;
* ``GOOGLE_SERVICE_ACC_KEY``: the key's JSON inline (a string, or a YAML mapping);
* ``GOOGLE_PROJECT_ID``, ``GOOGLE_LOCATION`` (the location of buckets created through it);
* ``GCS_ENDPOINT``: another endpoint, e.g. an emulator (``http://127.0.0.1:9023``).

Without a key, the application default credentials are used. Without ``GCS_ENDPOINT``,
the ``STORAGE_EMULATOR_HOST`` environment variable is honoured, as google-cloud-storage
does; with an endpoint and no key, requests are anonymous (emulators need no credentials).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Self

from treadle.errors import MissingExtra, UserInputError
from treadle.io.base import read_profile
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

KEY_FILE = "GOOGLE_SERVICE_ACC_KEY_FILEPATH"
KEY_INLINE = "GOOGLE_SERVICE_ACC_KEY"


class GCS(ObjectStore):
    """Objects in Google Cloud Storage, addressed as ``gs://bucket/key``."""

    scheme = "gs"
    service = "GCS"

    def __init__(
        self,
        *,
        credentials: dict[str, Any] | None = None,
        project_id: str | None = None,
        location: str | None = None,
        endpoint: str | None = None,
        profile: str | None = None,
    ) -> None:
        """``credentials``: a service account key (parsed JSON); ``None`` for the default."""
        super().__init__(profile)
        self._credentials = credentials
        self.project_id = project_id
        self.location = location
        self.endpoint = endpoint

    @classmethod
    def from_profile(cls, profile: str = "default", *, project: Any = None) -> Self:
        """See ``Connector.from_profile``; the keys are in the module docstring."""
        root, settings = read_profile(profile, project)
        key = _service_account_key(root, settings, profile)
        return cls(
            credentials=key,
            project_id=_text(settings.get("GOOGLE_PROJECT_ID")) or (key or {}).get("project_id"),
            location=_text(settings.get("GOOGLE_LOCATION")),
            endpoint=_text(settings.get("GCS_ENDPOINT")),
            profile=profile,
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

    def _is_access_denied(self, exc: Exception) -> bool:
        # gcsfs raises OSError("Forbidden: …") for 403 and HttpError for 401; google-auth
        # raises RefreshError when the token service rejects the key.
        if isinstance(exc, OSError) and str(exc).startswith("Forbidden"):
            return True
        if isinstance(exc, HttpError) and exc.code in (401, 403):
            return True
        return isinstance(exc, PermissionError | RefreshError)

    def _of_profile(self) -> str:
        return f" of profile {self.profile!r}" if self.profile else ""


def _fetch_token(filesystem: GCSFileSystem) -> None:
    """Get the first access token now, so a key the token service rejects fails at once:
    gcsfs would retry each request for about half a minute. A transient failure is left to
    gcsfs's retries."""
    try:
        filesystem.credentials.maybe_refresh()
    except RefreshError as exc:
        if not getattr(exc, "retryable", False):
            raise


def _service_account_key(
    root: Path, settings: dict[str, Any], profile: str
) -> dict[str, Any] | None:
    """The key from the file or the inline setting, parsed; ``None`` when neither is set."""
    path, inline = _text(settings.get(KEY_FILE)), settings.get(KEY_INLINE)
    if path:
        file = (root / Path(path).expanduser()).resolve()
        try:
            text = file.read_text(encoding="utf-8")
        except OSError:
            raise UserInputError(
                f"the service account key file {file} of profile {profile!r} cannot be read",
                hint=f"{KEY_FILE} is a path relative to the project folder",
            ) from None
        return _parsed_key(text, f"the file {file}", profile)
    if isinstance(inline, dict):
        return _checked_key(inline, KEY_INLINE, profile)
    if _text(inline):
        return _parsed_key(str(inline), KEY_INLINE, profile)
    return None


def _parsed_key(text: str, where: str, profile: str) -> dict[str, Any]:
    """Parse a key's JSON; the message never quotes the text (it holds a private key)."""
    try:
        key = json.loads(text)
    except ValueError:
        key = None
    if not isinstance(key, dict):
        raise UserInputError(
            f"{where} of profile {profile!r} is not a service account key in JSON",
            hint="use the JSON key file downloaded from the Google Cloud console",
        )
    return _checked_key(key, where, profile)


def _checked_key(key: dict[str, Any], where: str, profile: str) -> dict[str, Any]:
    missing = [name for name in ("type", "client_email", "private_key") if not key.get(name)]
    if missing:
        raise UserInputError(
            f"{where} of profile {profile!r} is not a service account key:"
            f" it has no {', '.join(missing)}",
            hint="use the JSON key file downloaded from the Google Cloud console",
        )
    return key


def _text(value: Any) -> str | None:
    """A setting as text; empty (an unset ``env_var`` default) counts as not set."""
    if value is None:
        return None
    return str(value).strip() or None
