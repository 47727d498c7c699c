"""The encrypted secret store behind ``{{ secret('name') }}`` in ``io_config.yaml``.

Values are encrypted with Fernet (``cryptography``) under a key kept **outside** the
project: ``TREADLE_SECRET_KEY`` when it is set (a Fernet key; give every machine that
shares the project's secrets the same one), else ``~/.config/treadle/secret.key``
(``$XDG_CONFIG_HOME`` is honoured), made on first use, readable by its owner only. The
encrypted values live in the project's state folder, ``.treadle/secrets.json``
(gitignored): a copy of the project without the key reveals nothing. Values are never
printed or logged; runs mask them in logs (``masking.py``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

from treadle.errors import UserInputError, did_you_mean

SECRETS_FILE = ".treadle/secrets.json"
KEY_VARIABLE = "TREADLE_SECRET_KEY"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,199}$")


def key_file() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "treadle" / "secret.key"


def secret_key(create: bool = False) -> bytes | None:
    """The Fernet key: ``TREADLE_SECRET_KEY``, else the key file (made when ``create``)."""
    from_env = os.environ.get(KEY_VARIABLE)
    if from_env:
        return from_env.encode()
    file = key_file()
    if file.is_file():
        return file.read_bytes().strip()
    if not create:
        return None
    from cryptography.fernet import Fernet

    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    _write_private(file, key)
    return key


class SecretStore:
    """The project's secrets: names in the clear, values encrypted."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.file = self.root / SECRETS_FILE

    def names(self) -> list[str]:
        return sorted(self._read())

    def updated_at(self, name: str) -> float | None:
        entry = self._read().get(name)
        return entry.get("updated_at") if entry else None

    def set(self, name: str, value: str) -> None:
        check_secret_name(name)
        token = self._fernet(create=True).encrypt(value.encode()).decode()
        entries = self._read()
        entries[name] = {"value": token, "updated_at": time.time()}
        self._write(entries)

    def delete(self, name: str) -> None:
        entries = self._read()
        if name not in entries:
            raise self._unknown(name, entries)
        del entries[name]
        self._write(entries)

    def get(self, name: str) -> str | None:
        """The value of ``name``, or None when there is no such secret."""
        entry = self._read().get(name)
        if entry is None:
            return None
        return self._decrypt(name, entry["value"])

    def values(self) -> list[str]:
        """Every value (to mask them in logs); none when the key is not there."""
        entries = self._read()
        if not entries or secret_key() is None:
            return []
        return [self._decrypt(name, entry["value"]) for name, entry in entries.items()]

    def _decrypt(self, name: str, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet().decrypt(token.encode()).decode()
        except InvalidToken:
            raise UserInputError(
                f"secret {name!r} cannot be decrypted with this machine's key",
                path=SECRETS_FILE,
                hint=f"set {KEY_VARIABLE} to the key it was stored with, "
                f"or store it again with `treadle secrets set {name}`",
            ) from None

    def _fernet(self, create: bool = False):  # noqa: ANN202 (cryptography is imported lazily)
        from cryptography.fernet import Fernet

        key = secret_key(create=create)
        if key is None:
            raise UserInputError(
                "there is no secret key on this machine",
                hint=f"set {KEY_VARIABLE}, or store a secret with `treadle secrets set NAME`",
            )
        try:
            return Fernet(key)
        except ValueError:
            raise UserInputError(
                f"the secret key ({KEY_VARIABLE} or {key_file()}) is not a Fernet key",
                hint="make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'",
            ) from None

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UserInputError(
                f"cannot read the secret store: {exc}", path=SECRETS_FILE
            ) from None
        return data if isinstance(data, dict) else {}

    def _write(self, entries: dict[str, dict]) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        _write_private(self.file, json.dumps(entries, indent=1, sort_keys=True).encode())

    def _unknown(self, name: str, entries: dict[str, dict]) -> UserInputError:
        from treadle.errors import UnknownName

        return UnknownName(f"no secret {name!r}", hint=did_you_mean(name, list(entries)))


def check_secret_name(name: str) -> None:
    if not NAME.match(name or ""):
        raise UserInputError(
            f"{name!r} is not a valid secret name",
            hint="use letters, digits, _ . and -, starting with a letter or _",
        )


def _write_private(file: Path, data: bytes) -> None:
    """Write ``data`` to ``file`` readable by its owner only, atomically."""
    handle, temp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, file)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
