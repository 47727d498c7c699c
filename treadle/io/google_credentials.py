"""Google credentials from an ``io_config.yaml`` profile, shared by ``GCS`` and ``BigQuery``.

Only reading and checking the settings is here (no Google library is imported): each
connector turns the parsed key into what its client library takes.

* ``GOOGLE_SERVICE_ACC_KEY_FILEPATH``: a service account key file, relative to the project;
* ``GOOGLE_SERVICE_ACC_KEY``: the key's JSON inline (a string, or a YAML mapping).

Messages name where a bad key came from, never its text: it holds a private key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from treadle.errors import UserInputError

KEY_FILE = "GOOGLE_SERVICE_ACC_KEY_FILEPATH"
KEY_INLINE = "GOOGLE_SERVICE_ACC_KEY"
KEY_FIELDS = ("type", "client_email", "private_key")


def service_account_key(
    root: Path, settings: dict[str, Any], profile: str
) -> dict[str, Any] | None:
    """The key from the file or the inline setting, parsed; ``None`` when neither is set."""
    path, inline = text_setting(settings.get(KEY_FILE)), settings.get(KEY_INLINE)
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
    if text_setting(inline):
        return _parsed_key(str(inline), KEY_INLINE, profile)
    return None


def text_setting(value: Any) -> str | None:
    """A setting as text; empty (an unset ``env_var`` default) counts as not set."""
    if value is None:
        return None
    return str(value).strip() or None


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
    missing = [name for name in KEY_FIELDS if not key.get(name)]
    if missing:
        raise UserInputError(
            f"{where} of profile {profile!r} is not a service account key:"
            f" it has no {', '.join(missing)}",
            hint="use the JSON key file downloaded from the Google Cloud console",
        )
    return key
