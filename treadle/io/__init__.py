"""Connectors: DuckDB, project files, PostgreSQL, GCS, S3 and BigQuery.

``from treadle.io import DuckDB`` imports only ``treadle.io.duckdb`` (and duckdb, pyarrow);
``from treadle.io import Postgres`` only ``treadle.io.postgres`` (and psycopg, pyarrow), or
raises ``MissingExtra`` naming ``pip install 'treadle[postgres]'`` when psycopg is missing
(``BigQuery``, ``GCS``: ``treadle[gcp]``; ``S3``: ``treadle[aws]``).
Importing ``treadle.io`` itself loads no data library. ``CONNECTORS`` is the whole list.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treadle.io.bigquery import BigQuery as BigQuery
    from treadle.io.duckdb import DuckDB as DuckDB
    from treadle.io.files import Files as Files
    from treadle.io.gcs import GCS as GCS
    from treadle.io.postgres import Postgres as Postgres
    from treadle.io.s3 import S3 as S3

#: Public name -> module that defines it. Each module holds one connector and imports its
#: client library at the top, so a name costs nothing until it is used.
CONNECTORS: dict[str, str] = {
    "DuckDB": "treadle.io.duckdb",
    "Files": "treadle.io.files",
    "Postgres": "treadle.io.postgres",  # psycopg 3, COPY; pip install treadle[postgres]
    "GCS": "treadle.io.gcs",  # google-cloud-storage, gcsfs; pip install treadle[gcp]
    "S3": "treadle.io.s3",  # s3fs; pip install treadle[aws]
    "BigQuery": "treadle.io.bigquery",  # google-cloud-bigquery; pip install treadle[gcp]
}

#: Which connector a profile of io_config.yaml is for, by the keys it sets: the first
#: prefix that one of its keys starts with wins; a profile with none (like the default
#: ``default``) is DuckDB's. A BigQuery profile needs a ``BIGQUERY_`` key: one with only
#: ``GOOGLE_`` keys stays GCS's (``BigQuery.from_profile`` reads it all the same).
PROFILE_KINDS: tuple[tuple[str, str], ...] = (
    ("POSTGRES_", "Postgres"),
    ("DUCKDB_", "DuckDB"),
    ("BIGQUERY_", "BigQuery"),
    ("GOOGLE_", "GCS"),
    ("GCS_", "GCS"),
    ("AWS_", "S3"),
    ("S3_", "S3"),
)

__all__ = sorted(CONNECTORS)


def connector_name_for(settings: dict[str, Any]) -> str:
    """The connector (a name in ``CONNECTORS``) for a profile's settings."""
    for prefix, name in PROFILE_KINDS:
        if any(str(key).startswith(prefix) for key in settings):
            return name
    return "DuckDB"


def __getattr__(name: str) -> Any:
    module = CONNECTORS.get(name)
    if module is None:
        raise AttributeError(
            f"module 'treadle.io' has no attribute {name!r}; "
            f"the connectors are: {', '.join(sorted(CONNECTORS))}"
        )
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *CONNECTORS])
