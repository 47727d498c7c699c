"""Connections: the ``io_config.yaml`` profiles (``GET /api/v1/connections``) and a test
of one (``POST /api/v1/connections/{profile}/test``, as ``treadle io test`` does).

No value that may be secret leaves the server: a secret-looking setting (PASSWORD,
SECRET, TOKEN, KEY …, as ``masking.py`` decides) shows ``***``; a value filled in by
``{{ secret() }}`` or ``{{ env_var() }}`` shows as that template text, read from the file
as written; any known secret value left anywhere is masked too.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

import treadle.io
from treadle.errors import ProjectInvalid, UserInputError, unknown_name_error
from treadle.io.base import check_profile
from treadle.project.io_config import IO_CONFIG_FILE, IoConfig, load_io_config
from treadle.project.masking import MASK, SECRET_NAME, mask, secret_values
from treadle.project.yaml_source import parse_yaml
from treadle.server.auth import Editor, State, Viewer, audit

router = APIRouter(prefix="/connections", tags=["connections"])

#: Seconds a connection test may take before it is reported as failed.
TEST_TIMEOUT = 30.0
#: A setting that is only ``{{ secret('name') }}`` or ``{{ env_var('NAME') }}``, no default.
_PLAIN_LOOKUP = re.compile(r"""^\s*\{\{\s*(?:secret|env_var)\(\s*(['"])[^'"]*\1\s*\)\s*\}\}\s*$""")
_UNKNOWN = object()
Result = TypeVar("Result")


class NoAnswer(Exception):
    """A connection test that took longer than ``TEST_TIMEOUT``."""


class ConnectionOut(BaseModel):
    profile: str
    kind: str = Field(description="the connector: DuckDB, Postgres, GCS, S3, BigQuery …")
    settings: dict[str, Any] = Field(description="keys as written; secret values are ***")
    unresolved: list[str] = Field(
        description="values that cannot be filled in here (a missing env var or secret; "
        "variables() come from a run)"
    )


class ConnectionTest(BaseModel):
    profile: str
    ok: bool
    kind: str = Field(description="the connector the profile is for")
    where: str | None = Field(default=None, description="what it connected to (no secrets)")
    error: str | None = Field(default=None, description="exactly why not (secrets masked)")
    millis: int


@router.get("", response_model=list[ConnectionOut])
def list_connections(_: Viewer, state: State) -> list[ConnectionOut]:
    """Every profile of io_config.yaml, with its keys and connector, secrets hidden."""
    root = state.root
    config = load_io_config(root)
    if not config.exists:
        return [ConnectionOut(profile="default", kind="DuckDB", settings={}, unresolved=[])]
    written = _written_profiles(root)
    secrets = secret_values(root)
    return [
        ConnectionOut(
            profile=name,
            kind=_kind(config.profiles[name]),
            settings={
                key: _shown(key, written.get(name, {}).get(key, _UNKNOWN), secrets)
                for key in config.profiles[name]
            },
            unresolved=_unresolved(config, name),
        )
        for name in config.names
    ]


@router.post("/{profile}/test", response_model=ConnectionTest)
def test_connection(
    profile: str, request: Request, principal: Editor, state: State
) -> ConnectionTest:
    """Connect with the profile and run the cheapest query; a failure is ``ok: false``
    with the reason (404 only for an unknown profile)."""
    root = state.root
    config = load_io_config(root)
    _check_profile_exists(config, profile)
    kind = _kind(config.profiles.get(profile, {}))
    started = time.perf_counter()
    try:
        where = _within(TEST_TIMEOUT, lambda: check_profile(profile, root, kind)[1])
        outcome: dict[str, Any] = {"ok": True, "where": where}
    except NoAnswer:
        outcome = {"ok": False, "error": f"no answer within {TEST_TIMEOUT:g} seconds"}
    except UserInputError as exc:
        outcome = {"ok": False, "error": str(exc)}
    except Exception as exc:  # the backend's own words are the exact failure
        outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    millis = round((time.perf_counter() - started) * 1000)
    secrets = secret_values(root)
    for key in ("where", "error"):
        if outcome.get(key):
            outcome[key] = mask(outcome[key], secrets)
    audit(request, principal, "connection.tested", profile, ok=outcome["ok"])
    return ConnectionTest(profile=profile, kind=kind, millis=millis, **outcome)


# -- helpers -----------------------------------------------------------------------------


def _kind(settings: dict[str, Any]) -> str:
    return treadle.io.connector_name_for(settings)


def _written_profiles(root: Path) -> dict[str, dict[str, Any]]:
    """The profiles as written, templates not filled in; {} when the file only parses
    once rendered (its values are then all shown masked)."""
    try:
        text = (root / IO_CONFIG_FILE).read_text(encoding="utf-8")
        data = parse_yaml(text, IO_CONFIG_FILE).data
    except (OSError, UnicodeDecodeError, UserInputError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(name): value for name, value in data.items() if isinstance(value, dict)}


def _shown(key: Any, written: Any, secrets: tuple[str, ...]) -> Any:
    """How a setting is shown: a plain secret()/env_var() lookup as its template text, a
    secret-looking key's value as ***, anything else as written with secrets masked."""
    if written is _UNKNOWN:
        return MASK
    if isinstance(written, str) and "{{" in written:
        if SECRET_NAME.search(str(key)) and not _PLAIN_LOOKUP.match(written):
            return MASK  # a template with a literal in it (a default) may hold the secret
        return mask(written, secrets)
    if SECRET_NAME.search(str(key)):
        return MASK
    if isinstance(written, dict):
        return {k: _shown(k, v, secrets) for k, v in written.items()}
    if isinstance(written, list):
        return [_shown(key, item, secrets) for item in written]
    if isinstance(written, str):
        return mask(written, secrets)
    return written


def _unresolved(config: IoConfig, profile: str) -> list[str]:
    """Why the profile cannot be used as it stands, one message per value (no values)."""
    try:
        config.profile(profile)
    except ProjectInvalid as exc:
        return [str(problem) for problem in exc.problems]
    except UserInputError as exc:
        return [str(exc)]
    return []


def _check_profile_exists(config: IoConfig, profile: str) -> None:
    """404 for a profile io_config.yaml does not have (``default`` always exists)."""
    if profile in config.names or (profile == "default" and not config.exists):
        return
    raise unknown_name_error("profile", profile, list(config.names))


def _within(seconds: float, work: Callable[[], Result]) -> Result:
    """``work()``'s result, run in a thread of its own; ``TimeoutError`` when it takes
    longer than ``seconds`` (the thread is left to finish on its own): ``NoAnswer``."""
    future: Future[Result] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except Exception as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="treadle-connection-test", daemon=True).start()
    try:
        return future.result(timeout=seconds)
    except TimeoutError:
        if future.done():  # the work's own timeout (a socket's): its words, not ours
            raise
        raise NoAnswer from None
