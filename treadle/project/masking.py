"""The project's secrets that a log must never show.

A secret is the value of a secret-looking setting (a name with PASSWORD, SECRET, TOKEN,
KEY or CREDENTIAL in it) in ``io_config.yaml`` or in the project's ``.env``. Values
shorter than ``MIN_LENGTH`` are not masked (masking every "a" would hide the log, not
the secret). Every value of the encrypted secret store (``secrets.py``) too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|(?:^|_)KEY(?:$|_)", re.IGNORECASE)
MIN_LENGTH = 4
MASK = "***"


def secret_values(root: Path) -> tuple[str, ...]:
    """Secrets to mask, longest first (so a secret containing another is masked whole)."""
    from treadle.project.io_config import IO_CONFIG_FILE, load_io_config, read_dotenv

    values = {v for k, v in read_dotenv(root / ".env").items() if SECRET_NAME.search(k)}
    if _mentions_secrets(root / IO_CONFIG_FILE):
        try:
            config = load_io_config(root)
        except Exception:  # a broken io_config.yaml is reported when a block uses it
            config = None
        for name in config.names if config else ():
            # as written, not ``profile()``: a profile missing a value still has secrets
            for key, value in config.profiles[name].items():
                if SECRET_NAME.search(str(key)) and isinstance(value, str | int):
                    values.add(str(value))
    values.update(_stored_secrets(root))
    kept = (v for v in values if len(v) >= MIN_LENGTH)
    return tuple(sorted(kept, key=len, reverse=True))


def _stored_secrets(root: Path) -> list[str]:
    from treadle.project.secrets import SECRETS_FILE, SecretStore

    if not (root / SECRETS_FILE).is_file():
        return []
    try:
        return SecretStore(root).values()
    except Exception:  # a key that does not fit is reported where a secret is used
        return []


def mask(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _mentions_secrets(file: Path) -> bool:
    """Whether a line that is not a comment names a secret (rendering costs Jinja)."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError:
        return False
    return any(
        SECRET_NAME.search(line) for line in text.splitlines() if not line.lstrip().startswith("#")
    )


def masked_variables(variables: Mapping[str, Any], secrets: tuple[str, ...]) -> dict[str, Any]:
    """``variables`` as they may be recorded: secret-looking names and known secrets masked.

    (So a run recorded this way needs such a variable given again to be resumed.)"""
    shown: dict[str, Any] = {}
    for name, value in variables.items():
        if SECRET_NAME.search(name):
            shown[name] = MASK
        elif isinstance(value, str):
            shown[name] = mask(value, secrets)
        else:
            shown[name] = value
    return shown
