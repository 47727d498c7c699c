"""When to alert: a run finished (failure, success), was lost (stuck), or is late
(sla_missed). What to send and how is ``alerts``; the ledger that sends each once is the
store's ``alerts_sent`` table."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from treadle.engine.api import RunResult
from treadle.events import BlockStatus, RunStatus
from treadle.project.model import AlertEvent, Pipeline, Project
from treadle.scheduler.alerts import AlertContext, run_link, send_alerts
from treadle.store import RunStore
from treadle.store.rows import RunSummary
from treadle.store.scheduling import ScheduleStore

log = logging.getLogger("treadle.alerts")

#: Most queued or running runs of one pipeline looked at for a missed SLA, per round.
LATE_SCAN = 10_000


def alert_finished(
    project: Project, store: RunStore, result: RunResult, execution_date: datetime
) -> list[str]:
    """Alert the end of a run (failure or success; a cancelled run is no news), and an
    SLA missed when it finished late. Returns the channels' problems (never raises)."""
    pipeline = project.pipelines.get(result.pipeline)
    if pipeline is None or not pipeline.alerts or result.status is RunStatus.CANCELLED:
        return []
    event = AlertEvent.SUCCESS if result.ok else AlertEvent.FAILURE
    failing = next(
        (b for b in result.blocks.values() if b.status is BlockStatus.FAILED and b.error), None
    )
    ctx = _context(
        project, pipeline, result.run_id, event, result.status.value,
        execution_date=execution_date.isoformat(),
        duration=result.duration,
        failing_block=failing.name if failing else None,
        error=failing.error.message if failing and failing.error else result.problem or None,
    )  # fmt: skip
    problems = _send(pipeline, ctx, store)
    recorded = store.get_run(result.run_id) if pipeline.sla is not None else None
    reference = _reference(recorded.run) if recorded is not None else None
    late = _late_by(pipeline, reference, time.time()) if reference is not None else None
    if late is not None and late > 0:
        problems += _send(pipeline, _with_event(ctx, AlertEvent.SLA_MISSED, late), store)
    return problems


def alert_stuck(project: Project, store: RunStore, run: RunSummary, reason: str) -> list[str]:
    """A run that stopped without finishing (its process died, its heartbeat stopped)."""
    pipeline = project.pipelines.get(run.pipeline)
    if pipeline is None or not pipeline.alerts:
        return []
    ctx = _context(project, pipeline, run.run_id, AlertEvent.STUCK, "failed", reason=reason)
    return _send(pipeline, ctx, store)


def alert_late_runs(
    project: Project, store: RunStore, now: float, alerted: set[str] | None = None
) -> list[str]:
    """``sla_missed`` for every queued or running run past its pipeline's ``sla``;
    ``alerted`` remembers the runs already done (the ledger would refuse them anyway)."""
    alerted = set() if alerted is None else alerted
    problems: list[str] = []
    for name, pipeline in project.pipelines.items():
        if pipeline.sla is None or not pipeline.alerts:
            continue
        for status in ("queued", "running"):
            for run in store.list_runs(pipeline=name, status=status, limit=LATE_SCAN):
                reference = _reference(run)
                late = _late_by(pipeline, reference, now) if reference is not None else None
                if late is not None and late > 0 and run.run_id not in alerted:
                    alerted.add(run.run_id)
                    ctx = _context(
                        project, pipeline, run.run_id, AlertEvent.SLA_MISSED, status,
                        reason=_late_reason(pipeline, late),
                    )  # fmt: skip
                    problems += _send(pipeline, ctx, store)
    return problems


def _reference(run: RunSummary) -> float | None:
    """When the SLA clock starts: a scheduled run's slot (or when it was queued, for a slot
    caught up later); a backfill's run when it started (they wait for their turn by
    design); any other run when it was asked for."""
    if run.trigger == "schedule" and run.execution_date is not None:
        return max(run.execution_date, run.created_at)
    if run.trigger == "backfill":
        return run.started_at
    return run.created_at


def _late_by(pipeline: Pipeline, reference: float, now: float) -> float | None:
    if pipeline.sla is None:
        return None
    return now - reference - pipeline.sla


def _late_reason(pipeline: Pipeline, late: float) -> str:
    return f"not finished {pipeline.sla:.0f} s after it was due (sla), {late:.0f} s late"


def _with_event(ctx: AlertContext, event: AlertEvent, late: float) -> AlertContext:
    from dataclasses import replace

    return replace(ctx, event=event, reason=f"finished {late:.0f} s after its sla")


def _context(
    project: Project,
    pipeline: Pipeline,
    run_id: str,
    event: AlertEvent,
    status: str,
    **more: object,
) -> AlertContext:
    return AlertContext(
        project=project.settings.name or project.root.name,
        pipeline=pipeline.name,
        run_id=run_id,
        event=event,
        status=status,
        link=run_link(project.settings.base_url, run_id),
        **more,  # type: ignore[arg-type]
    )


def _send(pipeline: Pipeline, ctx: AlertContext, store: RunStore) -> list[str]:
    problems = send_alerts(pipeline, ctx, first_time=ScheduleStore(store).first_alert)
    for problem in problems:
        log.warning("alert for run %s: %s", ctx.run_id, problem)
    return problems
