"""The engine's events: what happened to a run and its blocks, as frozen, versioned data.

The engine emits these into an ``EventSink`` (``treadle/engine/sink.py``); run history,
the scheduler and the server subscribe to them later. Every event is a small frozen
dataclass with ``to_dict``/``from_dict`` so it can cross a process or go into a database.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any, ClassVar

EVENT_VERSION = 2


class BlockStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    CONDITION_FAILED = "condition_failed"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event. ``kind`` names the class in ``to_dict`` output."""

    kind: ClassVar[str] = "event"
    run_id: str
    at: float  # unix time, seconds

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind
        data["version"] = EVENT_VERSION
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Event:
        cls = EVENT_TYPES[data["kind"]]
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if "status" in values:
            values["status"] = _STATUS_TYPES[cls](values["status"])
        for name in ("blocks", "secrets_read"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """A run starts, or a stopped run resumes (``resumed``; same ``run_id``)."""

    kind: ClassVar[str] = "run_started"
    pipeline: str
    execution_date: str  # ISO 8601 with a time zone, like the interval bounds
    variables: dict[str, Any] = field(default_factory=dict)
    blocks: tuple[str, ...] = ()  # the blocks this run (or resume) will settle, in order
    waiting: dict[str, str] = field(default_factory=dict)  # block -> why it cannot start yet
    interval_start: str = ""
    interval_end: str = ""
    trigger: str | None = None  # cli, schedule, api, backfill, ui
    triggered_by: str | None = None  # a user name, a trigger name
    executor: str = ""
    host: str = ""
    pid: int = 0
    pid_started: float | None = None  # the process's start tick: (pid, start) names it
    pipeline_hash: str = ""  # sha256 of pipeline.yaml as it was when the run started
    file_hashes: dict[str, str] = field(default_factory=dict)  # block file -> sha256
    resumed: bool = False
    reused: dict[str, str] = field(
        default_factory=dict
    )  # block not run -> run whose output is used


@dataclass(frozen=True, slots=True)
class BlockQueued(Event):
    """A block (or one item) that cannot start yet, and why, in one line."""

    kind: ClassVar[str] = "block_queued"
    block: str
    why: str
    index: int | None = None


@dataclass(frozen=True, slots=True)
class BlockStarted(Event):
    kind: ClassVar[str] = "block_started"
    block: str
    attempt: int
    index: int | None = None  # the item, for a block inside a dynamic fan-out


@dataclass(frozen=True, slots=True)
class BlockRetrying(Event):
    """An attempt failed and another will follow: closes the failed attempt."""

    kind: ClassVar[str] = "block_retrying"
    block: str
    attempt: int  # the attempt that will follow
    delay: float
    error: dict[str, str] | None  # the failed attempt's ErrorInfo as a dict
    index: int | None = None
    duration: float = 0.0  # of the failed attempt
    cpu_time: float | None = None
    peak_memory: int | None = None
    retries: int = 0  # how many retries the block has in all


@dataclass(frozen=True, slots=True)
class BlockFinished(Event):
    kind: ClassVar[str] = "block_finished"
    block: str
    status: BlockStatus
    attempt: int = 0
    duration: float = 0.0
    rows: int | None = None
    bytes: int | None = None
    error: dict[str, str] | None = None
    reason: str = ""  # why, in one line, when the block did not run or did not succeed
    index: int | None = None  # set for one item of a dynamic fan-out; None for the block
    cpu_time: float | None = None  # seconds of CPU the (last) attempt used
    peak_memory: int | None = None  # bytes: peak resident memory during the attempt
    secrets_read: tuple[str, ...] = ()  # names of the secrets the attempt decrypted


@dataclass(frozen=True, slots=True)
class OutputSaved(Event):
    """A block's output is safely in the output store (may come after BlockFinished)."""

    kind: ClassVar[str] = "output_saved"
    block: str
    key: str
    rows: int | None
    bytes: int
    error: dict[str, str] | None = None  # set when the output could NOT be stored


@dataclass(frozen=True, slots=True)
class RunHeartbeat(Event):
    """The process running ``run_id`` is alive (sent every few seconds while it runs)."""

    kind: ClassVar[str] = "run_heartbeat"


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: RunStatus
    duration: float = 0.0
    reason: str = ""  # why it failed when no block did (an output not stored, a bug)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        BlockQueued,
        BlockStarted,
        BlockRetrying,
        BlockFinished,
        OutputSaved,
        RunHeartbeat,
        RunFinished,
    )
}
_STATUS_TYPES: dict[type[Event], type[Enum]] = {BlockFinished: BlockStatus, RunFinished: RunStatus}
