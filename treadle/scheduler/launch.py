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
from treadle.errors import UserInputError
from treadle.project.model import Project
from treadle.scheduler.history import history, load, recover_lost_runs
from treadle.store import pid_alive

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


def resume_run(
    project: str | Path | Project,
    run_id: str,
    *,
    from_block: str | None = None,
    executor: str | None = None,
    sinks: Iterable[EventSink] = (),
) -> RunResult:
    """Run again, under the same run id, the blocks of ``run_id`` that did not succeed
    (or ``from_block`` and everything downstream of it), reusing the stored outputs of
    the others. Attempts are numbered on from the earlier ones."""
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
        variables=detail.variables or {},
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
    return _execute_recorded(project, prepared, executor, sinks)


def cancel_run(project: str | Path | Project, run_id: str, reason: str = "") -> str:
    """Ask run ``run_id`` to stop and wait until it has; returns the run id.

    The request is recorded (a run on another machine sees it at its next poll); a run
    on this machine also gets SIGINT, so a block in the middle of long work stops too.
    A run whose process is gone is marked cancelled at once.
    """
    project = load(project)
    reason = reason or "cancelled with `treadle cancel`"
    with history(project) as store:
        summary = store.request_cancel(run_id, reason)
        alive = pid_alive(summary.host, summary.pid)
        if alive is False:
            store.mark_cancelled(summary.run_id, reason)
            return summary.run_id
        if alive:
            os.kill(summary.pid, signal.SIGINT)
        deadline = time.monotonic() + CANCEL_WAIT
        while time.monotonic() < deadline:
            detail = store.get_run(summary.run_id)
            if detail is None or detail.run.status != "running":
                return summary.run_id
            time.sleep(0.1)
        if alive:  # it did not stop in time: stop it for good
            os.kill(summary.pid, signal.SIGKILL)
            store.mark_cancelled(summary.run_id, reason + " (killed: it did not stop in time)")
        return summary.run_id


def _execute_recorded(
    project: Project, prepared: PreparedRun, executor: str | None, sinks: Iterable[EventSink]
) -> RunResult:
    with history(project) as store:
        recover_lost_runs(project, store)
        result = execute(
            prepared,
            executor=executor,
            sinks=[store, *sinks],
            cancel_source=store,
            heartbeat_every=project.settings.heartbeat_every,
        )
        from treadle.scheduler.retention import clean_if_due

        clean_if_due(project, store)
    return result


def _datetime(unix_seconds: float | None) -> datetime:
    return datetime.fromtimestamp(unix_seconds or 0.0, UTC)
