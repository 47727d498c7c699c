"""Backfills: ``/api/v1/backfills`` — preview, create, list, show, cancel.

A backfill is one run per slot of a date range: every ``every`` (``1d`` by default), or on
the slots of one of the pipeline's schedule triggers. Creating one queues its runs and
returns; the scheduler starts them, ``concurrency`` at a time. The same backfill asked
for again (same pipeline, range, interval and variables) is found, not made twice.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from treadle.errors import UserInputError, unknown_name_error
from treadle.project.masking import masked_variables, secret_values
from treadle.project.triggers import TriggerSpec, load_triggers
from treadle.scheduler.backfills import (
    RETRIED,
    BackfillPlan,
    cancel_backfill,
    final_status,
    is_done,
    plan_backfill,
    plan_trigger_backfill,
    queue_backfill,
    retry_failed,
)
from treadle.server.auth import Editor, State, Viewer, audit
from treadle.server.inputs import Variables
from treadle.server.state import ServerState
from treadle.store.rows import iso
from treadle.store.scheduling import BackfillRecord

router = APIRouter(prefix="/backfills", tags=["backfills"])


#: Execution dates a preview lists.
PREVIEW_DATES = 10


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(max_length=200)
    start: str = Field(max_length=100, description="first execution date (ISO), included")
    end: str = Field(max_length=100, description="last execution date (ISO), included")
    every: str | None = Field(
        default=None, max_length=100, description="between runs: 1d, 6h, 15m … (default 1d)"
    )
    trigger: str | None = Field(
        default=None, max_length=200, description="instead of every: this schedule trigger's slots"
    )
    variables: Variables = Field(default_factory=dict, description="runtime variables")
    concurrency: int = Field(default=1, ge=1, le=1000, description="runs at once")


class BackfillPreview(BaseModel):
    id: str
    pipeline: str
    every: str
    total: int = Field(description="how many runs it makes")
    first: str | None = Field(description="the first run's execution date")
    last: str | None = Field(description="the last run's execution date")
    first_dates: list[str] = Field(
        description=f"the execution dates of the first {PREVIEW_DATES} runs, in order"
    )
    variables: dict[str, Any]


class BackfillOut(BaseModel):
    id: str
    pipeline: str
    status: str = Field(description="running, succeeded, failed or cancelled")
    created_at: str | None
    start: str | None
    end: str | None
    every: str
    variables: dict[str, Any]
    concurrency: int | None
    total: int
    reason: str
    runs: dict[str, int] = Field(description="how many runs are in each status")


class BackfillRun(BaseModel):
    run_id: str
    status: str
    execution_date: str | None


class BackfillDetail(BackfillOut):
    run_list: list[BackfillRun]


Shown = TypeVar("Shown", bound=BackfillOut)


@router.post("/preview", response_model=BackfillPreview)
def preview_backfill(body: BackfillIn, _: Viewer, state: State) -> BackfillPreview:
    """What the backfill would make; nothing is created."""
    plan = _plan(state, body)
    return BackfillPreview(
        id=plan.id,
        pipeline=plan.pipeline,
        every=plan.every,
        total=plan.total,
        first=iso(plan.slots[0].timestamp()) if plan.slots else None,
        last=iso(plan.slots[-1].timestamp()) if plan.slots else None,
        first_dates=[iso(slot.timestamp()) for slot in plan.slots[:PREVIEW_DATES]],
        variables=masked_variables(plan.variables, secret_values(state.root)),
    )


@router.post(
    "",
    response_model=BackfillOut,
    status_code=201,
    responses={200: {"model": BackfillOut, "description": "the same backfill exists already"}},
)
def create_backfill(
    body: BackfillIn, request: Request, response: Response, principal: Editor, state: State
) -> BackfillOut:
    """Queue the backfill's runs (201); the same backfill again is found (200)."""
    plan = _plan(state, body)
    new, queued = queue_backfill(state.schedules, plan, body.concurrency)
    state.scheduler.wake()
    if new:
        audit(
            request,
            principal,
            "backfill.created",
            plan.id,
            pipeline=plan.pipeline,
            runs=plan.total,
            every=plan.every,
        )
    else:
        response.status_code = 200
    return _out(state, _backfill(state, plan.id), BackfillOut)


@router.get("", response_model=list[BackfillOut])
def list_backfills(_: Viewer, state: State) -> list[BackfillOut]:
    """The backfills, newest first, with how many runs are in each status."""
    return [_out(state, _settled(state, r), BackfillOut) for r in state.schedules.backfills()]


@router.get("/{backfill_id}", response_model=BackfillDetail)
def show_backfill(backfill_id: str, _: Viewer, state: State) -> BackfillDetail:
    """A backfill and each of its runs, in date order."""
    record = _backfill(state, backfill_id)
    runs = [
        BackfillRun(run_id=run_id, status=status, execution_date=iso(when))
        for run_id, status, when in state.schedules.backfill_runs(record.id)
    ]
    return _out(state, record, BackfillDetail, run_list=runs)


@router.post("/{backfill_id}/cancel", response_model=BackfillOut)
def cancel(backfill_id: str, request: Request, principal: Editor, state: State) -> BackfillOut:
    """Cancel a running backfill: its queued runs at once, its running runs at their
    next check (409 when it has finished)."""
    record = _backfill(state, backfill_id)
    if record.status != "running":
        raise HTTPException(409, detail=f"backfill {record.id} has finished ({record.status})")
    reason = f"cancelled by {principal.name}"
    cancelled = cancel_backfill(state.schedules, record.id, reason)
    audit(request, principal, "backfill.cancelled", record.id, pipeline=record.pipeline)
    return _out(state, cancelled, BackfillOut)


@router.post("/{backfill_id}/retry", response_model=BackfillOut, status_code=202)
def retry(backfill_id: str, request: Request, principal: Editor, state: State) -> BackfillOut:
    """Run the failed and cancelled runs of a finished backfill again (resumed: their
    blocks that succeeded keep their outputs), in the background, as many at once as the
    scheduler has workers. 409 while it runs; 422 when nothing failed."""
    record = _backfill(state, backfill_id)
    if record.status == "running":
        raise HTTPException(409, detail=f"backfill {record.id} is still running")
    again = [
        run for run, status, _ in state.schedules.backfill_runs(record.id) if status in RETRIED
    ]
    if not again:
        raise UserInputError(f"backfill {record.id} has no failed or cancelled runs to retry")
    state.schedules.set_backfill_status(record.id, "running", "")
    with _retrying_lock:
        _retrying.add(record.id)
    threading.Thread(
        target=_retry_in_background, args=(state, record.id), name=f"treadle-retry-{record.id}",
        daemon=True,
    ).start()  # fmt: skip
    audit(request, principal, "backfill.retried", record.id, runs=len(again))
    return _out(state, _backfill(state, record.id), BackfillOut)


# -- helpers -----------------------------------------------------------------------------

#: Backfills whose failed runs this server is running again: not settled meanwhile.
_retrying: set[str] = set()
_retrying_lock = threading.Lock()


def _retry_in_background(state: ServerState, backfill_id: str) -> None:
    try:
        retry_failed(state.scheduler, backfill_id)
    finally:
        with _retrying_lock:
            _retrying.discard(backfill_id)


def _plan(state: ServerState, body: BackfillIn) -> BackfillPlan:
    project = state.project()
    if body.trigger is None:
        every = body.every or "1d"
        return plan_backfill(project, body.pipeline, body.start, body.end, every, body.variables)
    if body.every is not None:
        raise UserInputError(
            "give either every or trigger, not both",
            hint="every: runs at a fixed interval; trigger: on a schedule trigger's slots",
        )
    trigger = _trigger(state, body.pipeline, body.trigger)
    return plan_trigger_backfill(project, trigger, body.start, body.end, body.variables)


def _trigger(state: ServerState, pipeline: str, name: str) -> TriggerSpec:
    project = state.project()
    project.pipeline(pipeline)
    specs = {s.name: s for s in load_triggers(state.root, pipeline, project.pipelines)}
    if name not in specs:
        raise unknown_name_error(f"trigger of pipeline {pipeline}", name, list(specs))
    return specs[name]


def _backfill(state: ServerState, backfill_id: str) -> BackfillRecord:
    """The backfill with exactly this id (404 otherwise), its status settled."""
    found = [r for r in state.schedules.backfills(backfill_id) if r.id == backfill_id]
    if not found:
        raise unknown_name_error("backfill", backfill_id, [])
    return _settled(state, found[0])


def _settled(state: ServerState, record: BackfillRecord) -> BackfillRecord:
    """A running backfill whose runs have all finished gets its final status (the
    scheduler starts a backfill's runs but does not record when they are done)."""
    if record.status != "running" or not is_done(record.runs, record.total):
        return record
    with _retrying_lock:
        if record.id in _retrying:  # its failed runs are about to run again
            return record
    status = final_status(record.runs, cancelled=False)
    state.schedules.set_backfill_status(record.id, status)
    return replace(record, status=status)


def _out(state: ServerState, record: BackfillRecord, kind: type[Shown], **more: Any) -> Shown:
    """The record as ``kind``, its secret-looking variables masked."""
    data = record.to_dict()
    data["variables"] = masked_variables(record.variables, secret_values(state.root))
    return kind(**data, **more)
