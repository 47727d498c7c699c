"""Fixtures for the run-history store: one ``store`` per database (SQLite, PostgreSQL).

PostgreSQL is the real server at 127.0.0.1:5432 (DESIGN.md "Tests"). Each test session
creates its own database (``treadle_test_<random>``) and drops it at the end; tests that
need an empty database get one more from ``fresh_pg_url``. When the server cannot be
reached the PostgreSQL tests skip, saying why, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from treadle.store import RunStore, open_store

PG_SERVER = os.environ.get("TREADLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
TABLES = (
    "audit_events, secrets, api_tokens, users, trigger_fires, block_runs, run_blocks, "
    "pipeline_runs, backfills, triggers"
)


def _admin():  # a connection to the server's maintenance database
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3)


def _unreachable(reason: str) -> None:
    message = f"PostgreSQL at {PG_SERVER} is not reachable ({reason})"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; under CI=true the PostgreSQL tests must run")
    pytest.skip(message)


class PgDatabases:
    """Creates throw-away databases on the server and drops them all at the end."""

    def __init__(self) -> None:
        self.prefix = f"treadle_test_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []

    def create(self) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{PG_SERVER}/{name}"

    def drop_all(self) -> None:
        with _admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    try:
        import psycopg

        with _admin():
            pass
    except ImportError:
        _unreachable("psycopg is not installed")
    except psycopg.OperationalError as exc:
        _unreachable(str(exc).strip().splitlines()[0])
    databases = PgDatabases()
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def pg_url(pg_databases: PgDatabases) -> str:
    """The session's database, migrated once by the first store opened on it."""
    return pg_databases.create()


@pytest.fixture
def fresh_pg_url(pg_databases: PgDatabases) -> Callable[[], str]:
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
