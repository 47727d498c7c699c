"""What a project is, as frozen data: ``Project`` → ``Pipeline`` → ``BlockSpec``.

These are descriptions only. ``treadle/project/loader.py`` builds them from files and
validates them; ``treadle/engine`` plans and runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from treadle.errors import unknown_name_error
from treadle.project.settings import ProjectSettings


class BlockType(StrEnum):
    """A block's role. The value is the YAML spelling and the decorator's name."""

    DATA_LOADER = "data_loader"
    TRANSFORMER = "transformer"
    DATA_EXPORTER = "data_exporter"
    CUSTOM = "custom"
    SENSOR = "sensor"

    @property
    def folder(self) -> str:
        """The project folder that holds block files of this type (Mage's names)."""
        return _FOLDERS[self]

    @property
    def decorator(self) -> str:
        return self.value


_FOLDERS = {
    BlockType.DATA_LOADER: "data_loaders",
    BlockType.TRANSFORMER: "transformers",
    BlockType.DATA_EXPORTER: "data_exporters",
    BlockType.CUSTOM: "custom",
    BlockType.SENSOR: "sensors",
}

# Decorators that mark helper functions in a block file, beside the block's own function.
HELPER_DECORATORS = ("test", "condition", "callback")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failed block is tried again."""

    count: int = 0
    delay: float = 5.0  # seconds before the first retry
    backoff: float = 2.0  # each further delay is multiplied by this
    max_delay: float = 3600.0

    def delay_before(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        return min(self.delay * self.backoff ** (retry_number - 1), self.max_delay)


SQL_IF_EXISTS = ("replace", "append", "fail")


@dataclass(frozen=True, slots=True)
class SqlSettings:
    """How a ``.sql`` block's result is used (its keys in ``pipeline.yaml``).

    Without ``raw``, the query's result goes downstream as a DataFrame, capped at ``limit``
    rows when given, and is also written to ``schema.table`` (when ``table`` is given) on
    the block's profile. With ``raw``, the SQL runs as plain statements (DDL, DML) and the
    block outputs nothing.
    """

    table: str | None = None
    schema: str | None = None  # None: the profile's (DuckDB: main; PostgreSQL: its schema)
    if_exists: str = "replace"
    raw: bool = False
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """One block of a pipeline, as ``pipeline.yaml`` declares it."""

    name: str
    type: BlockType
    file: str  # relative to the project root, with forward slashes
    upstream: tuple[str, ...] = ()
    timeout: float | None = None
    retries: RetryPolicy | None = None  # None: the pipeline's policy
    dynamic: bool = False
    reduce: bool = False
    profile: str = "default"  # io_config profile for SQL blocks
    sql: SqlSettings = SqlSettings()  # for SQL blocks only
    sensor_interval: float = 10.0  # seconds between polls of a sensor block
    line: int | None = None  # where in pipeline.yaml

    @property
    def is_sql(self) -> bool:
        return self.file.endswith(".sql")


class AlertEvent(StrEnum):
    """What an alert can be sent for. The value is the YAML spelling (``on:``)."""

    FAILURE = "failure"
    SUCCESS = "success"
    SLA_MISSED = "sla_missed"  # not finished within the pipeline's ``sla``
    STUCK = "stuck"  # lost with its worker, or waiting and unable to start


DEFAULT_ALERT_EVENTS = frozenset({AlertEvent.FAILURE, AlertEvent.SLA_MISSED, AlertEvent.STUCK})
# What an alert's title and body templates can use (``treadle/scheduler/alerts.py`` fills them).
ALERT_TEMPLATE_NAMES = (
    "project", "pipeline", "run_id", "event", "status", "execution_date", "duration",
    "failing_block", "error", "reason", "link", "env_var",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """One ``alerts:`` entry of a pipeline: where to send which events, and what to say.

    ``urls`` are apprise URLs as written: ``{{ env_var('X') }}`` in them is rendered when
    the alert is sent. ``title`` and ``body`` are Jinja templates; None means the default.
    """

    urls: tuple[str, ...]
    on: frozenset[AlertEvent] = DEFAULT_ALERT_EVENTS
    title: str | None = None
    body: str | None = None
    line: int = 0  # where in pipeline.yaml


@dataclass(frozen=True)
class Pipeline:
    name: str
    directory: Path
    blocks: tuple[BlockSpec, ...]
    description: str = ""
    variables: Mapping[str, Any] = field(default_factory=dict)
    retries: RetryPolicy = RetryPolicy()
    concurrency: int | None = None  # max blocks at once; None: the project's setting
    resume_on_crash: bool = False  # a run lost with its process is resumed when noticed
    max_active_runs: int | None = None  # most runs of this pipeline at once; None: no limit
    sla: float | None = None  # seconds after the execution date (or start) to be finished
    alerts: tuple[AlertSpec, ...] = ()

    def alerts_for(self, event: AlertEvent) -> tuple[AlertSpec, ...]:
        """The alerts that subscribe to ``event``, in file order."""
        return tuple(a for a in self.alerts if event in a.on)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {b.name: b for b in self.blocks})

    def block(self, name: str) -> BlockSpec:
        return self._by_name[name]  # type: ignore[attr-defined]

    def has_block(self, name: str) -> bool:
        return name in self._by_name  # type: ignore[attr-defined]

    @property
    def block_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.blocks)

    def downstream_of(self, name: str) -> tuple[str, ...]:
        """Every block that depends on ``name``, directly or not, in pipeline order."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {b.name for b in self.blocks if frontier & set(b.upstream)} - found
            found |= frontier
        return tuple(b.name for b in self.blocks if b.name in found)


@dataclass(frozen=True)
class Project:
    root: Path
    settings: ProjectSettings
    pipelines: Mapping[str, Pipeline]

    @property
    def state_dir(self) -> Path:
        """``.treadle/``: outputs, logs and the embedded databases (gitignored)."""
        return self.root / ".treadle"

    def pipeline(self, name: str) -> Pipeline:
        try:
            return self.pipelines[name]
        except KeyError:
            raise unknown_name_error("pipeline", name, list(self.pipelines)) from None


def dependency_order(blocks: tuple[BlockSpec, ...] | list[BlockSpec]) -> list[BlockSpec]:
    """Blocks ordered so each comes after its upstreams among them (stable on ties).

    Upstreams outside ``blocks`` are ignored. The blocks must form a DAG (the loader
    checks that before anything calls this).
    """
    names = {b.name for b in blocks}
    done: set[str] = set()
    ordered: list[BlockSpec] = []
    remaining = list(blocks)
    while remaining:
        ready = [b for b in remaining if done.issuperset(u for u in b.upstream if u in names)]
        if not ready:
            raise ValueError("blocks have a cycle: " + ", ".join(b.name for b in remaining))
        done.update(b.name for b in ready)
        ordered.extend(ready)
        remaining = [b for b in remaining if b.name not in done]
    return ordered


def fanned_blocks(blocks: tuple[BlockSpec, ...] | list[BlockSpec]) -> set[str]:
    """Blocks that run once per item of a dynamic block's list output.

    A direct child of a dynamic block is fanned; so is a child of a fanned block that
    does not ``reduce`` (a reducing block's downstream gets the collected list, once).
    """
    by_name = {b.name: b for b in blocks}
    fanned: set[str] = set()
    for block in dependency_order(blocks):
        parents = [by_name[u] for u in block.upstream if u in by_name]
        if any(p.dynamic or (p.name in fanned and not p.reduce) for p in parents):
            fanned.add(block.name)
    return fanned
