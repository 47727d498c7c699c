"""Backfills: one run per slot of a date range, each created once, run a few at a time.

A backfill's id comes from what it is (pipeline, range, interval, variables), and each of
its runs' ids from the backfill and the slot: issuing the same backfill again finds it,
queues nothing new, and carries on with what is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from treadle.engine.api import merge_variables, parse_execution_date
from treadle.errors import UserInputError
from treadle.project.durations import parse_duration
from treadle.project.model import Project
from treadle.project.triggers import TriggerSpec
from treadle.scheduler.schedules import schedule_for
from treadle.store.scheduling import BackfillRecord, NewRun, ScheduleStore

if TYPE_CHECKING:
    from treadle.scheduler.service import Scheduler

MAX_RUNS = 100_000  # a typo like --every 1s over a year is refused, not queued
FINISHED = ("succeeded", "failed", "cancelled")
RETRIED = ("failed", "cancelled")  # what --retry-failed runs again


@dataclass(frozen=True)
class BackfillPlan:
    id: str
    pipeline: str
    start: datetime
    end: datetime
    every: str
    variables: Mapping[str, Any]
    slots: tuple[datetime, ...]

    @property
    def total(self) -> int:
        return len(self.slots)


def plan_backfill(
    project: Project,
    pipeline: str,
    start: datetime | str,
    end: datetime | str,
    every: str = "1d",
    variables: Mapping[str, Any] | None = None,
) -> BackfillPlan:
    """The runs a backfill makes: a slot every ``every`` from ``start`` to ``end``, both
    included (as in Mage: 2024-01-01 to 2024-01-08 daily is 8 runs)."""
    spec = project.pipeline(pipeline)
    variables = merge_variables(spec, variables or {})
    first, last = parse_execution_date(start), parse_execution_date(end)
    try:
        step = parse_duration(every)
    except ValueError as exc:
        raise UserInputError(f"--every: {exc}", hint="write e.g. 1d, 6h or 15m") from None
    if step < 1:
        raise UserInputError(
            f"--every {every} is shorter than a second", hint="write e.g. 1d, 1h or 1s"
        )
    if last < first:
        raise UserInputError(
            f"the backfill ends ({last:%Y-%m-%d %H:%M}) before it starts ({first:%Y-%m-%d %H:%M})",
            hint="swap the start and the end",
        )
    count = int((last - first).total_seconds() // step) + 1
    if count > MAX_RUNS:
        raise UserInputError(
            f"the backfill would make {count:,} runs (at most {MAX_RUNS:,})",
            hint="use a longer --every or a shorter range",
        )
    slots = tuple(first + timedelta(seconds=step * i) for i in range(count))
    return BackfillPlan(
        id=backfill_id(project.settings.name, spec.name, first, last, step, variables),
        pipeline=spec.name,
        start=first,
        end=last,
        every=every,
        variables=variables,
        slots=slots,
    )


def plan_trigger_backfill(
    project: Project,
    trigger: TriggerSpec,
    start: datetime | str,
    end: datetime | str,
    variables: Mapping[str, Any] | None = None,
) -> BackfillPlan:
    """The runs a backfill makes on a schedule trigger's own slots from ``start`` to
    ``end`` (both included), with the trigger's variables under ``variables``. Its
    ``every`` is the trigger's schedule as written (a cron, a preset or a duration)."""
    spec = project.pipeline(trigger.pipeline)
    merged = merge_variables(spec, {**trigger.variables, **(variables or {})})
    first, last = parse_execution_date(start), parse_execution_date(end)
    if last < first:
        raise UserInputError(
            f"the backfill ends ({last:%Y-%m-%d %H:%M}) before it starts ({first:%Y-%m-%d %H:%M})",
            hint="swap start and end",
        )
    try:
        schedule = schedule_for(trigger, first)
    except ValueError:
        raise UserInputError(
            f"trigger {trigger.name!r} is an {trigger.type.value} trigger: it has no slots",
            hint="backfill on a schedule trigger, or give an interval (every) instead",
        ) from None
    slots: list[datetime] = []
    slot = schedule.next_after(first - timedelta(microseconds=1))
    while slot is not None and slot <= last:
        if len(slots) == MAX_RUNS:
            raise UserInputError(
                f"the backfill would make over {MAX_RUNS:,} runs", hint="use a shorter range"
            )
        slots.append(slot)
        slot = schedule.next_after(slot)
    if not slots:
        raise UserInputError(
            f"no slot of trigger {trigger.name!r} falls between {first:%Y-%m-%d %H:%M} and "
            f"{last:%Y-%m-%d %H:%M}",
            hint="widen the range",
        )
    written = trigger.to_dict()
    every = str(written.get("schedule") or written.get("every"))
    identity = {"__trigger__": trigger.name, "__schedule__": every, **merged}
    return BackfillPlan(
        id=backfill_id(project.settings.name, spec.name, first, last, 0.0, identity),
        pipeline=spec.name,
        start=first,
        end=last,
        every=every,
        variables=merged,
        slots=tuple(slots),
    )


def backfill_id(
    project: str,
    pipeline: str,
    start: datetime,
    end: datetime,
    every: float,
    variables: Mapping[str, Any],
) -> str:
    """The same backfill (``1d`` or ``24h`` alike) of the same project has the same id."""
    identity = json.dumps(
        [project, pipeline, start.timestamp(), end.timestamp(), every, dict(variables)],
        sort_keys=True,
        default=str,
    )
    return "bf-" + hashlib.sha256(identity.encode()).hexdigest()[:12]


def queue_backfill(
    store: ScheduleStore, plan: BackfillPlan, concurrency: int | None
) -> tuple[bool, int]:
    """Record the backfill and queue its runs; (whether it is new, runs queued now)."""
    step = plan.slots[1] - plan.slots[0] if plan.total > 1 else timedelta(0)
    runs = [
        NewRun(
            run_id=f"{plan.id}-{slot.astimezone(UTC):%Y%m%dT%H%M%S}",
            pipeline=plan.pipeline,
            execution_date=slot.timestamp(),
            interval_start=slot.timestamp(),
            interval_end=(slot + step).timestamp(),
            variables=plan.variables,
            trigger="backfill",
            triggered_by=plan.id,
            backfill_id=plan.id,
            reason="queued: waiting for its backfill to start it",
        )
        for slot in plan.slots
    ]
    record = BackfillRecord(
        id=plan.id,
        pipeline=plan.pipeline,
        status="running",
        created_at=time.time(),
        start=plan.start.timestamp(),
        end=plan.end.timestamp(),
        every=plan.every,
        variables=plan.variables,
        concurrency=concurrency,
        total=plan.total,
        reason="",
    )
    return store.create_backfill(record, runs, time.time())


def find_backfill(store: ScheduleStore, backfill_id: str) -> BackfillRecord:
    found = store.backfills(backfill_id)
    if not found:
        raise UserInputError(
            f"no backfill {backfill_id!r}", hint="`treadle backfill list` shows the backfills"
        )
    if len(found) > 1:
        raise UserInputError(
            f"{backfill_id!r} matches {len(found)} backfills",
            hint="give more of the id: " + ", ".join(b.id for b in found[:5]),
        )
    return found[0]


def cancel_backfill(store: ScheduleStore, backfill_id: str, reason: str) -> BackfillRecord:
    """Cancel the backfill: its queued runs at once, its running runs at their next check."""
    record = find_backfill(store, backfill_id)
    store.set_backfill_status(record.id, "cancelled", reason)
    store.cancel_queued(record.id, reason)
    for run_id, status, _ in store.backfill_runs(record.id):
        if status == "running":
            with contextlib.suppress(UserInputError):  # it finished meanwhile
                store.runs.request_cancel(run_id, reason)
    return find_backfill(store, record.id)


def final_status(counts: Mapping[str, int], cancelled: bool) -> str:
    if cancelled:
        return "cancelled"
    if counts.get("failed") or counts.get("cancelled"):
        return "failed"
    return "succeeded"


def is_done(counts: Mapping[str, int], total: int) -> bool:
    return sum(counts.get(s, 0) for s in FINISHED) >= total


ProgressCallback = Callable[[Mapping[str, int]], None]


def run_backfill(
    scheduler: Scheduler,
    backfill_id: str,
    on_progress: ProgressCallback | None = None,
    poll: float = 0.1,
) -> BackfillRecord:
    """Start the backfill's queued runs through ``scheduler`` (its workers are the
    backfill's concurrency) until all have finished or the backfill is cancelled, from
    here (Ctrl-C) or from elsewhere (``treadle backfill cancel``)."""
    store = scheduler.schedules
    record = find_backfill(store, backfill_id)
    looked_at = time.monotonic()
    try:
        while record.status != "cancelled" and not is_done(record.runs, record.total):
            started = scheduler.start_queued(backfill_id=record.id)
            if on_progress is not None:
                on_progress(record.runs)
            scheduler.wait_for_wake(poll)
            # between runs, start the next one at once; read the progress (and a cancel
            # from elsewhere) when nothing started, or every ``poll`` seconds
            if not started or time.monotonic() - looked_at >= poll:
                record = find_backfill(store, backfill_id)
                looked_at = time.monotonic()
    except KeyboardInterrupt:
        cancel_backfill(store, backfill_id, "cancelled with Ctrl-C")
        scheduler.wait_idle()
        raise
    scheduler.wait_idle()
    record = find_backfill(store, backfill_id)
    if record.status != "cancelled":
        store.set_backfill_status(record.id, final_status(record.runs, cancelled=False))
    record = find_backfill(store, backfill_id)
    if on_progress is not None:
        on_progress(record.runs)
    return record


def retry_failed(
    scheduler: Scheduler,
    backfill_id: str,
    on_progress: ProgressCallback | None = None,
) -> BackfillRecord:
    """Run again the failed and cancelled runs of the backfill (resumed: the blocks that
    succeeded in them keep their outputs), as many at once as the scheduler has workers,
    then carry on with any run still queued."""
    from concurrent.futures import ThreadPoolExecutor

    from treadle.scheduler.launch import resume_run

    store = scheduler.schedules
    record = find_backfill(store, backfill_id)
    again = [run for run, status, _ in store.backfill_runs(record.id) if status in RETRIED]
    store.set_backfill_status(record.id, "running", "")
    with ThreadPoolExecutor(scheduler.workers) as pool:
        for _ in pool.map(lambda run_id: resume_run(scheduler.project, run_id), again):
            if on_progress is not None:
                on_progress(find_backfill(store, record.id).runs)
    return run_backfill(scheduler, record.id, on_progress)
