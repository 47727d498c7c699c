"""Run history: the metadata database (SQLite by default, PostgreSQL for teams).

``open_store(root)`` gives a ``RunStore``: the engine's event sink (``emit``) and what the
CLI, server and scheduler ask about runs. Importing this package loads neither SQLAlchemy,
Alembic nor psycopg; they load only to migrate a database, or to reach PostgreSQL.

Layout: ``base.py`` (the contract, ``RunHistory``), ``sql.py`` (``RunStore``: the SQL),
``db.py`` (SQLite and PostgreSQL connections), ``rows.py`` (what queries return),
``schema.py`` (the tables, SQLAlchemy Core), ``migrate.py`` and ``migrations/`` (Alembic).
"""

from typing import TYPE_CHECKING, Any

from treadle.store.api import open_store as open_store
from treadle.store.base import ALL_PROJECTS as ALL_PROJECTS
from treadle.store.base import RunHistory as RunHistory
from treadle.store.base import StoreUnavailable as StoreUnavailable
from treadle.store.migrate import HEAD_REVISION as HEAD_REVISION
from treadle.store.sql import RunStore as RunStore
from treadle.store.sql import pid_alive as pid_alive

if TYPE_CHECKING:
    from treadle.store.rows import AttemptRow as AttemptRow
    from treadle.store.rows import BlockRow as BlockRow
    from treadle.store.rows import BlockState as BlockState
    from treadle.store.rows import RunDetail as RunDetail
    from treadle.store.rows import RunSummary as RunSummary

_ROWS = ("AttemptRow", "BlockRow", "BlockState", "RunDetail", "RunSummary")

__all__ = [
    "ALL_PROJECTS",
    "HEAD_REVISION",
    "AttemptRow",
    "BlockRow",
    "BlockState",
    "RunDetail",
    "RunHistory",
    "RunStore",
    "RunSummary",
    "StoreUnavailable",
    "open_store",
    "pid_alive",
]


def __getattr__(name: str) -> Any:
    """The row types, imported on first use (recording a run never needs them)."""
    if name in _ROWS:
        from treadle.store import rows

        return getattr(rows, name)
    raise AttributeError(f"module 'treadle.store' has no attribute {name!r}")
