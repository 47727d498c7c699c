"""The metadata database's tables, in SQLAlchemy Core: the one source of truth for the schema.

Alembic's migrations (``treadle/store/migrations/``) are written from these tables, and a
test checks that a migrated database matches them. Nothing on the run path imports this
module (SQLAlchemy takes ~170 ms to import): the store reads and writes with plain DB-API
SQL (``treadle/store/sql.py``), and the contract tests run that SQL against databases
migrated with Alembic on SQLite and PostgreSQL.

Conventions, the same in every table:

* **Times** are ``timestamptz`` on PostgreSQL and unix seconds (a REAL) on SQLite. Python
  code always sees unix seconds as a float; ``rows.py`` renders them as ISO 8601 UTC.
* **JSON** is ``jsonb`` on PostgreSQL and JSON text on SQLite.
* **Statuses** are the lower-case values of ``treadle.events.RunStatus``/``BlockStatus``,
  guarded by a CHECK constraint.
* **No item** in ``block_runs.item`` is stored as ``-1`` (not NULL), so the plain unique key
  ``(run_id, block, item, attempt)`` holds for blocks outside a fan-out too.
* **Projects**: one PostgreSQL database may serve several projects, so rows that belong to
  a project carry its name.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from treadle.events import BlockStatus, RunStatus

#: Unix seconds on SQLite, timestamptz on PostgreSQL.
Timestamp = DateTime(timezone=True).with_variant(Float(), "sqlite")
#: JSON text on SQLite, jsonb on PostgreSQL.
Json = JSON().with_variant(JSONB(), "postgresql")
#: An autoincrementing id: bigint on PostgreSQL; SQLite's rowid needs plain INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")

RUN_STATUSES = tuple(s.value for s in RunStatus)
BLOCK_STATUSES = tuple(s.value for s in BlockStatus)
NO_ITEM = -1  # block_runs.item of an attempt outside a dynamic fan-out

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


triggers = Table(
    "triggers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("pipeline", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", Timestamp, nullable=False),  # first seen: anchors @once and `every`
    Column("type", String(20), nullable=False, server_default="schedule"),  # schedule/api/event
    Column("spec", Json),  # the trigger as triggers.yaml says it (TriggerSpec.to_dict)
    Column("fingerprint", String(64), nullable=False, server_default=""),  # of ``spec``
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("updated_at", Timestamp),
    Column("token_hash", String(128)),  # an API trigger's token, hashed (sha256)
    Column("token_created_at", Timestamp),
    # a trigger deleted from its file is kept, removed, with its fires: added back, it
    # does not fire its old slots again
    Column("removed_at", Timestamp),
    UniqueConstraint("project", "pipeline", "name"),
)

backfills = Table(
    "backfills",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("pipeline", String(200), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("status", String(20), nullable=False),
    Column("start", Timestamp),  # the first slot's execution_date
    Column("end", Timestamp),  # the last slot's (inclusive)
    Column("every", String(50)),  # the interval as written (``1d``)
    Column("variables", Json),
    Column("concurrency", Integer),
    Column("total", Integer),  # how many runs it makes
    Column("reason", Text, nullable=False, server_default=""),
    CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
    Index(None, "project", "created_at"),
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(64), primary_key=True),  # the run id
    Column("project", String(200), nullable=False),
    Column("pipeline", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("execution_date", Timestamp),
    Column("interval_start", Timestamp),
    Column("interval_end", Timestamp),
    Column("variables", Json, nullable=False),
    Column(
        "trigger", String(20)
    ),  # what started it: cli, ui, api, schedule, backfill, event, block
    Column("triggered_by", String(200)),
    Column("executor", String(50), nullable=False, server_default=""),
    Column("host", String(255), nullable=False, server_default=""),
    Column("pid", Integer),
    Column("pid_started", Float),  # the process's start (ticks since boot): a pid is reused
    Column("pipeline_hash", String(64), nullable=False, server_default=""),
    Column("file_hashes", Json, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("started_at", Timestamp),
    Column("finished_at", Timestamp),
    Column("heartbeat_at", Timestamp),
    Column("reason", Text, nullable=False, server_default=""),
    Column("resumes", Integer, nullable=False, server_default=text("0")),
    Column("cancel_requested_at", Timestamp),
    Column("cancel_reason", Text),
    Column("trigger_id", Integer, ForeignKey("triggers.id", ondelete="SET NULL")),
    Column("backfill_id", String(64), ForeignKey("backfills.id", ondelete="SET NULL")),
    # a queued run is leased to the scheduler that will start it; an expired lease frees it
    Column("claimed_by", String(255)),
    Column("lease_until", Timestamp),
    CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
    # ``list_runs``: newest first, per project (alone, by pipeline, by status), and across
    # projects; "by status" also finds the running runs (``find_lost_runs``)
    Index(None, "project", "created_at", "id"),
    Index(None, "project", "pipeline", "created_at", "id"),
    Index(None, "project", "status", "created_at", "id"),
    Index(None, "created_at", "id"),
    Index(None, "status", "created_at"),
    # a pipeline's runs by start time (the scheduler, durations)
    Index(None, "pipeline", "started_at"),
    # retention
    Index(None, "finished_at"),
    Index(None, "backfill_id"),
    Index(None, "trigger_id"),
)

run_blocks = Table(
    "run_blocks",
    metadata,
    Column(
        "run_id", String(64), ForeignKey("pipeline_runs.id", ondelete="CASCADE"), nullable=False
    ),
    Column("block", String(200), nullable=False),
    Column("ordinal", Integer, nullable=False),  # the block's place in the pipeline
    Column("status", String(20), nullable=False),
    Column("why", Text, nullable=False, server_default=""),  # one line, when not running
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("items", Integer),  # how many items it ran for, in a dynamic fan-out
    Column("rows", BigInteger),
    Column("bytes", BigInteger),
    Column("duration", Float),
    Column("started_at", Timestamp),
    Column("finished_at", Timestamp),
    Column("error_type", String(200)),
    Column("error_message", Text),
    Column("traceback", Text),
    PrimaryKeyConstraint("run_id", "block"),
    CheckConstraint(_one_of("status", BLOCK_STATUSES), name="status"),
)

block_runs = Table(
    "block_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "run_id", String(64), ForeignKey("pipeline_runs.id", ondelete="CASCADE"), nullable=False
    ),
    Column("block", String(200), nullable=False),
    Column("item", Integer, nullable=False, server_default=text(str(NO_ITEM))),  # -1: no item
    Column("attempt", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", Timestamp),
    Column("finished_at", Timestamp),
    Column("heartbeat_at", Timestamp),
    Column("duration", Float),
    Column("cpu_time", Float),
    Column("peak_memory", BigInteger),
    Column("rows", BigInteger),
    Column("bytes", BigInteger),
    Column("error_type", String(200)),
    Column("error_message", Text),
    Column("traceback", Text),
    UniqueConstraint("run_id", "block", "item", "attempt"),
    CheckConstraint(_one_of("status", BLOCK_STATUSES), name="status"),
)

trigger_fires = Table(
    "trigger_fires",
    metadata,
    Column("trigger_id", Integer, ForeignKey("triggers.id", ondelete="CASCADE"), nullable=False),
    Column("slot", Timestamp, nullable=False),  # the schedule slot: fires once
    Column("run_id", String(64), ForeignKey("pipeline_runs.id", ondelete="SET NULL")),
    Column("fired_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("trigger_id", "slot"),
    Index(None, "run_id"),
)

alerts_sent = Table(
    "alerts_sent",
    metadata,
    Column("run_id", String(64), nullable=False),  # no foreign key: outlives retention
    Column("event", String(20), nullable=False),  # failure, success, sla_missed, stuck
    Column("sent_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("run_id", "event"),  # each alert once per run and event
    Index(None, "sent_at"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("password_hash", Text),
    Column("created_at", Timestamp, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("created_at", Timestamp, nullable=False),
    Column("last_used_at", Timestamp),
    Column("name", String(200), nullable=False, server_default=""),
    Index(None, "user_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(128), primary_key=True),  # sha256 of the cookie's value
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(128), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Index(None, "user_id"),
    Index(None, "expires_at"),
)

secrets = Table(
    "secrets",
    metadata,
    Column("project", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("value_encrypted", Text, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("project", "name"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", Timestamp, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(500), nullable=False, server_default=""),
    Column("detail", Json),
    Column("project", String(200), nullable=False, server_default=""),
    Column("origin", String(200), nullable=False, server_default=""),  # client address, "cli"
    Index(None, "at"),
)
