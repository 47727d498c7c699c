"""Conditions to poll from ``@sensor`` blocks: a file arrived, a query has rows, a run succeeded.

```python
from treadle import sensor
from treadle.scheduler.sensors import file_exists

@sensor
def wait_for_file(*, execution_date):
    return file_exists(f"data/raw/{execution_date:%Y-%m-%d}.csv")
```

The engine calls the sensor every ``interval:`` until it returns something truthy, or
fails it at its ``timeout:``. Each helper answers once, quickly, and reads the project
that is running (``treadle.project.active``): paths, ``io_config.yaml`` profiles and the
run history are that project's. Nothing heavy is imported until a helper is called.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treadle.errors import MissingExtra, UserInputError, unknown_name_error
from treadle.project.active import active_context

if TYPE_CHECKING:
    from treadle.io.base import Connector
    from treadle.io.duckdb import DuckDB
    from treadle.store.rows import RunSummary

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_GLOB_MAGIC = re.compile(r"[*?[]")
#: The fsspec filesystem package each common URL scheme needs.
FSSPEC_PACKAGES = {
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "s3": "s3fs",
    "s3a": "s3fs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
}
#: Seconds two recorded execution dates may differ by and still be the same instant.
SAME_INSTANT = 0.001
_FIRST_PAGE = 200  # runs read from the history at first; ten times more each time after


# -- file_exists -------------------------------------------------------------------------


def file_exists(path: str | os.PathLike[str], *, min_size: int = 0) -> bool:
    """Whether a file exists at ``path`` with at least ``min_size`` bytes.

    ``path`` is relative to the project root, or absolute inside the project; a glob
    pattern (``data/raw/*.csv``, ``data/**/part-*.parquet``) is true when any file it
    matches is big enough; like a shell, ``*`` skips hidden files (half-written temporary
    files are usually hidden). Folders do not count. A URL (``gs://``, ``s3://`` …) is
    checked with fsspec. Raises ``UserInputError`` for a path outside the project and
    ``MissingExtra`` when fsspec (or its filesystem for the scheme) is not installed.
    """
    if min_size < 0:
        raise UserInputError(f"min_size must be 0 or more bytes, not {min_size}")
    text = os.fspath(path)
    url = _URL.match(text)
    if url and url.group(1).lower() != "file":
        return _remote_file_exists(text, url.group(1).lower(), min_size)
    if url:
        text = text[url.end() :]
    root = active_context().root.resolve()
    relative = _relative_inside(root, text)
    if _GLOB_MAGIC.search(relative):
        return any(_big_enough(match, min_size) for match in _glob_files(root, relative))
    return _big_enough(root / relative, min_size)


def _relative_inside(root: Path, text: str) -> str:
    """``text`` as a normalised path relative to ``root``; refuses one that leaves it."""
    if not text.strip():
        raise UserInputError("file_exists() needs a path", hint="e.g. 'data/raw/*.csv'")
    candidate = Path(text).expanduser()
    full = Path(os.path.normpath(candidate if candidate.is_absolute() else root / candidate))
    if full == root or not full.is_relative_to(root):
        raise UserInputError(
            f"{text!r} is not inside the project folder {root}",
            hint="give a path to a file inside the project, relative to its root",
        )
    return full.relative_to(root).as_posix()


def _glob_files(root: Path, pattern: str) -> Iterator[Path]:
    import glob

    for match in glob.iglob(pattern, root_dir=root, recursive=True):
        yield root / match


def _big_enough(path: Path, min_size: int) -> bool:
    try:
        info = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size >= min_size


def _remote_file_exists(url: str, scheme: str, min_size: int) -> bool:
    filesystem, remote_path = _remote_filesystem(url, scheme)
    if _GLOB_MAGIC.search(remote_path):
        matches = filesystem.glob(remote_path, detail=True).values()
    else:
        try:
            matches = [filesystem.info(remote_path)]
        except FileNotFoundError:
            return False
    return any(_remote_big_enough(info, min_size) for info in matches)


def _remote_filesystem(url: str, scheme: str) -> tuple[Any, str]:
    package = FSSPEC_PACKAGES.get(scheme, f"the fsspec filesystem for {scheme}://")
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise MissingExtra(
            f"file_exists({url!r}) needs fsspec to read {scheme}:// URLs",
            hint=f"pip install fsspec {package}",
        ) from None
    try:
        return url_to_fs(url)
    except ImportError as exc:  # fsspec names the package its filesystem needs
        raise MissingExtra(
            f"file_exists({url!r}): fsspec cannot open {scheme}:// URLs ({exc})",
            hint=f"pip install {package}",
        ) from None
    except ValueError as exc:  # an unknown protocol
        raise UserInputError(f"file_exists({url!r}): {exc}") from None


def _remote_big_enough(info: dict[str, Any], min_size: int) -> bool:
    return info.get("type") == "file" and (info.get("size") or 0) >= min_size


# -- query_returns_rows ------------------------------------------------------------------


def query_returns_rows(
    profile: str, query: str, *, params: Sequence[Any] | dict[str, Any] | None = None
) -> bool:
    """Whether ``query``, run on the ``io_config.yaml`` profile ``profile``, returns a row.

    At most one row is fetched. ``params`` fill the query's ``?`` / ``$name`` placeholders.
    The database's own error propagates (a missing table fails the sensor: to wait for a
    table, query ``information_schema.tables``), except that a DuckDB file locked by
    another process's writer reads as "not yet". Raises ``UserInputError`` for an unknown
    profile, or a profile with no connector yet.
    """
    connector = _connector_for(profile)
    with connector:
        return _has_a_row(connector, query, params)


def _connector_for(profile: str) -> Connector:
    from treadle.io.base import read_profile

    root, settings = read_profile(profile)
    name = _connector_name(settings)
    import treadle.io

    if name not in treadle.io.CONNECTORS:
        raise UserInputError(
            f"profile {profile!r} is a {name} profile; query_returns_rows() supports "
            "DuckDB profiles for now",
            path="io_config.yaml",
            hint="point it at a DuckDB profile (DUCKDB_DATABASE)",
        )
    return getattr(treadle.io, name).from_profile(profile, project=root)


def _connector_name(settings: dict[str, Any]) -> str:
    """The ``treadle.io`` connector a profile's keys call for (no keys: embedded DuckDB)."""
    if "DUCKDB_DATABASE" in settings:
        return "DuckDB"
    if any(key.startswith("POSTGRES_") for key in settings):
        return "Postgres"
    return "DuckDB"


def _has_a_row(connector: Connector, query: str, params: Any) -> bool:
    from treadle.io.duckdb import DuckDB as DuckDBConnector

    if isinstance(connector, DuckDBConnector):
        return _duckdb_has_a_row(connector, query, params)
    cursor = connector.connection.execute(query, params)  # DB-API: psycopg and the like
    return cursor.fetchone() is not None


def _duckdb_has_a_row(db: DuckDB, query: str, params: Any) -> bool:
    import duckdb

    try:
        relation = db.connection.sql(query, params=params)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            return False  # another process is writing the database: ask again next time
        raise
    if relation is None:  # a statement that is not a query
        return False
    return bool(relation.limit(1).fetchall())  # the limit runs in DuckDB: one row at most


# -- pipeline_succeeded ------------------------------------------------------------------


def pipeline_succeeded(
    pipeline: str,
    execution_date: datetime | date | str | None = None,
    *,
    within: float | str | None = None,
) -> bool:
    """Whether the project's run history holds a succeeded run of ``pipeline``.

    ``execution_date``: a datetime (or ISO text with a time) matches a run for exactly that
    instant; a date (``date`` or ``"2024-01-05"``) matches any run whose execution date
    falls on that day in UTC; naive values are UTC, like ``treadle run --date``. ``None``:
    any execution date. ``within`` (seconds, or a duration like ``"6h"``): only runs that
    finished that recently count; ``None``: any time. Raises ``UnknownName`` (a
    ``UserInputError``) for a pipeline the project does not have.
    """
    start, end = _execution_window(execution_date)
    cutoff = None if within is None else time.time() - _seconds(within)
    from treadle.scheduler.history import history

    project = _active_project()
    if pipeline not in project.pipelines:
        raise unknown_name_error("pipeline", pipeline, sorted(project.pipelines))
    with history(project) as store:
        return any(
            _in_window(run, start, end) and _finished_since(run, cutoff)
            for run in _succeeded_runs(store, pipeline)
        )


def _active_project() -> Any:
    from treadle.project.loader import load_project

    return load_project(active_context().root)


def _succeeded_runs(store: Any, pipeline: str) -> Iterator[RunSummary]:
    """Succeeded runs of ``pipeline``, newest first; older pages only when asked for."""
    limit, seen = _FIRST_PAGE, 0
    while True:
        runs = store.list_runs(pipeline=pipeline, status="succeeded", limit=limit)
        yield from runs[seen:]
        if len(runs) < limit:
            return
        limit, seen = limit * 10, len(runs)


def _execution_window(value: datetime | date | str | None) -> tuple[float | None, float | None]:
    """The execution dates (unix seconds, both ends inclusive) that match ``value``."""
    if value is None:
        return None, None
    when = _parse_when(value)
    if isinstance(when, datetime):
        instant = _as_utc(when).timestamp()
        return instant - SAME_INSTANT, instant + SAME_INSTANT
    day_start = datetime(when.year, when.month, when.day, tzinfo=UTC)
    day_end = day_start + timedelta(days=1)
    return day_start.timestamp(), day_end.timestamp() - 1e-6


def _parse_when(value: datetime | date | str) -> datetime | date:
    if isinstance(value, date):  # a datetime is a date too
        return value
    if not isinstance(value, str):
        raise UserInputError(
            f"execution_date must be a datetime, a date or ISO text, not {type(value).__name__}"
        )
    text = value.strip().replace("Z", "+00:00")
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            return parse(text)
        except ValueError:
            continue
    raise UserInputError(
        f"execution date {value!r} is not an ISO date or datetime",
        hint="write e.g. 2020-10-01 or 2020-10-01T05:00:00+02:00",
    )


def _as_utc(when: datetime) -> datetime:
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _seconds(within: float | str) -> float:
    from treadle.project.durations import parse_duration

    try:
        return parse_duration(within)
    except ValueError as exc:
        raise UserInputError(f"within: {exc}") from None


def _in_window(run: RunSummary, start: float | None, end: float | None) -> bool:
    if start is None or end is None:
        return True
    return run.execution_date is not None and start <= run.execution_date <= end


def _finished_since(run: RunSummary, cutoff: float | None) -> bool:
    if cutoff is None:
        return True
    return run.finished_at is not None and run.finished_at >= cutoff
