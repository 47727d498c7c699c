"""A DB-API connection and the few things SQLite and PostgreSQL do differently.

The store's SQL is written once, with ``:name`` placeholders (sqlite3's style);
``Database.sql`` turns it into ``%(name)s`` for psycopg. Everything else that differs is
here too: how times and JSON travel (unix seconds and JSON text on SQLite; ``datetime``
and ``jsonb`` on PostgreSQL), how to subtract two times in SQL, how to lock out a second
migrating process, and which driver errors mean "the database cannot be used", turned into
``StoreUnavailable`` with a hint.

One connection per store, guarded by a lock: every transaction holds it, so threads take
turns (a write is tens of microseconds on SQLite). psycopg is imported only when a
PostgreSQL URL is used.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from treadle.store.base import StoreUnavailable

BUSY_TIMEOUT = 10.0  # seconds a SQLite write waits for another writer before giving up
MIGRATE_LOCK_TIMEOUT = 60.0  # seconds to wait for another process's migration
CONNECT_TIMEOUT = 5  # seconds, PostgreSQL
RECONNECT_AFTER = 5.0  # seconds between attempts to reach a PostgreSQL server that was down
_PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://")
_NAME = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")

Params = Mapping[str, Any]


def mask_password(url: str) -> str:
    """``postgresql://user:secret@host/db?password=x`` → ``…user:***@host/db?password=***``."""
    return _QUERY_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", url))


class Database(abc.ABC):
    """A connection to the metadata database, of one ``dialect`` (``sqlite``/``postgres``)."""

    dialect: str
    where: str  # the file, or the URL without its password: for messages
    driver_errors: tuple[type[BaseException], ...]

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._sql_cache: dict[str, str] = {}

    # -- what differs ----------------------------------------------------------------------

    def sql(self, text: str) -> str:
        """The statement in the driver's placeholder style."""
        return text

    def ts(self, t: float | None) -> Any:
        """A unix time as the driver wants it for a time column."""
        return t

    def read_ts(self, value: Any) -> float | None:
        """A time column's value as unix seconds."""
        return value

    def read_json(self, value: Any) -> Any:
        """A JSON column's value as Python (SQLite gives text, psycopg parsed ``jsonb``)."""
        return json.loads(value) if isinstance(value, str) else value

    def seconds_between(self, later: str, earlier: str) -> str:
        """SQL for the seconds from ``earlier`` to ``later`` (two time expressions)."""
        return f"({later} - {earlier})"

    @abc.abstractmethod
    def sqlalchemy_url(self) -> str:
        """The URL Alembic migrates through, in SQLAlchemy's form."""

    @contextlib.contextmanager
    def migration_lock(self) -> Iterator[None]:
        """Held while checking and upgrading the schema (PostgreSQL locks inside the
        migration's own transaction instead)."""
        yield

    def unavailable(self, exc: BaseException) -> StoreUnavailable | None:
        """The ``StoreUnavailable`` a driver error means, or ``None`` for a bug (bad SQL …)."""
        return None

    # -- talking to it ---------------------------------------------------------------------

    @abc.abstractmethod
    def connection(self) -> Any:
        """The open DB-API connection (reconnecting, where the driver can)."""

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        """One transaction, holding the lock; committed on success, rolled back on error.
        Driver errors that mean the database is unusable become ``StoreUnavailable``."""
        with self.lock:
            try:
                with self._transaction(self.connection(), write) as tx:
                    yield tx
            except self.driver_errors as exc:
                problem = self.unavailable(exc)
                if problem is None:
                    raise
                raise problem from exc

    @abc.abstractmethod
    def _transaction(
        self, conn: Any, write: bool
    ) -> contextlib.AbstractContextManager[Transaction]:
        """BEGIN … COMMIT (ROLLBACK on error) on ``conn``, as this database wants it."""

    def execute(self, text: str, params: Params | None = None) -> int:
        """One statement in its own transaction; returns the row count."""
        with self.transaction() as tx:
            return tx.count(text, params)

    def executemany(self, text: str, rows: Sequence[Params]) -> None:
        """One statement for many rows, in one transaction (bulk loads, tests)."""
        with self.transaction() as tx:
            tx.executemany(text, rows)

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; idempotent."""

    @abc.abstractmethod
    def schema_version(self) -> set[str]:
        """The revisions in ``alembic_version`` (empty when it has none or no such table).
        Reads with the DB-API only: no SQLAlchemy, no Alembic."""


class Transaction:
    """What a statement runs on inside ``Database.transaction``."""

    __slots__ = ("db", "conn")

    def __init__(self, db: Database, conn: Any) -> None:
        self.db = db
        self.conn = conn

    def execute(self, text: str, params: Params | None = None) -> None:
        self.conn.execute(self.db.sql(text), params or {})

    def count(self, text: str, params: Params | None = None) -> int:
        """Run one statement and return how many rows it changed."""
        return self.conn.execute(self.db.sql(text), params or {}).rowcount

    def executemany(self, text: str, rows: Sequence[Params]) -> None:
        if rows:
            self.conn.cursor().executemany(self.db.sql(text), rows)

    def all(self, text: str, params: Params | None = None) -> list[Any]:
        return self.conn.execute(self.db.sql(text), params or {}).fetchall()

    def one(self, text: str, params: Params | None = None) -> Any:
        return self.conn.execute(self.db.sql(text), params or {}).fetchone()


# -- SQLite -------------------------------------------------------------------------------


class SqliteDatabase(Database):
    """A SQLite file in WAL mode: readers never wait for the writer, commits do not fsync
    (``synchronous=NORMAL``: a power cut may lose the last commits, never corrupt)."""

    dialect = "sqlite"
    driver_errors = (sqlite3.Error,)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.where = str(path)
        self._conn: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(
                f"cannot open the run history database: {exc}",
                path=self.where,
                hint="check that the folder exists and is writable",
            ) from exc
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                # persistent: once per file. Under the migration lock: two processes
                # switching a new file at once would each wait for the other's lock
                with self.migration_lock():
                    conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            self.close()
            raise self.unavailable(exc) or StoreUnavailable(str(exc), path=self.where) from exc
        except BaseException:
            self.close()
            raise

    def connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable("the run history store is closed", path=self.where)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _transaction(self, conn: sqlite3.Connection, write: bool) -> Iterator[Transaction]:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads, then
        # writes, could fail at once with "locked" instead of waiting for the busy timeout
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield Transaction(self, conn)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def sqlalchemy_url(self) -> str:
        return f"sqlite:///{self.path}"

    def schema_version(self) -> set[str]:
        try:
            with self.lock:
                conn = self.connection()
                found = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
                ).fetchone()
                if not found:
                    return set()
                return {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
        except sqlite3.Error as exc:
            raise self.unavailable(exc) or StoreUnavailable(str(exc), path=self.where) from exc

    @contextlib.contextmanager
    def migration_lock(self) -> Iterator[None]:
        import fcntl

        lock_path = self.path.with_name(self.path.name + ".migrate.lock")
        with open(lock_path, "a+b") as handle:
            deadline = time.monotonic() + MIGRATE_LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreUnavailable(
                            "another Treadle process has been upgrading the run history "
                            f"database for over {MIGRATE_LOCK_TIMEOUT:.0f} s",
                            path=self.where,
                            hint=f"wait for it to finish, or stop it (the lock is {lock_path})",
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def unavailable(self, exc: BaseException) -> StoreUnavailable | None:
        text = str(exc)
        lower = text.lower()
        if "locked" in lower or "busy" in lower:
            return StoreUnavailable(
                f"the run history database stayed locked for over {BUSY_TIMEOUT:.0f} s",
                path=self.where,
                hint="another process holds a long write on it: let it finish, or stop it",
            )
        if "not a database" in lower or "malformed" in lower or "disk image" in lower:
            return StoreUnavailable(
                "the run history database is corrupt or not a SQLite database",
                path=self.where,
                hint="move the file away to start a new, empty history (or restore a backup)",
            )
        if "full" in lower:
            return StoreUnavailable(
                "the disk holding the run history database is full",
                path=self.where,
                hint="free some space (treadle clean removes old outputs and logs)",
            )
        if "readonly" in lower or "read-only" in lower or "unable to open" in lower:
            return StoreUnavailable(
                f"cannot write the run history database: {text}",
                path=self.where,
                hint="check the permissions of the file and of its folder",
            )
        if isinstance(exc, sqlite3.OperationalError) and "disk i/o" in lower:
            return StoreUnavailable(f"the run history database: {text}", path=self.where)
        return None


# -- PostgreSQL ---------------------------------------------------------------------------


class PostgresDatabase(Database):
    """A PostgreSQL database (psycopg 3), shared by processes, hosts and projects.

    The session runs with ``synchronous_commit=off``, the counterpart of SQLite's
    ``synchronous=NORMAL``: a commit does not wait for the server's disk, so a crash of
    the *server* may lose its last fraction of a second of history, never consistency.
    A write that must survive that (later: a trigger's fired slot) can say
    ``SET LOCAL synchronous_commit = on`` in its transaction."""

    dialect = "postgres"
    #: key of the advisory lock that serialises migrations ("treadle" in ASCII)
    MIGRATION_LOCK_KEY = 0x7472656164_6C65

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError as exc:
            from treadle.errors import MissingExtra

            raise MissingExtra(
                "a PostgreSQL run history needs psycopg 3",
                hint="pip install 'treadle[postgres]'",
            ) from exc
        self._psycopg = psycopg
        self.driver_errors = (psycopg.Error,)
        rest = url.split("://", 1)[1]
        self.conninfo = "postgresql://" + rest
        self.url = url
        self.where = mask_password(self.conninfo)
        self._conn: Any = None
        self._closed = False
        self._retry_at = 0.0  # after a failed connection, fail fast until then
        with self.lock:
            self.connection()

    def connection(self) -> Any:
        if self._closed:
            raise StoreUnavailable("the run history store is closed", path=self.where)
        if self._conn is None or self._conn.closed or self._conn.broken:
            if time.monotonic() < self._retry_at:
                raise StoreUnavailable(
                    "the run history database was unreachable a moment ago",
                    path=self.where,
                    hint=f"Treadle tries again every {RECONNECT_AFTER:.0f} s",
                )
            try:
                self._conn = self._psycopg.connect(
                    self.conninfo,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT,
                    # a lock or a stuck query fails after seconds, not hangs a run forever
                    options=(
                        "-c synchronous_commit=off -c lock_timeout=10s -c statement_timeout=60s"
                    ),
                )
            except self._psycopg.Error as exc:
                # a run emits many events: with the server gone, each must not wait for
                # its own connection timeout
                self._retry_at = time.monotonic() + RECONNECT_AFTER
                raise StoreUnavailable(
                    f"cannot connect to the run history database: {str(exc).strip()}",
                    path=self.where,
                    hint="check database_url in treadle.yaml (or TREADLE_DATABASE_URL) "
                    "and that the server is running",
                ) from exc
        return self._conn

    def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _transaction(self, conn: Any, write: bool) -> Iterator[Transaction]:
        # (pipeline mode was measured: no faster here, the server's work dominates)
        with conn.transaction():
            yield Transaction(self, conn)

    def sql(self, text: str) -> str:
        converted = self._sql_cache.get(text)
        if converted is None:
            converted = _NAME.sub(r"%(\1)s", text.replace("%", "%%"))
            self._sql_cache[text] = converted
        return converted

    def ts(self, t: float | None) -> Any:
        return None if t is None else datetime.fromtimestamp(t, UTC)

    def read_ts(self, value: Any) -> float | None:
        return None if value is None else value.timestamp()

    def seconds_between(self, later: str, earlier: str) -> str:
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"

    def sqlalchemy_url(self) -> str:
        return "postgresql+psycopg://" + self.url.split("://", 1)[1]

    def schema_version(self) -> set[str]:
        with self.transaction(write=False) as tx:
            if tx.one("SELECT to_regclass('alembic_version')")[0] is None:
                return set()
            return {r[0] for r in tx.all("SELECT version_num FROM alembic_version")}

    def unavailable(self, exc: BaseException) -> StoreUnavailable | None:
        errors = self._psycopg.errors
        if isinstance(exc, errors.LockNotAvailable | errors.QueryCanceled):
            return StoreUnavailable(
                f"the run history database stayed locked: {str(exc).strip()}",
                path=self.where,
                hint="another process holds a long lock on it: let it finish, or stop it",
            )
        if isinstance(exc, errors.DiskFull):
            return StoreUnavailable(
                "the run history database server is out of disk space", path=self.where
            )
        if isinstance(exc, self._psycopg.OperationalError):
            return StoreUnavailable(
                f"lost the connection to the run history database: {str(exc).strip()}",
                path=self.where,
                hint="check that the server is running; Treadle reconnects on the next call",
            )
        return None


# -- choosing one -------------------------------------------------------------------------


def connect(url: str, root: Path) -> Database:
    """The database a URL names: ``""`` is ``<root>/.treadle/treadle.db``; ``sqlite:///p``
    a file (relative to ``root``); ``postgresql://…`` a server. Raises ``UserInputError``
    for another scheme, ``StoreUnavailable`` when it cannot be opened."""
    if not url:
        return SqliteDatabase(root / ".treadle" / "treadle.db")
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not str(path) or str(path) == ":memory:":
            raise _bad_url(url, "an in-memory SQLite database cannot hold a run history")
        return SqliteDatabase(path if path.is_absolute() else root / path)
    if url.startswith(_PG_SCHEMES):
        return PostgresDatabase(url)
    raise _bad_url(url, "unsupported database URL")


def _bad_url(url: str, message: str) -> Exception:
    from treadle.errors import UserInputError

    return UserInputError(
        f"{message}: {mask_password(url)!r}",
        path="treadle.yaml",
        hint="use postgresql://user:password@host:5432/dbname, sqlite:///path/to/file.db, "
        "or leave database_url out for .treadle/treadle.db",
    )


def env_database_url() -> str:
    """``TREADLE_DATABASE_URL``, which wins over ``database_url`` in ``treadle.yaml``."""
    return os.environ.get("TREADLE_DATABASE_URL", "").strip()
