"""A throw-away PostgreSQL database for one run of the harness.

``bench_database()`` creates ``treadle_bench_<random>`` on the server (default
``postgresql://postgres@127.0.0.1:5432``, or ``TREADLE_BENCH_PG``), migrates it, and drops
it at the end. When the server cannot be reached it yields no URL and the reason, and the
PostgreSQL measurements are reported as skipped.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER = os.environ.get("TREADLE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


@dataclass(frozen=True)
class Postgres:
    url: str | None  # the run's database, or None when PostgreSQL cannot be used
    unavailable: str = ""  # why not


def _admin():  # a connection to the server's maintenance database
    import psycopg

    return psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=3)


@contextmanager
def bench_database() -> Iterator[Postgres]:
    try:
        import psycopg
    except ImportError:
        yield Postgres(None, "psycopg is not installed")
        return
    name = f"treadle_bench_{uuid.uuid4().hex[:10]}"
    try:
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        yield Postgres(None, f"PostgreSQL at {SERVER} is not reachable ({first_line})")
        return
    try:
        url = f"{SERVER}/{name}"
        migrate(url)
        yield Postgres(url)
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str) -> None:
    """Create the schema now, so that no timed run (nor its warm-up) pays for it."""
    from treadle.store import open_store

    with tempfile.TemporaryDirectory() as folder:
        open_store(Path(folder), url, project="bench_setup").close()
