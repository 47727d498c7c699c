"""Opening the store: migrations from empty, idempotent, safe when two processes start at
once; clear refusals for a newer, corrupt or locked database; a light import."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import treadle.store.migrate as migrate
from treadle.errors import UserInputError
from treadle.events import RunHeartbeat
from treadle.store import HEAD_REVISION, StoreUnavailable, open_store

ROOT = Path(__file__).resolve().parents[2]


def _versions(store) -> list[str]:
    with store.db.transaction(write=False) as tx:
        return [r[0] for r in tx.all("SELECT version_num FROM alembic_version")]


@pytest.fixture
def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that does not exist yet (SQLite) or has no tables (PostgreSQL)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh' / 'history.db'}"
    return request.getfixturevalue("fresh_pg_url")()


def test_an_empty_database_is_migrated_to_head_and_matches_the_schema(
    empty_url: str, tmp_path: Path
):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from treadle.store.schema import metadata

    store = open_store(tmp_path, empty_url)
    try:
        assert _versions(store) == [HEAD_REVISION]
        engine = migrate.make_engine(store.db.sqlalchemy_url())
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                assert compare_metadata(context, metadata) == []
        finally:
            engine.dispose()
    finally:
        store.close()


def test_a_second_open_does_not_migrate_again(
    empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    open_store(tmp_path, empty_url).close()

    def no_upgrade(db, revision="head"):
        raise AssertionError("an up-to-date database was migrated again")

    monkeypatch.setattr(migrate, "upgrade", no_upgrade)
    store = open_store(tmp_path, empty_url)
    assert _versions(store) == [HEAD_REVISION]
    store.close()


def test_the_head_revision_is_the_last_migration():
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    assert scripts.get_heads() == [HEAD_REVISION]
    history = [s.revision for s in scripts.walk_revisions()]
    assert list(reversed(history)) == list(migrate.REVISIONS)


def test_importing_and_opening_an_up_to_date_store_loads_no_sqlalchemy(tmp_path: Path):
    open_store(tmp_path).close()  # creates and migrates it
    code = (
        "import json, sys\n"
        "import treadle.store\n"
        "loaded = [m for m in ('sqlalchemy', 'alembic', 'psycopg') if m in sys.modules]\n"
        f"treadle.store.open_store(__import__('pathlib').Path({str(tmp_path)!r})).close()\n"
        "opened = [m for m in ('sqlalchemy', 'alembic', 'psycopg') if m in sys.modules]\n"
        "print(json.dumps([loaded, opened, 'treadle.engine' in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert json.loads(out.stdout) == [[], [], False]


# -- two processes at once ----------------------------------------------------------------


def _open_when_told(url: str, root: str, go, results) -> None:  # runs in a child process
    go.wait()
    try:
        open_store(Path(root), url).close()
        results.put("ok")
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_opening_a_fresh_database_at_once_all_succeed(
    backend: str, empty_url: str, tmp_path: Path, processes: int
):
    # fork starts the children closest together, which is what makes the race likely
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    rounds = 5 if backend == "sqlite" else 1
    urls = [empty_url] + [f"sqlite:///{tmp_path / f'round{i}' / 'h.db'}" for i in range(1, rounds)]
    for url in urls:
        go, results = context.Event(), context.Queue()
        children = [
            context.Process(target=_open_when_told, args=(url, str(tmp_path), go, results))
            for _ in range(processes)
        ]
        for child in children:
            child.start()
        go.set()
        outcomes = [results.get(timeout=60) for _ in children]
        for child in children:
            child.join(timeout=60)
        assert outcomes == ["ok"] * processes
        store = open_store(tmp_path, url)
        assert _versions(store) == [HEAD_REVISION]
        store.close()


# -- refusals -----------------------------------------------------------------------------


def test_a_database_from_a_newer_treadle_is_refused(empty_url: str, tmp_path: Path):
    store = open_store(tmp_path, empty_url)
    store.db.execute("UPDATE alembic_version SET version_num = '9999'")
    store.close()
    with pytest.raises(StoreUnavailable) as raised:
        open_store(tmp_path, empty_url)
    error = raised.value
    assert "revision 9999, newer than this Treadle knows" in error.message
    assert "upgrade Treadle" in error.hint
    assert error.path == store.db.where


def test_a_file_that_is_not_a_database_is_refused_with_what_to_do(tmp_path: Path):
    db = tmp_path / ".treadle" / "treadle.db"
    db.parent.mkdir()
    db.write_bytes(b"this is not a database, just some text that was written here\n" * 100)
    with pytest.raises(StoreUnavailable) as raised:
        open_store(tmp_path)
    error = raised.value
    assert error.path == str(db)
    assert "corrupt or not a SQLite database" in error.message
    assert "move the file away" in error.hint
    assert isinstance(error, UserInputError)


def test_a_database_locked_for_too_long_gives_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import treadle.store.db as db_module

    monkeypatch.setattr(db_module, "BUSY_TIMEOUT", 0.2)
    store = open_store(tmp_path)
    holder = sqlite3.connect(tmp_path / ".treadle" / "treadle.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="stayed locked") as raised:
            store.request_cancel("anything", "x")
        assert raised.value.path.endswith("treadle.db")
        store.emit(RunHeartbeat("anything", 0.0))  # never raises: counted instead
        assert store.emit_failures == 1
        assert store.list_runs() == []  # readers are not blocked (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()


def test_another_process_migrating_for_too_long_gives_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import fcntl

    import treadle.store.db as db_module

    monkeypatch.setattr(db_module, "MIGRATE_LOCK_TIMEOUT", 0.2)
    state = tmp_path / ".treadle"
    state.mkdir()
    with open(state / "treadle.db.migrate.lock", "wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(StoreUnavailable, match="upgrading") as raised:
            open_store(tmp_path)
    assert "migrate.lock" in raised.value.hint


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path):
    with pytest.raises(StoreUnavailable) as raised:
        open_store(tmp_path, "postgresql://treadle:s3cret@127.0.0.1:1/nothing")
    error = raised.value
    assert "cannot connect" in error.message
    assert "s3cret" not in str(error) and "***" in error.path
    assert "TREADLE_DATABASE_URL" in error.hint


def test_a_database_with_foreign_tables_of_the_same_name_is_refused(
    fresh_pg_url: Callable[[], str], tmp_path: Path
):
    import psycopg

    url = fresh_pg_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int primary key, email text)")
    with pytest.raises(StoreUnavailable, match="could not upgrade") as raised:
        open_store(tmp_path, url)
    assert "a database of its own" in raised.value.hint
    with psycopg.connect(url, autocommit=True) as conn:  # nothing was half-created
        assert conn.execute("SELECT to_regclass('pipeline_runs')").fetchone() == (None,)


# -- where the database is ----------------------------------------------------------------


def test_the_default_is_sqlite_under_dot_treadle_in_wal_mode(tmp_path: Path):
    store = open_store(tmp_path)
    assert store.db.dialect == "sqlite"
    assert store.db.where == str(tmp_path / ".treadle" / "treadle.db")
    assert store.project == tmp_path.name
    with store.db.transaction(write=False) as tx:
        assert tx.one("PRAGMA journal_mode")[0] == "wal"
        assert tx.one("PRAGMA foreign_keys")[0] == 1
        assert tx.one("PRAGMA synchronous")[0] == 1  # NORMAL
        assert tx.one("PRAGMA busy_timeout")[0] >= 5000
    store.close()


def test_the_environment_variable_wins_over_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TREADLE_DATABASE_URL", "sqlite:///elsewhere/runs.db")
    store = open_store(tmp_path, "sqlite:///setting.db", project="p")
    assert store.db.where == str(tmp_path / "elsewhere" / "runs.db")
    assert store.project == "p"
    store.close()
    assert not (tmp_path / "setting.db").exists()


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/treadle", "sqlite:///:memory:", "treadle.db"]
)
def test_an_unsupported_url_is_refused_with_the_supported_forms(tmp_path: Path, url: str):
    with pytest.raises(UserInputError) as raised:
        open_store(tmp_path, url)
    assert "postgresql://" in raised.value.hint and "sqlite:///" in raised.value.hint


def test_a_database_of_the_first_version_is_upgraded_in_place(tmp_path):
    """A project whose history was made by revision 0001 keeps its runs on upgrade."""
    import sqlite3

    from alembic import command

    from treadle.store.migrate import alembic_config

    root = tmp_path / "old"
    (root / ".treadle").mkdir(parents=True)
    db_file = root / ".treadle" / "treadle.db"
    config = alembic_config(f"sqlite:///{db_file}")
    command.upgrade(config, "0001")
    with sqlite3.connect(db_file) as conn:
        conn.execute(
            "INSERT INTO pipeline_runs (id, project, pipeline, status, created_at, host, "
            "executor, reason, resumes, pipeline_hash, variables, file_hashes) "
            "VALUES ('r1', 'old', 'p', 'succeeded', 1.0, '', '', '', 0, '', '{}', '{}')"
        )
    with open_store(root) as store:
        assert [r.run_id for r in store.list_runs()] == ["r1"]
        assert store.get_run("r1").run.pid_started is None
    with sqlite3.connect(db_file) as conn:
        assert (
            conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == HEAD_REVISION
        )
