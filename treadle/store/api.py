"""``open_store``: the run history of a project, ready to record and answer."""

from __future__ import annotations

from pathlib import Path

from treadle.store.db import connect, env_database_url
from treadle.store.migrate import ensure_schema
from treadle.store.sql import RunStore


def open_store(
    root: Path, database_url: str | None = None, *, project: str | None = None
) -> RunStore:
    """Open (creating or upgrading as needed) the run history of the project at ``root``.

    Where: ``TREADLE_DATABASE_URL`` when set, else ``database_url`` (``treadle.yaml``), else
    SQLite at ``<root>/.treadle/treadle.db``. URLs: ``postgresql://user:pw@host:5432/db``
    or ``sqlite:///path`` (relative to ``root``). ``project`` is the project's name, which
    tells its runs from other projects' in a shared database (default: ``root``'s folder
    name, like the ``name`` setting).

    On an up-to-date database this costs a connection and one query (no SQLAlchemy or
    Alembic import); a database behind this code is upgraded first, safely against other
    processes doing the same. Raises ``UserInputError`` for an unsupported URL,
    ``StoreUnavailable`` (a ``UserInputError``) for a database that cannot be used: a
    corrupt file, a server that cannot be reached, a database written by a newer Treadle,
    a lock held too long, a failed migration; ``MissingExtra`` when psycopg is missing.
    """
    root = Path(root)
    db = connect(env_database_url() or database_url or "", root)
    try:
        ensure_schema(db)
    except BaseException:
        db.close()
        raise
    return RunStore(db, project or root.resolve().name)
