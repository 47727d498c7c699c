"""Fixtures for the run-history store: one ``store`` per database (SQLite, PostgreSQL).

PostgreSQL is the real server at 127.0.0.1:5432 (DESIGN.md "Tests"). Each test session
creates its own database (``treadle_test_<random>``) and drops it at the end; tests that
need an empty database get one more from ``fresh_pg_url``. When the server cannot be
reached the PostgreSQL tests skip, saying why, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from treadle.store import RunStore, open_store

TABLES = (
    "alerts_sent, audit_events, secrets, api_tokens, users, trigger_fires, block_runs, "
    "run_blocks, "
    "pipeline_runs, backfills, triggers"
)


@pytest.fixture(scope="session")
def pg_url(pg_databases: Any) -> str:
    """The session's database, migrated once by the first store opened on it."""
    return pg_databases.create()


@pytest.fixture
def fresh_pg_url(pg_databases: Any) -> Callable[[], str]:
    """Makes an empty database (for migration tests)."""
    return pg_databases.create


@pytest.fixture(autouse=True)
def _no_database_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TREADLE_DATABASE_URL", raising=False)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """``None`` (SQLite under the project) or the session's PostgreSQL database, emptied."""
    if backend == "sqlite":
        return None
    url = request.getfixturevalue("pg_url")
    store = open_store(tmp_path, url, project="cleanup")
    try:
        store.db.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    finally:
        store.close()
    return url


@pytest.fixture
def open_project_store(
    tmp_path: Path, database_url: str | None
) -> Iterator[Callable[..., RunStore]]:
    """Opens stores on this test's database (another ``project`` shares it)."""
    opened: list[RunStore] = []

    def open_(project: str = "demo") -> RunStore:
        store = open_store(tmp_path / "demo", database_url, project=project)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_project_store: Callable[..., RunStore]) -> Iterator[RunStore]:
    """The project ``demo``'s store; the test fails if an event could not be recorded."""
    opened = open_project_store()
    yield opened
    assert opened.emit_failures == 0, opened.last_emit_error
