"""The scheduler: fires each trigger's slots once, and starts queued runs within limits.

It is event-driven: it sleeps until the next slot is due or something wakes it (a run
finished, an API call queued a run). Every ``WATCH_EVERY`` seconds it also looks at the
project's files (triggers.yaml edited, added or deleted) and at runs queued by other
processes. Its clock is a dependency (``Clock``): ``tick(now)`` does one round at any
time a test likes, and ``serve`` loops on the real clock.

Several schedulers may share one PostgreSQL database: the store makes each slot fire
once and each queued run start once (see ``treadle.store.scheduling``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from treadle.engine.api import merge_variables, new_run_id, parse_execution_date
from treadle.engine.sink import EventSink
from treadle.errors import ProjectInvalid, TreadleError, UnknownName, UserInputError
from treadle.processes import process_start, this_host
from treadle.project.loader import load_project
from treadle.project.model import Project
from treadle.project.triggers import TriggerSpec, TriggerType
from treadle.scheduler.clock import Clock, SystemClock
from treadle.scheduler.history import load, recover_lost_runs
from treadle.scheduler.launch import run_queued
from treadle.scheduler.notify import alert_late_runs
from treadle.scheduler.schedules import Schedule, schedule_for
from treadle.scheduler.triggering import (
    CATCHUP_BATCH,
    SyncReport,
    due_slots,
    sync_triggers,
    to_datetime,
)
from treadle.store.api import open_store
from treadle.store.scheduling import (
    Held,
    Limits,
    NewRun,
    QueuedRun,
    ScheduleStore,
    StartOutcome,
    TriggerRecord,
)

log = logging.getLogger("treadle.scheduler")

#: Seconds between looks at the project's files and at runs queued by other processes.
WATCH_EVERY = 1.0
#: Seconds a queued run stays leased to this scheduler without being renewed.
LEASE_FOR = 60.0
#: Runs at once when treadle.yaml sets no ``max_active_runs``.
DEFAULT_WORKERS = 8
#: Seconds between looks for runs whose process died.
RECOVER_EVERY = 5.0
#: Batches of queued runs one round claims, at most (each leaves out what limits hold).
CLAIM_ROUNDS = 5
#: Seconds an event trigger looks back past the last upstream run it saw: a run that
#: committed late (another host's clock, a slow transaction) is still seen.
EVENT_LOOKBACK = 300.0
#: Seconds ``close`` waits for runs in progress to stop after asking them to.
STOP_WAIT = 10.0  # seconds runs in progress get to stop when the scheduler stops


class Scheduler:
    """One project's scheduler. Use as a context manager, or call ``close``."""

    def __init__(
        self,
        project: str | Path | Project,
        *,
        clock: Clock | None = None,
        workers: int | None = None,
        executor: str | None = None,
        sinks: Iterable[EventSink] = (),
        owner: str | None = None,
        on_finished: Callable[[str], None] | None = None,
    ) -> None:
        self.project = load(project)
        self.clock = clock or SystemClock()
        settings = self.project.settings
        self.workers = workers or settings.max_active_runs or DEFAULT_WORKERS
        self.executor = executor
        self.sinks = tuple(sinks)
        self.owner = owner or f"{this_host()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.on_finished = on_finished
        self.problems: list[UserInputError] = []  # of the last look at the files
        self.runs = open_store(
            self.project.root, settings.database_url or None, project=settings.name
        )
        self.schedules = ScheduleStore(self.runs)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="treadle-run")
        self.interrupted: list[str] = []  # runs recorded as cancelled while still running
        self._active: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._files_stamp: tuple[Any, ...] | None = None
        self._specs: dict[tuple[str, str], TriggerSpec] = {}
        self._schedules: dict[tuple[int, str], Schedule] = {}
        self._events_seen: dict[int, float] = {}
        self._stopping = False
        self._late_alerted: set[str] = set()
        self._backfill_limits: dict[str, int | None] = {}
        self._recovered_at = -RECOVER_EVERY
        self._reload_lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop ----------------------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set: tick, then sleep until the next slot, a wake-up or
        the next look at the files, whichever comes first."""
        while not stop.is_set():
            self._wake.clear()
            now = self.clock.now()
            try:
                next_due = self.tick(now)
            except TreadleError as exc:  # the database went away: try again shortly
                log.warning("scheduler: %s", exc)
                next_due = None
            except Exception:  # a bug: say so, and keep the other triggers running
                log.exception("scheduler: this round failed")
                next_due = None
            pause = WATCH_EVERY
            if next_due is not None:
                pause = min(pause, (next_due - self.clock.now()).total_seconds())
            if stop.is_set():
                break
            self.clock.wait(self._wake, pause)
            if stop.is_set():
                break

    def wake(self) -> None:
        self._wake.set()

    def wait_for_wake(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less if a run finishes or a run is queued here."""
        self.clock.wait(self._wake, seconds)
        self._wake.clear()

    def tick(self, now: datetime, *, start_runs: bool = True) -> datetime | None:
        """One round: reread changed files, fire the due slots and the event triggers,
        start what may start. Returns when the next slot is due (None: none scheduled)."""
        self.reload(now)
        self._recover_lost_runs()
        next_due = self._fire_schedules(now)
        self._fire_events(now)
        if start_runs:
            self.start_queued()
        alert_late_runs(self.project, self.runs, now.timestamp(), self._late_alerted)
        return next_due

    def _recover_lost_runs(self) -> None:
        """Runs whose process died are marked failed (and alerted), so the limits they
        held are freed; at most every ``RECOVER_EVERY`` seconds."""
        if time.monotonic() - self._recovered_at < RECOVER_EVERY:
            return
        self._recovered_at = time.monotonic()
        recover_lost_runs(self.project, self.runs)

    # -- the project's files -----------------------------------------------------------------

    def reload(self, now: datetime, *, force: bool = False) -> SyncReport | None:
        """Reread the project and sync its triggers when a file changed (or ``force``).
        An invalid project or triggers.yaml leaves the running triggers as they were."""
        with self._reload_lock:
            return self._reload(now, force)

    def _reload(self, now: datetime, force: bool) -> SyncReport | None:
        stamp = self._stamp()
        if stamp == self._files_stamp and not force:
            return None
        try:
            project = load_project(self.project.root)
        except ProjectInvalid as exc:
            self._files_stamp = stamp
            self.problems = list(exc.problems)
            self._log_problems("the project is invalid; triggers stay as they were")
            return None
        self.project = project
        report = sync_triggers(project, self.schedules, now.timestamp())
        kept = {k: v for k, v in self._specs.items() if k[0] in report.invalid}
        self._specs = {**kept, **report.specs}
        self._files_stamp = stamp  # only now: a failed sync is tried again
        self.problems = report.problems
        if report.changes:
            log.info("triggers: %s", ", ".join(report.changes))
        self._log_problems("triggers.yaml is invalid; its triggers stay as they were")
        return report

    def _log_problems(self, what: str) -> None:
        for problem in self.problems:
            log.warning("%s: %s", what, problem)

    def _stamp(self) -> tuple[Any, ...]:
        """Modification times of the files that say what to schedule (a few stat calls)."""
        root = self.project.root
        files = [root / "treadle.yaml"]
        pipelines = root / "pipelines"
        if pipelines.is_dir():
            for folder in sorted(pipelines.iterdir()):
                files += [folder / "pipeline.yaml", folder / "triggers.yaml"]
        return tuple(_mtime(f) for f in files) + (len(files),)

    # -- firing --------------------------------------------------------------------------------

    def _fire_schedules(self, now: datetime) -> datetime | None:
        next_due: datetime | None = None
        for record in self.schedules.triggers(now=now.timestamp()):
            spec = self._specs.get((record.pipeline, record.name))
            if spec is None or not spec.enabled or spec.type is not TriggerType.SCHEDULE:
                continue
            schedule = self._schedule(spec, record)
            slots = due_slots(
                schedule,
                now=now,
                last_slot=None if record.last_slot is None else to_datetime(record.last_slot),
                first_seen=to_datetime(record.created_at),
                start=spec.start,
                catchup=spec.catchup,
            )
            for slot in slots:
                self._fire(spec, record, schedule, slot, now)
            upcoming = now if len(slots) == CATCHUP_BATCH else schedule.next_after(now)
            if upcoming is not None and (next_due is None or upcoming < next_due):
                next_due = upcoming
        return next_due

    def _schedule(self, spec: TriggerSpec, record: TriggerRecord) -> Schedule:
        key = (record.id, record.fingerprint)
        if key not in self._schedules:
            self._schedules[key] = schedule_for(spec, to_datetime(record.created_at))
        return self._schedules[key]

    def _fire(
        self,
        spec: TriggerSpec,
        record: TriggerRecord,
        schedule: Schedule,
        slot: datetime,
        now: datetime,
    ) -> None:
        if spec.skip_if_running and self.schedules.has_active_run(record.id):
            if self.schedules.fire(record.id, slot.timestamp(), None, now.timestamp()):
                log.info("%s.%s: slot %s skipped: a run is active", spec.pipeline, spec.name, slot)
            return
        end = schedule.next_after(slot) or slot
        run = NewRun(
            run_id=new_run_id(),
            pipeline=spec.pipeline,
            execution_date=slot.timestamp(),
            interval_start=slot.timestamp(),
            interval_end=end.timestamp(),
            variables=dict(spec.variables),
            trigger="schedule",
            triggered_by=spec.name,
            trigger_id=record.id,
        )
        if self.schedules.fire(record.id, slot.timestamp(), run, now.timestamp()):
            log.info("%s.%s: slot %s → run %s", spec.pipeline, spec.name, slot, run.run_id)

    def _fire_events(self, now: datetime) -> None:
        """Event triggers (``after: pipeline``): one run per successful upstream run,
        keyed by its execution date, so each fires once."""
        for record in self.schedules.triggers():
            spec = self._specs.get((record.pipeline, record.name))
            if spec is None or not spec.enabled or spec.type is not TriggerType.EVENT:
                continue
            seen = self._events_seen.get(record.id, record.created_at + EVENT_LOOKBACK)
            since = max(record.created_at, seen - EVENT_LOOKBACK)
            for _, finished_at, dates in self.schedules.succeeded_runs_after(spec.after, since):
                execution_date = dates[0] or finished_at
                run = NewRun(
                    run_id=new_run_id(),
                    pipeline=spec.pipeline,
                    execution_date=execution_date,
                    interval_start=dates[1] or execution_date,
                    interval_end=dates[2] or execution_date,
                    variables=dict(spec.variables),
                    trigger="event",
                    triggered_by=spec.name,
                    trigger_id=record.id,
                )
                self.schedules.fire(record.id, execution_date, run, now.timestamp())
                self._events_seen[record.id] = max(finished_at, seen)

    def describe_triggers(self, now: datetime) -> list[dict[str, Any]]:
        """Every trigger in the store, with its last and next slot in its own time zone
        (``triggers list``)."""
        rows = []
        for record in self.schedules.triggers():
            spec = self._specs.get((record.pipeline, record.name))
            zone = ZoneInfo(spec.timezone) if spec is not None else UTC
            next_slot = None
            if spec is not None and spec.type is TriggerType.SCHEDULE and spec.enabled:
                next_slot = self._schedule(spec, record).next_after(now)
            last_slot = None if record.last_slot is None else to_datetime(record.last_slot)
            rows.append(
                {
                    "pipeline": record.pipeline,
                    "name": record.name,
                    "type": record.type,
                    "schedule": _describe_schedule(spec),
                    "enabled": record.enabled,
                    "has_token": record.has_token,
                    "last_slot": _in_zone(last_slot, zone),
                    "next_slot": _in_zone(next_slot, zone),
                }
            )
        return rows

    # -- API triggers ----------------------------------------------------------------------

    def api_trigger(self, pipeline: str, name: str, *, enabled_only: bool = True) -> TriggerRecord:
        """The (enabled) API trigger ``pipeline``/``name``, or ``UnknownName``."""
        self.reload(self.clock.now())
        record = self.schedules.trigger(pipeline, name)
        spec = self._specs.get((pipeline, name))
        if record is None or spec is None or spec.type is not TriggerType.API:
            raise UnknownName(
                f"pipeline {pipeline!r} has no API trigger {name!r}",
                hint=f"declare it in pipelines/{pipeline}/triggers.yaml with `type: api`",
            )
        if enabled_only and not spec.enabled:
            raise UserInputError(
                f"trigger {pipeline}.{name} is disabled",
                hint="set `enabled: true` in its triggers.yaml",
            )
        return record

    def queue_api_run(
        self,
        record: TriggerRecord,
        variables: Mapping[str, Any] | None = None,
        execution_date: datetime | str | None = None,
    ) -> str:
        """Queue a run of an API trigger (checked by ``api_trigger``) and wake up."""
        spec = self._specs.get((record.pipeline, record.name))
        if spec is None:  # removed from its file a moment ago
            raise UnknownName(f"pipeline {record.pipeline!r} has no API trigger {record.name!r}")
        merged = {**spec.variables, **(variables or {})}
        merge_variables(self.project.pipeline(record.pipeline), merged)  # typos refused here
        when = parse_execution_date(execution_date).timestamp()
        run = NewRun(
            run_id=new_run_id(),
            pipeline=record.pipeline,
            execution_date=when,
            interval_start=when,
            interval_end=when,
            variables=merged,
            trigger="api",
            triggered_by=record.name,
            trigger_id=record.id,
        )
        self.schedules.queue_run(run, time.time())
        self.wake()
        return run.run_id

    # -- starting runs ----------------------------------------------------------------------

    def start_queued(self, backfill_id: str | None = None) -> int:
        """Start the queued runs that may start now; return how many started.

        Runs are claimed a batch at a time, oldest first. A run a limit holds is given
        back, saying why, and the next batch leaves out what that limit holds, so a
        backlog of one pipeline does not keep another pipeline's runs waiting."""
        held = Held()
        started = 0
        for _ in range(CLAIM_ROUNDS):
            free = self._free_workers()
            if free <= 0 or self._stopping:
                break
            batch = self.schedules.claim_queued(
                self.owner, LEASE_FOR, limit=free, backfill_id=backfill_id, skip=held
            )
            if not batch:
                break
            for queued in batch:
                outcome = self._try_start(queued)
                if outcome.started:
                    started += 1
                elif outcome.why:
                    self.schedules.hold(queued, self.owner, outcome.why, outcome.held_by)
                    if outcome.held_by == "project":
                        return started  # nothing else may start now
                    held.add(queued, outcome.held_by)
        return started

    def _free_workers(self) -> int:
        with self._lock:
            return self.workers - len(self._active)

    def _try_start(self, queued: QueuedRun) -> StartOutcome:
        spec = self._trigger_spec(queued)
        if spec is not None and not spec.enabled:  # paused, as in Airflow: runs wait
            why = f"waiting: its trigger {spec.name} is disabled"
            return StartOutcome(why=why, held_by="trigger")
        me = os.getpid()
        outcome = self.schedules.start_queued(
            queued.run_id,
            self.owner,
            self._limits(queued),
            host=this_host(),
            pid=me,
            pid_started=process_start(me),
        )
        if outcome.started:
            self._submit(queued)
        return outcome

    def _trigger_spec(self, queued: QueuedRun) -> TriggerSpec | None:
        if queued.trigger_id is None or not queued.triggered_by:
            return None
        return self._specs.get((queued.pipeline, queued.triggered_by))

    def _limits(self, queued: QueuedRun) -> Limits:
        spec = self._trigger_spec(queued)
        pipeline = self.project.pipelines.get(queued.pipeline)
        return Limits(
            project=self.project.settings.max_active_runs,
            pipeline=pipeline.max_active_runs if pipeline is not None else None,
            trigger=spec.max_active_runs if spec is not None else None,
            backfill=self._backfill_concurrency(queued.backfill_id),
        )

    def _backfill_concurrency(self, backfill_id: str | None) -> int | None:
        if backfill_id is None:
            return None
        if backfill_id not in self._backfill_limits:
            found = self.schedules.backfills(backfill_id)
            self._backfill_limits[backfill_id] = found[0].concurrency if found else None
        return self._backfill_limits[backfill_id]

    def _submit(self, queued: QueuedRun) -> None:
        with self._lock:
            self._active[queued.run_id] = self._pool.submit(self._run, queued)

    def _run(self, queued: QueuedRun) -> None:
        try:
            run_queued(self.project, queued, executor=self.executor, sinks=self.sinks)
        except Exception as exc:  # never leave it "running" under a live scheduler
            log.exception("run %s failed to run", queued.run_id)
            with contextlib.suppress(Exception):
                self.runs.mark_lost(queued.run_id, reason=f"could not run: {exc}")
        finally:
            with self._lock:
                self._active.pop(queued.run_id, None)
            self.wake()
            if self.on_finished is not None:
                self.on_finished(queued.run_id)

    @property
    def active_runs(self) -> list[str]:
        with self._lock:
            return list(self._active)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no run started here is in progress (tests, backfills)."""
        deadline = time.monotonic() + timeout
        while self.active_runs:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # -- stopping ----------------------------------------------------------------------------

    def close(self, reason: str = "the scheduler stopped") -> None:
        """Stop starting runs, ask those in progress to stop, give back the leases, close
        the store. A run whose block does not return within ``STOP_WAIT`` (Python code in
        a thread cannot be interrupted) is recorded as cancelled all the same, never left
        running; ``interrupted`` then says that its thread is still busy, and the process
        should exit without waiting for it."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        for run_id in self.active_runs:
            with contextlib.suppress(UserInputError):  # it finished meanwhile
                self.runs.request_cancel(run_id, reason)
        if not self.wait_idle(STOP_WAIT):
            self._interrupt_active_runs(reason)
        self._pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.schedules.release(self.owner)
        finally:
            self.runs.close()

    def _interrupt_active_runs(self, reason: str) -> None:
        for run_id in self.active_runs:
            with contextlib.suppress(UserInputError):  # it finished meanwhile
                self.runs.mark_cancelled(
                    run_id, f"{reason}: interrupted while a block was still running"
                )
                self.interrupted.append(run_id)
                log.warning("run %s interrupted: %s", run_id, reason)


def _in_zone(moment: datetime | None, zone: tzinfo) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat()


def _describe_schedule(spec: TriggerSpec | None) -> str:
    if spec is None:
        return ""
    if spec.schedule:
        return spec.schedule
    if spec.every:
        return f"every {spec.to_dict()['every']}"
    return f"after {spec.after}" if spec.after else ""


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1
