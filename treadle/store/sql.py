"""``RunStore``: the run history on SQLite or PostgreSQL, with plain DB-API SQL.

The SQL (``statements.py``, imported as ``q``) is written once for both databases; the
few things that differ are ``Database``'s business (``db.py``).

The methods are documented on ``RunHistory`` (``base.py``). The row types (``rows.py``) are
imported when a query first needs them: recording a run never does, and ``treadle run``
starts a few milliseconds sooner for it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from treadle.errors import UnknownName, UserInputError
from treadle.events import (
    BlockFinished,
    BlockQueued,
    BlockRetrying,
    BlockStarted,
    BlockStatus,
    Event,
    OutputSaved,
    RunFinished,
    RunHeartbeat,
    RunStarted,
    RunStatus,
)
from treadle.processes import pid_alive as pid_alive
from treadle.store import statements as q
from treadle.store.base import ALL_PROJECTS, RunHistory
from treadle.store.db import Database, Transaction

if TYPE_CHECKING:
    from treadle.store.rows import BlockState, RunDetail, RunSummary

log = logging.getLogger("treadle.store")

NO_ITEM = -1  # block_runs.item outside a fan-out (schema.NO_ITEM; schema.py is not imported)
_PREFIX_MATCHES_SHOWN = 10
_DELETE_CHUNK = 500  # runs per DELETE statement (SQLite allows 32766 parameters)
_RUN_STATUSES = tuple(s.value for s in RunStatus)


def _error_params(error: dict[str, str] | None) -> dict[str, str | None]:
    if not error:
        return {"error_type": None, "error_message": None, "traceback": None}
    return {
        "error_type": error.get("type"),
        "error_message": error.get("message"),
        "traceback": error.get("traceback"),
    }


def _item(index: int | None) -> int:
    return NO_ITEM if index is None else index


class RunStore(RunHistory):
    """The run history in one database (see ``RunHistory`` for what each method does).

    Made by ``open_store``; ``db`` is the connection (for maintenance and tests)."""

    def __init__(self, db: Database, project: str) -> None:
        self.db = db
        self.project = project
        self.emit_failures = 0  # events that could not be recorded (see ``emit``)
        self.last_emit_error: str | None = None
        self._failures_lock = threading.Lock()
        self._ts = db.ts
        self._read_ts = db.read_ts
        self._cancel_running_attempts = q.CANCEL_RUNNING_ATTEMPTS.format(
            seconds=db.seconds_between(":at", "started_at")
        )
        self._close_running_attempts = q.CLOSE_RUNNING_ATTEMPTS.format(
            seconds=db.seconds_between(":at", "started_at")
        )
        self._lose_attempts = q.LOSE_ATTEMPTS.format(
            seconds=db.seconds_between("heartbeat_at", "started_at")
        )
        self._handlers: dict[type[Event], Callable[[Transaction, Any], None]] = {
            RunStarted: self._run_started,
            BlockQueued: self._block_queued,
            BlockStarted: self._block_started,
            BlockRetrying: self._block_retrying,
            BlockFinished: self._block_finished,
            OutputSaved: self._output_saved,
            RunHeartbeat: self._run_heartbeat,
            RunFinished: self._run_finished,
        }

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({self.db.dialect}: {self.db.where}, project={self.project!r})"

    def close(self) -> None:
        self.db.close()

    # -- recording events ------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is None:
            return
        try:
            with self.db.transaction() as tx:
                handler(tx, event)
        except Exception as exc:
            if not isinstance(exc, self.db.driver_errors + (UserInputError,)):
                raise  # a bug in the store: let the tests see it
            message = f"{event.kind} of run {event.run_id}: {exc}"
            with self._failures_lock:
                self.emit_failures += 1
                self.last_emit_error = message
            log.warning("run history: could not record %s", message)

    def _run_started(self, tx: Transaction, e: RunStarted) -> None:
        ts = self._ts
        hashes = json.dumps(e.file_hashes)
        if (
            not e.resumed
            or tx.count(
                q.RESUME_RUN,
                {
                    "run_id": e.run_id,
                    "at": ts(e.at),
                    "host": e.host,
                    "pid": e.pid,
                    "pid_started": e.pid_started,
                    "executor": e.executor,
                    "pipeline_hash": e.pipeline_hash,
                    "file_hashes": hashes,
                },
            )
            == 0
        ):
            tx.execute(
                q.INSERT_RUN,
                {
                    "id": e.run_id,
                    "project": self.project,
                    "pipeline": e.pipeline,
                    "status": "running",
                    "execution_date": ts(_parse_time(e.execution_date)),
                    "interval_start": ts(_parse_time(e.interval_start)),
                    "interval_end": ts(_parse_time(e.interval_end)),
                    "variables": json.dumps(e.variables, default=str),
                    "trigger": e.trigger,
                    "triggered_by": e.triggered_by,
                    "executor": e.executor,
                    "host": e.host,
                    "pid": e.pid,
                    "pid_started": e.pid_started,
                    "pipeline_hash": e.pipeline_hash,
                    "file_hashes": hashes,
                    "created_at": ts(e.at),
                    "started_at": ts(e.at),
                    "finished_at": None,
                    "heartbeat_at": ts(e.at),
                    "reason": "",
                    "resumes": 1 if e.resumed else 0,
                },
            )
        tx.executemany(
            q.UPSERT_RUN_BLOCK,
            [
                {"run_id": e.run_id, "block": b, "ordinal": i, "why": e.waiting.get(b, "")}
                for i, b in enumerate(e.blocks)
            ],
        )

    def _block_queued(self, tx: Transaction, e: BlockQueued) -> None:
        if e.index is None:
            tx.execute(q.SET_WHY, {"run_id": e.run_id, "block": e.block, "why": e.why})

    def _block_started(self, tx: Transaction, e: BlockStarted) -> None:
        params = {
            "run_id": e.run_id,
            "block": e.block,
            "item": _item(e.index),
            "attempt": e.attempt,
            "at": self._ts(e.at),
        }
        tx.execute(q.INSERT_ATTEMPT, params)
        tx.execute(q.BLOCK_RUNNING if e.index is None else q.ITEM_RUNNING, params)

    def _block_retrying(self, tx: Transaction, e: BlockRetrying) -> None:
        tx.execute(
            q.CLOSE_ATTEMPT,
            {
                "run_id": e.run_id,
                "block": e.block,
                "item": _item(e.index),
                "attempt": e.attempt - 1,
                "status": "failed",
                "at": self._ts(e.at),
                "duration": e.duration,
                "cpu_time": e.cpu_time,
                "peak_memory": e.peak_memory,
                "rows": None,
                "bytes": None,
                **_error_params(e.error),
            },
        )
        if e.index is None:
            of = f" of {e.retries + 1}" if e.retries else ""
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.at + e.delay))
            why = f"retry {e.attempt}{of} at {at}"
            tx.execute(q.BLOCK_WAITING, {"run_id": e.run_id, "block": e.block, "why": why})

    def _block_finished(self, tx: Transaction, e: BlockFinished) -> None:
        status = e.status.value
        at = self._ts(e.at)
        for name in e.secrets_read:
            tx.execute(
                q.AUDIT_SECRET_READ,
                {
                    "project": self.project,
                    "actor": f"run {e.run_id}",
                    "name": name,
                    "detail": json.dumps({"run_id": e.run_id, "block": e.block}),
                    "at": at,
                },
            )
        errors = _error_params(e.error)
        if e.attempt >= 1:
            tx.execute(
                q.CLOSE_ATTEMPT,
                {
                    "run_id": e.run_id,
                    "block": e.block,
                    "item": _item(e.index),
                    "attempt": e.attempt,
                    "status": status,
                    "at": at,
                    "duration": e.duration,
                    "cpu_time": e.cpu_time,
                    "peak_memory": e.peak_memory,
                    "rows": e.rows,
                    "bytes": e.bytes,
                    **errors,
                },
            )
        if e.index is not None:
            return
        if e.status is BlockStatus.CANCELLED:
            tx.execute(
                self._cancel_running_attempts, {"run_id": e.run_id, "block": e.block, "at": at}
            )
        tx.execute(
            q.BLOCK_FINISHED,
            {
                "run_id": e.run_id,
                "block": e.block,
                "status": status,
                "why": e.reason,
                "attempt": e.attempt,
                "rows": e.rows,
                "bytes": e.bytes,
                "duration": e.duration,
                "at": at,
                **errors,
            },
        )

    def _output_saved(self, tx: Transaction, e: OutputSaved) -> None:
        if e.error:
            message = e.error.get("message") or ""
            kind = e.error.get("type") or "error"
            detail = f"{kind}: {message}" if message else kind
            reason = f"the output of {e.key!r} could not be stored: {detail}"
            tx.execute(q.RUN_REASON, {"run_id": e.run_id, "reason": reason})
            return
        item = NO_ITEM
        if e.key != e.block:
            suffix = e.key[len(e.block) + 1 :] if e.key.startswith(e.block + ".") else ""
            if not suffix.isdigit():
                return  # a key this store does not understand: nothing to attach it to
            item = int(suffix)
        params = {
            "run_id": e.run_id,
            "block": e.block,
            "item": item,
            "rows": e.rows,
            "bytes": e.bytes,
        }
        tx.execute(q.LATEST_ATTEMPT_OUTPUT, params)
        tx.execute(q.BLOCK_OUTPUT if item == NO_ITEM else q.FAN_OUTPUT, params)

    def _run_heartbeat(self, tx: Transaction, e: RunHeartbeat) -> None:
        params = {"run_id": e.run_id, "at": self._ts(e.at)}
        tx.execute(q.RUN_HEARTBEAT, params)
        tx.execute(q.ATTEMPTS_HEARTBEAT, params)

    def _run_finished(self, tx: Transaction, e: RunFinished) -> None:
        status = e.status.value
        at = self._ts(e.at)
        tx.execute(
            q.RUN_FINISHED, {"run_id": e.run_id, "status": status, "at": at, "reason": e.reason}
        )
        closed = "cancelled" if e.status is RunStatus.CANCELLED else "failed"
        ended = f"the run ended ({status}) while it was running"
        tx.execute(
            self._close_running_attempts,
            {
                "run_id": e.run_id,
                "status": closed,
                "at": at,
                "message": None if closed == "cancelled" else ended,
            },
        )
        tx.execute(
            q.CLOSE_RUNNING_BLOCKS, {"run_id": e.run_id, "status": closed, "why": ended, "at": at}
        )
        tx.execute(
            q.CLOSE_QUEUED_BLOCKS,
            {"run_id": e.run_id, "why": f"the run ended ({status}) before it started"},
        )

    # -- reading ---------------------------------------------------------------------------

    def _summary(self, row: Any) -> RunSummary:
        from treadle.store.rows import RunSummary

        t = self._read_ts
        values = dict(zip(q.RUN_COLUMN_NAMES, row, strict=False))
        return RunSummary(
            run_id=values["id"],
            project=values["project"],
            pipeline=values["pipeline"],
            status=RunStatus(values["status"]),
            execution_date=t(values["execution_date"]),
            interval_start=t(values["interval_start"]),
            interval_end=t(values["interval_end"]),
            trigger=values["trigger"],
            triggered_by=values["triggered_by"],
            executor=values["executor"],
            host=values["host"],
            pid=values["pid"],
            pid_started=values["pid_started"],
            created_at=t(values["created_at"]),
            started_at=t(values["started_at"]),
            finished_at=t(values["finished_at"]),
            heartbeat_at=t(values["heartbeat_at"]),
            reason=values["reason"],
            resumes=values["resumes"],
            cancel_requested_at=t(values["cancel_requested_at"]),
            cancel_reason=values["cancel_reason"],
        )

    def _project_filter(self, project: str | None) -> dict[str, str] | None:
        """``None`` for every project, else the parameters naming one."""
        name = self.project if project is None else project
        return None if name == ALL_PROJECTS else {"project": name}

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        project: str | None = None,
        trigger: str | None = None,
        before: tuple[float, str] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[RunSummary]:
        """See ``RunHistory.list_runs``. ``trigger`` keeps the runs started that way (api,
        schedule, cli …). ``before`` is a ``run_position``: only runs older than it are
        listed, so pages are walked by key (as fast on the last page as on the first).
        ``since`` and ``until`` (unix times) keep runs created from ``since`` and before
        ``until``."""
        if status is not None and status not in _RUN_STATUSES:
            raise UserInputError(
                f"unknown run status {status!r}",
                hint="valid statuses: " + ", ".join(s.value for s in RunStatus),
            )
        if limit < 1:
            raise UserInputError(f"limit must be at least 1, not {limit}")
        where: list[str] = []
        params: dict[str, Any] = {"limit": int(limit)}
        named = self._project_filter(project)
        if named is not None:
            where.append("project = :project")
            params.update(named)
        if pipeline is not None:
            where.append("pipeline = :pipeline")
            params["pipeline"] = pipeline
        if status is not None:
            where.append("status = :status")
            params["status"] = str(status)
        if trigger is not None:
            where.append('"trigger" = :trigger')
            params["trigger"] = trigger
        if since is not None:
            where.append("created_at >= :since")
            params["since"] = self._ts(since)
        if until is not None:
            where.append("created_at < :until")
            params["until"] = self._ts(until)
        if before is not None:
            # the range on created_at lets both databases walk the index from there
            where.append(
                "created_at <= :before_at AND (created_at < :before_at OR id < :before_id)"
            )
            params.update(before_at=self._ts(before[0]), before_id=before[1])
        text = f"SELECT {q.RUN_COLUMNS} FROM pipeline_runs"
        if where:
            text += " WHERE " + " AND ".join(where)
        text += " ORDER BY created_at DESC, id DESC LIMIT :limit"
        with self.db.transaction(write=False) as tx:
            return [self._summary(r) for r in tx.all(text, params)]

    def run_position(self, run_id: str) -> tuple[float, str] | None:
        """``(created_at, id)`` of a run (a unique prefix of its id will do): where a page
        of ``list_runs`` ends, for ``before``. ``None`` when there is no such run."""
        with self.db.transaction(write=False) as tx:
            found = self._resolve(tx, run_id)
            if found is None:
                return None
            row = tx.one(q.GET_RUN, {"run_id": found})
        created_at = self._read_ts(row[q.RUN_COLUMN_NAMES.index("created_at")])
        return (created_at or 0.0, found)

    def count_by_status(self) -> dict[tuple[str, str], int]:
        """How many runs of this project each (pipeline, status) has."""
        with self.db.transaction(write=False) as tx:
            rows = tx.all(
                "SELECT pipeline, status, COUNT(*) FROM pipeline_runs WHERE project = :project "
                "GROUP BY pipeline, status",
                {"project": self.project},
            )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def _resolve(self, tx: Transaction, run_id: str) -> str | None:
        """The full id ``run_id`` names (itself, or the one run it is a prefix of)."""
        if not run_id:
            raise UserInputError("give a run id", hint="treadle runs list shows them")
        if tx.one(q.RUN_EXISTS, {"run_id": run_id}):
            return run_id
        params: dict[str, Any] = {
            "prefix": run_id,
            "project": self.project,
            "limit": _PREFIX_MATCHES_SHOWN + 1,
        }
        if self.db.dialect == "sqlite":
            params["prefix_end"] = run_id[:-1] + chr(ord(run_id[-1]) + 1)
            rows = tx.all(q.PREFIX_SQLITE, params)
        else:
            params["length"] = len(run_id)
            rows = tx.all(q.PREFIX_POSTGRES, params)
        if not rows:
            return None
        if len(rows) == 1:
            return rows[0][0]
        shown = [r[0] for r in rows[:_PREFIX_MATCHES_SHOWN]]
        more = " …" if len(rows) > _PREFIX_MATCHES_SHOWN else ""
        raise UserInputError(
            f"run id {run_id!r} is ambiguous: it starts {', '.join(shown)}{more}",
            hint="give more of the id",
        )

    def _require(self, tx: Transaction, run_id: str) -> str:
        found = self._resolve(tx, run_id)
        if found is None:
            raise UnknownName(f"no run {run_id!r}", hint="treadle runs list shows the runs")
        return found

    def get_run(self, run_id: str) -> RunDetail | None:
        with self.db.transaction(write=False) as tx:
            found = self._resolve(tx, run_id)
            if found is None:
                return None
            row = tx.one(q.GET_RUN, {"run_id": found})
            blocks = tx.all(q.RUN_BLOCKS, {"run_id": found})
            attempts = tx.all(q.RUN_ATTEMPTS, {"run_id": found})
        from treadle.store.rows import AttemptRow, BlockRow, RunDetail, error_row

        t = self._read_ts
        read_json = self.db.read_json
        detail = row[len(q.RUN_COLUMN_NAMES) :]  # DETAIL_COLUMNS follow the run's own
        return RunDetail(
            run=self._summary(row),
            variables=read_json(detail[0]),
            pipeline_hash=detail[1],
            file_hashes=read_json(detail[2]),
            trigger_id=detail[3],
            backfill_id=detail[4],
            blocks=tuple(
                BlockRow(
                    block=b[0],
                    status=BlockStatus(b[1]),
                    why=b[2],
                    attempts=b[3],
                    items=b[4],
                    rows=b[5],
                    bytes=b[6],
                    duration=b[7],
                    started_at=t(b[8]),
                    finished_at=t(b[9]),
                    error=error_row(b[10], b[11], b[12]),
                )
                for b in blocks
            ),
            attempts=tuple(
                AttemptRow(
                    id=a[0],
                    block=a[1],
                    item=None if a[2] == NO_ITEM else a[2],
                    attempt=a[3],
                    status=BlockStatus(a[4]),
                    started_at=t(a[5]),
                    finished_at=t(a[6]),
                    heartbeat_at=t(a[7]),
                    duration=a[8],
                    cpu_time=a[9],
                    peak_memory=a[10],
                    rows=a[11],
                    bytes=a[12],
                    error=error_row(a[13], a[14], a[15]),
                )
                for a in attempts
            ),
        )

    def claim(
        self, run_id: str, *, resumes: int, host: str, pid: int, pid_started: float | None
    ) -> bool:
        params = {
            "run_id": run_id, "resumes": resumes, "at": self._ts(time.time()), "host": host,
            "pid": pid, "pid_started": pid_started,
        }  # fmt: skip
        with self.db.transaction() as tx:
            return tx.count(q.CLAIM_RUN, params) == 1

    def block_states(self, run_id: str) -> dict[str, BlockState]:
        with self.db.transaction(write=False) as tx:
            found = self._require(tx, run_id)
            rows = tx.all(q.BLOCK_STATES, {"run_id": found})
        from treadle.store.rows import BlockState

        return {r[0]: BlockState(BlockStatus(r[1]), r[2]) for r in rows}

    # -- cancelling and recovering ---------------------------------------------------------

    def _finished_error(self, tx: Transaction, run_id: str, doing: str) -> UserInputError:
        row = tx.one(q.GET_RUN, {"run_id": run_id})
        from treadle.store.rows import iso

        summary = self._summary(row)
        when = iso(summary.finished_at) or "earlier"
        return UserInputError(
            f"cannot {doing} run {run_id}: it already finished ({summary.status.value} at {when})",
            hint=f"treadle runs show {run_id} shows what happened",
        )

    def request_cancel(self, run_id: str, reason: str) -> RunSummary:
        with self.db.transaction() as tx:
            found = self._require(tx, run_id)
            params = {
                "run_id": found,
                "at": self._ts(time.time()),
                "reason": reason or "cancel requested",
            }
            if tx.count(q.REQUEST_CANCEL, params) == 0:
                raise self._finished_error(tx, found, "cancel")
            return self._summary(tx.one(q.GET_RUN, {"run_id": found}))

    def cancel_requested(self, run_id: str) -> str | None:
        with self.db.transaction(write=False) as tx:
            row = tx.one(q.CANCEL_REQUESTED, {"run_id": run_id})
        if row is None or row[0] is None:
            return None
        return row[1] or "cancel requested"

    def mark_cancelled(self, run_id: str, reason: str, *, now: float | None = None) -> RunSummary:
        at = self._ts(time.time() if now is None else now)
        reason = reason or "cancelled"
        with self.db.transaction() as tx:
            found = self._require(tx, run_id)
            params = {"run_id": found, "at": at, "reason": reason}
            if tx.count(q.MARK_CANCELLED, params) == 0:
                raise self._finished_error(tx, found, "cancel")
            tx.execute(
                self._close_running_attempts,
                {"run_id": found, "status": "cancelled", "at": at, "message": None},
            )
            tx.execute(q.CANCEL_UNFINISHED_BLOCKS, params)
            return self._summary(tx.one(q.GET_RUN, {"run_id": found}))

    def find_lost_runs(
        self,
        now: float,
        lost_after: float,
        is_alive: Callable[[str, int, float | None], bool | None],
    ) -> list[str]:
        with self.db.transaction(write=False) as tx:
            rows = tx.all(q.RUNNING_RUNS, {"project": self.project})
        lost = []
        for run_id, host, pid, pid_started, heartbeat_at, started_at, created_at in rows:
            alive = is_alive(host or "", pid or 0, pid_started)
            last = self._read_ts(heartbeat_at or started_at or created_at)
            # a process seen alive on this machine is never lost, however quiet it is;
            # elsewhere, only a heartbeat older than lost_after tells
            stale = alive is None and last is not None and now - last > lost_after
            if alive is False or stale:
                lost.append(run_id)
        return lost

    def mark_lost(
        self, run_id: str, reason: str = "worker lost", *, now: float | None = None
    ) -> bool:
        at = self._ts(time.time() if now is None else now)
        params = {"run_id": run_id, "at": at, "reason": reason}
        with self.db.transaction() as tx:
            if tx.count(q.MARK_LOST, params) == 0:
                return False
            tx.execute(self._lose_attempts, params)
            tx.execute(q.LOSE_RUNNING_BLOCKS, params)
            tx.execute(q.LOSE_QUEUED_BLOCKS, params)
        return True

    # -- retention -------------------------------------------------------------------------

    def delete_runs(
        self, finished_before: float, *, project: str | None = None, dry_run: bool = False
    ) -> list[str]:
        where = q.RETENTION_WHERE
        params: dict[str, Any] = {"before": self._ts(finished_before)}
        named = self._project_filter(project)
        if named is not None:
            where += " AND project = :project"
            params.update(named)
        select = f"SELECT id FROM pipeline_runs WHERE {where} ORDER BY finished_at, id"
        with self.db.transaction(write=not dry_run) as tx:
            ids = [r[0] for r in tx.all(select, params)]
            if not dry_run:
                for start in range(0, len(ids), _DELETE_CHUNK):
                    chunk = ids[start : start + _DELETE_CHUNK]
                    names = [f"id{i}" for i in range(len(chunk))]
                    tx.execute(
                        f"DELETE FROM pipeline_runs WHERE id IN ({', '.join(':' + n for n in names)})",
                        dict(zip(names, chunk, strict=True)),
                    )
        return ids


def _parse_time(value: str) -> float | None:
    """An event's ISO 8601 time (``""``: unknown) as unix seconds; naive means UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
