"""What the store answers, as frozen data. The CLI's ``--json`` is built from ``to_dict``.

Times are unix seconds (floats) on the dataclasses; ``to_dict`` gives JSON-ready values,
times as ISO 8601 UTC strings with milliseconds (``"2026-11-24T06:15:02.123Z"``), ``null``
when unknown. The keys below are stable: scripts rely on them; add, never rename.

``RunSummary.to_dict()`` (one line of ``treadle runs list --json``)::

    run_id, project, pipeline, status, execution_date, interval_start, interval_end,
    trigger, triggered_by, executor, host, pid, created_at, started_at, finished_at,
    heartbeat_at, duration (seconds or null), reason, resumes, cancel_requested_at,
    cancel_reason

``RunDetail.to_dict()`` (``treadle runs show --json``): every ``RunSummary`` key, plus
``variables``, ``pipeline_hash``, ``file_hashes``, ``trigger_id``, ``backfill_id``,
``blocks`` (a list of ``BlockRow.to_dict()`` in pipeline order) and ``attempts`` (a list of
``AttemptRow.to_dict()``, by block order, item, attempt).

``BlockRow.to_dict()``::

    block, status, why, attempts, items, rows, bytes, duration, started_at, finished_at,
    error ({type, message, traceback} or null)

``AttemptRow.to_dict()``::

    id, block, item (null outside a fan-out), attempt, status, started_at, finished_at,
    heartbeat_at, duration, cpu_time, peak_memory, rows, bytes, error

``BlockState.to_dict()``: ``status``, ``attempts``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from treadle.events import BlockStatus, RunStatus


def iso(t: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC with milliseconds (``2026-11-24T06:15:02.123Z``)."""
    if t is None:
        return None
    whole = int(t // 1)
    millis = int(round((t - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """A recorded failure: the exception's type, message and (user-code) traceback."""

    type: str
    message: str
    traceback: str

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}


def error_row(type_: str | None, message: str | None, traceback: str | None) -> ErrorRow | None:
    if type_ is None and message is None and traceback is None:
        return None
    return ErrorRow(type_ or "", message or "", traceback or "")


def _error_dict(error: ErrorRow | None) -> dict[str, str] | None:
    return error.to_dict() if error else None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run, as ``treadle runs list`` shows it."""

    run_id: str
    project: str
    pipeline: str
    status: RunStatus
    execution_date: float | None
    interval_start: float | None
    interval_end: float | None
    trigger: str | None  # cli, ui (a browser), api, schedule, event, backfill, block (one block)
    triggered_by: str | None
    executor: str
    host: str
    pid: int | None
    pid_started: float | None  # with pid, names the process (a pid alone is reused)
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    reason: str
    resumes: int
    cancel_requested_at: float | None
    cancel_reason: str | None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish; ``None`` until both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(self.finished_at - self.started_at, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "project": self.project,
            "pipeline": self.pipeline,
            "status": self.status.value,
            "execution_date": iso(self.execution_date),
            "interval_start": iso(self.interval_start),
            "interval_end": iso(self.interval_end),
            "trigger": self.trigger,
            "triggered_by": self.triggered_by,
            "executor": self.executor,
            "host": self.host,
            "pid": self.pid,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "heartbeat_at": iso(self.heartbeat_at),
            "duration": self.duration,
            "reason": self.reason,
            "resumes": self.resumes,
            "cancel_requested_at": iso(self.cancel_requested_at),
            "cancel_reason": self.cancel_reason,
        }


@dataclass(frozen=True, slots=True)
class BlockRow:
    """One block of a run, as the block table of ``treadle runs show`` shows it."""

    block: str
    status: BlockStatus
    why: str  # one line: why it is not running (waiting, retry at …) or did not succeed
    attempts: int
    items: int | None  # items it ran for, inside a dynamic fan-out
    rows: int | None
    bytes: int | None
    duration: float | None
    started_at: float | None
    finished_at: float | None
    error: ErrorRow | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "status": self.status.value,
            "why": self.why,
            "attempts": self.attempts,
            "items": self.items,
            "rows": self.rows,
            "bytes": self.bytes,
            "duration": self.duration,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "error": _error_dict(self.error),
        }


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One attempt of a block (or of one item of a fan-out): a ``block_runs`` row."""

    id: int
    block: str
    item: int | None
    attempt: int
    status: BlockStatus
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    duration: float | None
    cpu_time: float | None  # seconds
    peak_memory: int | None  # bytes
    rows: int | None
    bytes: int | None
    error: ErrorRow | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "block": self.block,
            "item": self.item,
            "attempt": self.attempt,
            "status": self.status.value,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "heartbeat_at": iso(self.heartbeat_at),
            "duration": self.duration,
            "cpu_time": self.cpu_time,
            "peak_memory": self.peak_memory,
            "rows": self.rows,
            "bytes": self.bytes,
            "error": _error_dict(self.error),
        }


@dataclass(frozen=True, slots=True)
class RunDetail:
    """A run with its blocks (pipeline order) and every attempt: ``treadle runs show``."""

    run: RunSummary
    variables: dict[str, Any]
    pipeline_hash: str
    file_hashes: dict[str, str]
    trigger_id: int | None
    backfill_id: str | None
    blocks: tuple[BlockRow, ...] = ()
    attempts: tuple[AttemptRow, ...] = field(default=())

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def status(self) -> RunStatus:
        return self.run.status

    def block(self, name: str) -> BlockRow:
        """The named block's row; ``KeyError`` when the run has no such block."""
        for row in self.blocks:
            if row.block == name:
                return row
        raise KeyError(name)

    def attempts_of(self, block: str, item: int | None = None) -> list[AttemptRow]:
        """The attempts of ``block`` (of one item, given ``item``), in order."""
        return [a for a in self.attempts if a.block == block and a.item == item]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.run.to_dict(),
            "variables": self.variables,
            "pipeline_hash": self.pipeline_hash,
            "file_hashes": self.file_hashes,
            "trigger_id": self.trigger_id,
            "backfill_id": self.backfill_id,
            "blocks": [b.to_dict() for b in self.blocks],
            "attempts": [a.to_dict() for a in self.attempts],
        }


@dataclass(frozen=True, slots=True)
class BlockState:
    """What resuming a run needs to know of one block."""

    status: BlockStatus
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "attempts": self.attempts}
