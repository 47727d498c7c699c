"""Keeping the database's schema at this Treadle's version, safely and cheaply.

``ensure_schema`` runs on every ``open_store``. On an up-to-date database it costs one
small query through the DB-API; only when the database is behind does it import Alembic
(and SQLAlchemy) and upgrade it to ``HEAD_REVISION``. Two processes starting at once take
turns: on SQLite an exclusive ``flock`` on ``<db>.migrate.lock`` is held around the second
check and the upgrade; on PostgreSQL the upgrade's transaction takes an advisory lock
first. A migration is one transaction on both (SQLite included: ``BEGIN IMMEDIATE``), so a
crash mid-way leaves the previous version intact.

A database stamped with a revision this code does not know was written by a newer Treadle:
it is refused, never downgraded.

To write the next migration: change ``schema.py``, then from the repository root::

    python -m treadle.store.migrate revision -m "what changed" [--url postgresql://…]

(autogenerate against a database at head; review the file; add its id to ``REVISIONS``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treadle.store.base import StoreUnavailable

if TYPE_CHECKING:
    from treadle.store.db import Database

#: Every migration this code knows, oldest first; the last is the head.
REVISIONS = ("0001", "0002", "0003", "0004", "0005")
HEAD_REVISION = REVISIONS[-1]
MIGRATIONS = Path(__file__).with_name("migrations")


def ensure_schema(db: Database) -> None:
    """Bring ``db`` to ``HEAD_REVISION`` unless it is there already.

    Raises ``StoreUnavailable`` when the database is newer than this code, when another
    process's migration holds the lock too long, or when the upgrade fails."""
    if db.schema_version() == {HEAD_REVISION}:
        return
    with db.migration_lock():
        versions = db.schema_version()  # another process may have just upgraded it
        if versions == {HEAD_REVISION}:
            return
        _refuse_unknown(db, versions)
        upgrade(db)
        versions = db.schema_version()
        if versions != {HEAD_REVISION}:
            _refuse_unknown(db, versions)
            raise StoreUnavailable(
                f"the run history database is at revision {_show(versions)} after upgrading "
                f"to {HEAD_REVISION}",
                path=db.where,
            )


def _refuse_unknown(db: Database, versions: set[str]) -> None:
    unknown = versions - set(REVISIONS)
    if unknown:
        raise StoreUnavailable(
            f"the run history database has schema revision {_show(unknown)}, newer than this "
            f"Treadle knows (up to {HEAD_REVISION}): a newer Treadle wrote it",
            path=db.where,
            hint="upgrade Treadle (pip install -U treadle), or point database_url / "
            "TREADLE_DATABASE_URL at another database",
        )
    if len(versions) > 1:
        raise StoreUnavailable(
            f"the run history database has several schema revisions: {_show(versions)}",
            path=db.where,
            hint="its alembic_version table was edited by hand; keep only the right row",
        )


def _show(versions: set[str]) -> str:
    return ", ".join(sorted(versions)) or "none"


def alembic_config(url: str | None = None, connection: Any = None) -> Any:
    """An Alembic ``Config`` for Treadle's migrations, without an ``alembic.ini``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def make_engine(url: str) -> Any:
    """A SQLAlchemy engine for migrations; on SQLite its transactions really are
    transactions (``BEGIN IMMEDIATE``), DDL included."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    if not url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool)
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 10})

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def upgrade(db: Database, revision: str = "head") -> None:
    """Run Alembic's upgrade of ``db`` in one transaction. Raises ``StoreUnavailable``."""
    from alembic import command
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    engine = make_engine(db.sqlalchemy_url())
    try:
        with engine.begin() as conn:
            if db.dialect == "postgres":
                conn.exec_driver_sql("SET LOCAL lock_timeout = '60s'")
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({db.MIGRATION_LOCK_KEY})")
            command.upgrade(alembic_config(connection=conn), revision)
    except (SQLAlchemyError, CommandError) as exc:
        original = getattr(exc, "orig", None)
        problem = db.unavailable(original) if original is not None else None
        if problem is not None:
            raise problem from exc
        raise StoreUnavailable(
            f"could not upgrade the run history database to revision {HEAD_REVISION}: "
            f"{str(original or exc).strip().splitlines()[0]}",
            path=db.where,
            hint="give Treadle a database of its own (its tables are named pipeline_runs, "
            "run_blocks, block_runs, triggers, users …); nothing was changed",
        ) from exc
    finally:
        engine.dispose()


def _main(argv: list[str]) -> int:
    """``python -m treadle.store.migrate revision -m MSG [--url URL]`` or ``upgrade --url URL``."""
    import argparse

    from alembic import command

    parser = argparse.ArgumentParser(prog="python -m treadle.store.migrate")
    parser.add_argument("action", choices=["revision", "upgrade"])
    parser.add_argument("-m", "--message", default="")
    parser.add_argument("--url", default="sqlite:///.treadle-migrations.db")
    args = parser.parse_args(argv)
    config = alembic_config(args.url)
    if args.action == "upgrade":
        command.upgrade(config, "head")
    else:
        command.upgrade(config, "head")
        next_id = f"{int(HEAD_REVISION) + 1:04d}"
        command.revision(config, message=args.message, autogenerate=True, rev_id=next_id)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
