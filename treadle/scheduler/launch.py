"""Start, resume, retry and cancel runs, with the run history recorded.

This is where the engine (which runs a run) meets the store (which records it): every
run started here is recorded, heartbeats while it runs, can be cancelled from another
process, and is noticed if its process dies (``recover_lost_runs``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from treadle.engine.api import (
    PastRun,
    PreparedRun,
    RunResult,
    execute,
    prepare_resume,
    prepare_run,
)
from treadle.engine.sink import EventSink
from treadle.errors import TreadleError, UserInputError
from treadle.processes import pid_alive, process_start, this_host
from treadle.project.model import Project
from treadle.scheduler.history import history, load, recover_lost_runs
from treadle.store import RunStore
from treadle.store.scheduling import QueuedRun

CANCEL_WAIT = 10.0  # seconds `treadle cancel` waits for a run's process to stop


def run_pipeline(
    project: str | Path | Project,
    pipeline: str,
    *,
    variables: Mapping[str, Any] | None = None,
    execution_date: datetime | str | None = None,
    block: str | None = None,
    downstream: bool = False,
    executor: str | None = None,
    sinks: Iterable[EventSink] = (),
    trigger: str | None = "api",
    triggered_by: str | None = None,
) -> RunResult:
    """Run ``pipeline`` and record it in the run history; return its result.

    Like ``treadle.engine.api.run_pipeline`` (see it for the arguments) plus the history:
    runs lost by a dead process are noticed first, and old runs are cleaned up after
    (at most once a day) as ``retention:`` says.
    """
    project = load(project)
    prepared = prepare_run(
        project,
        pipeline,
        variables=variables,
        execution_date=execution_date,
        block=block,
        downstream=downstream,
        trigger=trigger,
        triggered_by=triggered_by,
    )
    return _execute_recorded(project, prepared, executor, sinks)


def run_queued(
    project: Project,
    queued: QueuedRun,
    *,
    executor: str | None = None,
    sinks: Iterable[EventSink] = (),
) -> RunResult | None:
    """Run ``queued`` (a run the scheduler queued and has just marked running) under its
    own id, with its slot's dates. A run that cannot start (its pipeline is gone or no
    longer valid) is marked failed with the reason, and None is returned."""
    execution_date = _datetime(queued.execution_date or queued.created_at)
    try:
        prepared = prepare_run(
            project,
            queued.pipeline,
            variables=queued.variables,
            execution_date=execution_date,
            trigger=queued.trigger,
            triggered_by=queued.triggered_by,
            run_id=queued.run_id,
            interval=(
                _datetime(queued.interval_start or queued.execution_date or queued.created_at),
                _datetime(queued.interval_end or queued.execution_date or queued.created_at),
            ),
        )
    except TreadleError as exc:
        with history(project) as store:
            store.mark_lost(queued.run_id, reason=f"could not start: {exc}")
        return None
    return _execute_recorded(project, prepared, executor, sinks)


def resume_run(
    project: str | Path | Project,
    run_id: str,
    *,
    from_block: str | None = None,
    variables: Mapping[str, Any] | None = None,
    executor: str | None = None,
    sinks: Iterable[EventSink] = (),
) -> RunResult:
    """Run again, under the same run id, the blocks of ``run_id`` that did not succeed
    (or ``from_block`` and everything downstream of it), reusing the stored outputs of
    the others. Attempts are numbered on from the earlier ones. ``variables`` override
    the recorded ones (secret ones are recorded masked, so they must be given again)."""
    project = load(project)
    with history(project) as store:
        recover_lost_runs(project, store)
        detail = store.get_run(run_id)
        if detail is None:
            raise UserInputError(f"no run {run_id!r}", hint="`treadle runs list` shows the runs")
        run = detail.run
        if run.status == "running":
            raise UserInputError(
                f"run {run.run_id} is still running",
                hint=f"wait for it, or stop it with `treadle cancel {run.run_id}`",
            )
        states = store.block_states(run.run_id)
    past = PastRun(
        run_id=run.run_id,
        pipeline=run.pipeline,
        execution_date=_datetime(run.execution_date),
        interval_start=_datetime(run.interval_start or run.execution_date),
        interval_end=_datetime(run.interval_end or run.execution_date),
        variables={**(detail.variables or {}), **(variables or {})},
        trigger=run.trigger,
        triggered_by=run.triggered_by,
    )
    prepared = prepare_resume(
        project,
        past,
        succeeded=[name for name, state in states.items() if state.status == "succeeded"],
        attempts={name: state.attempts for name, state in states.items()},
        from_block=from_block,
    )
    return _execute_recorded(project, prepared, executor, sinks, claim=run.resumes)


def cancel_run(project: str | Path | Project, run_id: str, reason: str = "") -> CancelOutcome:
    """Ask run ``run_id`` to stop, and wait (up to ``CANCEL_WAIT``) until it has.

    The request is recorded, so the run stops at its next check (its running block first
    finishes if it runs inline). A run of ``treadle run`` on this machine also gets
    SIGTERM, which stops even a block in the middle of long work, and SIGKILL if it has
    not stopped in time; a run inside a scheduler, a backfill or any other process that
    does more than this run is never signalled. A queued run, or one whose process is
    gone, is marked cancelled at once.
    """
    project = load(project)
    reason = reason or "cancelled with `treadle cancel`"
    with history(project) as store:
        recover_lost_runs(project, store)
        summary = store.request_cancel(run_id, reason)
        alive = pid_alive(summary.host, summary.pid, summary.pid_started)
        if summary.status.value == "queued" or alive is False:  # nothing runs it (yet)
            store.mark_cancelled(summary.run_id, reason)
            return CancelOutcome(summary.run_id, "cancelled")
        # only a `treadle run` process is the run's own: a scheduler, a backfill or a
        # notebook runs other things too, and stops this run at its next check instead
        own_process = alive and summary.trigger == "cli"
        if own_process:
            _signal(summary.pid, signal.SIGTERM)
        status = _wait_until_finished(store, summary.run_id)
        if status is None and own_process:  # it did not stop in time: stop it for good
            _signal(summary.pid, signal.SIGKILL)
            store.mark_cancelled(summary.run_id, reason + " (killed: it did not stop in time)")
            status = "cancelled"
        return CancelOutcome(summary.run_id, status, summary.host)


@dataclass(frozen=True)
class CancelOutcome:
    run_id: str
    status: str | None  # how the run ended; None while it still runs (on another machine)
    host: str = ""


def _wait_until_finished(store: RunStore, run_id: str) -> str | None:
    deadline = time.monotonic() + CANCEL_WAIT
    while time.monotonic() < deadline:
        detail = store.get_run(run_id)
        if detail is None:
            return "cancelled"
        if detail.run.status != "running":
            return detail.run.status.value
        time.sleep(0.1)
    return None


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass  # it ended meanwhile
    except PermissionError:
        raise UserInputError(
            f"the run's process {pid} belongs to another user",
            hint="cancel it as that user; the request is recorded and it stops at its next check",
        ) from None


def _execute_recorded(
    project: Project,
    prepared: PreparedRun,
    executor: str | None,
    sinks: Iterable[EventSink],
    *,
    claim: int | None = None,
) -> RunResult:
    """Run ``prepared`` with its history. For a resume, ``claim`` (the run's resume count
    as read) first takes the stopped run: of two processes resuming it at once, one runs
    it and the other refuses."""
    with history(project) as store:
        recover_lost_runs(project, store)
        run_id, me = prepared.run.run_id, os.getpid()
        if claim is not None and not store.claim(
            run_id, resumes=claim, host=this_host(), pid=me, pid_started=process_start(me)
        ):
            raise UserInputError(
                f"run {run_id} was just started by another process",
                hint=f"watch it with `treadle logs {run_id} --follow`",
            )
        result = execute(
            prepared,
            executor=executor,
            sinks=[store, *sinks],
            cancel_source=store,
            heartbeat_every=project.settings.heartbeat_every,
        )
        from treadle.scheduler.notify import alert_finished

        result.warnings += alert_finished(project, store, result, prepared.run.execution_date)
        if store.emit_failures:
            result.warnings.append(
                f"the run history missed {store.emit_failures} updates of this run "
                f"(last: {store.last_emit_error}); `treadle runs show` may be out of date"
            )
        from treadle.scheduler.retention import clean_if_due

        clean_if_due(project, store)
    return result


def _datetime(unix_seconds: float | None) -> datetime:
    return datetime.fromtimestamp(unix_seconds or 0.0, UTC)
