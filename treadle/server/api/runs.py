"""``/api/v1/runs``: start, list, show, cancel, resume and retry runs; read their logs.

A run started here is queued; a scheduler starts it (this process's under ``treadle
start``, else ``treadle scheduler``). A resume or a retry reruns a stopped run under its
own id, which the queue cannot hold: it runs in this process (see ``BackgroundRuns``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from treadle.engine.api import merge_variables, new_run_id, parse_execution_date
from treadle.engine.block_logs import log_path
from treadle.errors import UnknownName, UserInputError, did_you_mean
from treadle.events import BlockStatus, Event, RunStarted, RunStatus
from treadle.processes import pid_alive
from treadle.project.masking import mask, masked_variables, secret_values
from treadle.scheduler.launch import resume_run
from treadle.server.auth import Editor, State, Viewer, audit
from treadle.server.inputs import Variables
from treadle.server.state import ServerState
from treadle.store.rows import RunDetail, RunSummary, iso
from treadle.store.scheduling import NewRun
from treadle.store.sql import RunStore

log = logging.getLogger("treadle.server")

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
#: The trigger of a run of one block from the editor (``POST …/blocks/{block}/run``).
BLOCK_TRIGGER = "block"
#: Seconds a resume or retry request waits for the run to start (or to refuse to).
START_WAIT = 10.0
#: Seconds the server, stopping, waits for the resumes it runs to stop.
STOP_WAIT = 8.0
#: Seconds between looks at a streamed run's logs and statuses.
POLL_EVERY = 0.2
#: Seconds of silence after which the stream sends a comment, so proxies keep it open.
KEEPALIVE_EVERY = 15.0
#: Bytes of a log one request returns at most (a log may reach 100 MB).
MAX_LOG_CHUNK = 4 * 1024 * 1024
#: Bytes of one log the stream reads per look.
STREAM_CHUNK = 256 * 1024


@asynccontextmanager
async def _stop_background_runs(app: FastAPI) -> AsyncIterator[None]:
    yield
    background: BackgroundRuns | None = getattr(app.state, "background_runs", None)
    if background is not None:
        await run_in_threadpool(background.stop, app.state.treadle.runs, STOP_WAIT)


router = APIRouter(tags=["runs"], lifespan=_stop_background_runs)


# -- models ----------------------------------------------------------------------------------


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(min_length=1, max_length=200)
    variables: Variables = Field(
        default_factory=dict, description="runtime variables over the pipeline's defaults"
    )
    execution_date: datetime | None = Field(
        default=None, description="ISO date or datetime (no zone: UTC); default now"
    )


class RunQueued(BaseModel):
    run_id: str
    pipeline: str
    status: RunStatus = RunStatus.QUEUED
    execution_date: str | None


class ErrorOut(BaseModel):
    type: str
    message: str
    traceback: str


class RunOut(BaseModel):
    """A run, as ``treadle runs list --json`` shows it (times ISO 8601 UTC)."""

    run_id: str
    project: str
    pipeline: str
    status: RunStatus
    execution_date: str | None
    interval_start: str | None
    interval_end: str | None
    trigger: str | None
    triggered_by: str | None
    executor: str | None
    host: str | None
    pid: int | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    duration: float | None = Field(description="seconds from start to finish")
    reason: str | None
    resumes: int
    cancel_requested_at: str | None
    cancel_reason: str | None


class BlockRunOut(BaseModel):
    block: str
    status: BlockStatus
    why: str | None
    attempts: int
    items: int | None = Field(description="items it ran for, inside a dynamic fan-out")
    rows: int | None
    bytes: int | None
    duration: float | None
    started_at: str | None
    finished_at: str | None
    error: ErrorOut | None


class AttemptOut(BaseModel):
    id: int
    block: str
    item: int | None
    attempt: int
    status: BlockStatus
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    duration: float | None
    cpu_time: float | None
    peak_memory: int | None
    rows: int | None
    bytes: int | None
    error: ErrorOut | None


class RunDetailOut(RunOut):
    """A run with its blocks (pipeline order) and every attempt: ``treadle runs show``."""

    variables: dict[str, Any] | None = Field(description="secret ones shown as ***")
    pipeline_hash: str | None
    file_hashes: dict[str, str] | None
    trigger_id: int | None
    backfill_id: str | None
    blocks: list[BlockRunOut]
    attempts: list[AttemptOut]


class RunPage(BaseModel):
    runs: list[RunOut] = Field(description="newest first")
    next: str | None = Field(
        description="pass as `before` for the next page; null on the last page"
    )


class CancelOutcome(BaseModel):
    run_id: str
    status: RunStatus = Field(description="the run's status now")
    cancelled: bool = Field(
        description="true: cancelled now; false: asked to stop, it stops at its next check"
    )
    message: str


class ResumeRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_block: str | None = Field(
        default=None,
        max_length=200,
        description="rerun this block and everything downstream of it",
    )
    variables: Variables = Field(
        default_factory=dict,
        description="override the recorded ones (secret ones are recorded masked: give them again)",
    )


class RunResumed(BaseModel):
    run_id: str = Field(description="the same run: a resume reruns it under its own id")
    pipeline: str
    status: RunStatus
    from_block: str | None


class BlockLogOut(BaseModel):
    run_id: str
    block: str
    item: int | None
    text: str = Field(description="whole lines, secrets masked")
    offset: int = Field(description="the byte the text starts at")
    next_offset: int = Field(description="pass as `offset` to read on (to tail the log)")
    size: int = Field(description="the log's size in bytes now")


# -- starting, listing, showing ---------------------------------------------------------------


@router.post("/runs", response_model=RunQueued, status_code=201)
def start_run(body: StartRun, request: Request, principal: Editor, state: State) -> RunQueued:
    """Queue a run of a pipeline; a scheduler starts it (within the project's limits).

    Unknown pipeline: 404, naming the closest; a variable that looks like a typo: 422."""
    pipeline = state.project().pipeline(body.pipeline)
    merge_variables(pipeline, body.variables)  # refuses typos of declared variables
    when = parse_execution_date(body.execution_date).timestamp()
    run = NewRun(
        run_id=new_run_id(),
        pipeline=pipeline.name,
        execution_date=when,
        interval_start=when,
        interval_end=when,
        variables=body.variables,
        trigger="ui" if principal.via == "session" else "api",  # a browser, or a program
        triggered_by=principal.name,
    )
    state.schedules.queue_run(run, time.time())
    state.scheduler.wake()
    audit(request, principal, "run.started", run.run_id, pipeline=run.pipeline)
    return RunQueued(run_id=run.run_id, pipeline=run.pipeline, execution_date=iso(when))


@router.get("/runs", response_model=RunPage)
def list_runs(
    _: Viewer,
    state: State,
    pipeline: Annotated[str | None, Query(max_length=200)] = None,
    status: RunStatus | None = None,
    trigger: Annotated[
        str | None, Query(max_length=50, description="api, schedule, event, backfill, cli")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        str | None,
        Query(max_length=500, description="the `next` of the previous page, or a run id"),
    ] = None,
    since: Annotated[
        datetime | None, Query(description="runs created at or after this (ISO 8601)")
    ] = None,
    until: Annotated[datetime | None, Query(description="runs created before this")] = None,
) -> RunPage:
    """The newest runs first, a page at a time."""
    position = _position(state.runs, before) if before else None
    found = state.runs.list_runs(
        pipeline=pipeline,
        status=status.value if status else None,
        trigger=trigger,
        limit=limit + 1,  # one more says whether there is a next page
        before=position,
        since=_unix(since),
        until=_unix(until),
    )
    page = found[:limit]
    following = _cursor(page[-1]) if len(found) > limit else None
    return RunPage(runs=[RunOut(**run.to_dict()) for run in page], next=following)


@router.get("/runs/{run_id}", response_model=RunDetailOut)
def show_run(run_id: str, _: Viewer, state: State) -> RunDetailOut:
    """A run (a unique start of its id will do) with its blocks and attempts."""
    detail = run_detail(state, run_id)
    data = detail.to_dict()
    data["variables"] = masked_variables(detail.variables or {}, secret_values(state.root))
    return RunDetailOut(**data)


def run_detail(state: ServerState, run_id: str) -> RunDetail:
    detail = state.runs.get_run(run_id)
    if detail is None:
        raise UnknownName(f"no run {run_id!r}", hint="GET /api/v1/runs lists the runs")
    return detail


def _unix(moment: datetime | None) -> float | None:
    """Unix seconds; a time without a zone is UTC."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _cursor(run: RunSummary) -> str:
    """Where a page ended, opaque to clients: (created_at, id) in URL-safe base64."""
    text = json.dumps([run.created_at, run.run_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _position(runs: RunStore, before: str) -> tuple[float, str]:
    """The ``(created_at, id)`` a ``before`` names: a cursor made by ``_cursor``, or a run id."""
    position = _decoded(before) or runs.run_position(before)
    if position is None:
        raise UserInputError(
            f"before: {before!r} is neither a page cursor nor a run id",
            hint="pass the `next` of the previous page",
        )
    return position


def _decoded(cursor: str) -> tuple[float, str] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int | float)
        and 0 <= value[0] < _YEAR_9999
        and isinstance(value[1], str)
    ):
        return float(value[0]), value[1]
    return None


_YEAR_9999 = 253_402_300_799.0


# -- cancelling -------------------------------------------------------------------------------


@router.post("/runs/{run_id}/cancel", response_model=CancelOutcome)
def cancel_run(run_id: str, request: Request, principal: Editor, state: State) -> CancelOutcome:
    """Cancel a run: a queued one (or one whose process is gone) at once; a running one is
    asked to stop, and stops at its next check. A finished run: 409."""
    run = run_detail(state, run_id).run
    if run.status not in ACTIVE:
        raise HTTPException(
            409, detail=f"cannot cancel run {run.run_id}: it already finished ({run.status.value})"
        )
    reason = f"cancelled by {principal.name} through the API"
    run = state.runs.request_cancel(run.run_id, reason)
    cancelled = (
        run.status is RunStatus.QUEUED or pid_alive(run.host, run.pid, run.pid_started) is False
    )
    if cancelled:  # nothing runs it (yet): nobody else would record it
        run = state.runs.mark_cancelled(run.run_id, reason)
    audit(request, principal, "run.cancelled", run.run_id, at_once=cancelled)
    return CancelOutcome(
        run_id=run.run_id,
        status=run.status,
        cancelled=cancelled,
        message=_cancel_message(run, cancelled),
    )


def _cancel_message(run: RunSummary, cancelled: bool) -> str:
    if cancelled:
        return "cancelled"
    if run.executor == "inline":
        return (
            "cancel requested: the block that is running finishes first (the inline executor"
            " cannot interrupt it; `executor: process` in treadle.yaml can), then the run stops"
        )
    return "cancel requested: the run stops at its next check"


# -- resuming and retrying --------------------------------------------------------------------


@router.post("/runs/{run_id}/resume", response_model=RunResumed, status_code=202)
def resume(
    run_id: str, request: Request, principal: Editor, state: State, body: ResumeRun | None = None
) -> RunResumed:
    """Rerun the blocks of a stopped run that did not succeed (or, with ``from_block``, that
    block and everything downstream of it), reusing the outputs of the others, under the
    same run id. Answers once the run has started; a run with nothing left to run: 422."""
    body = body or ResumeRun()
    resumed = _start_resume(request, state, run_id, body)
    audit(request, principal, "run.resumed", resumed.run_id, from_block=body.from_block)
    return resumed


@router.post("/runs/{run_id}/retry", response_model=RunResumed, status_code=202)
def retry(
    run_id: str, request: Request, principal: Editor, state: State, body: ResumeRun | None = None
) -> RunResumed:
    """Rerun ``from_block`` (required) and everything downstream of it, under the same
    run id, reusing the stored outputs of the blocks upstream of it."""
    body = body or ResumeRun()
    if body.from_block is None:
        raise UserInputError(
            "a retry needs from_block: the block to rerun from",
            hint="POST …/resume reruns the blocks that did not succeed",
        )
    resumed = _start_resume(request, state, run_id, body)
    audit(request, principal, "run.retried", resumed.run_id, from_block=body.from_block)
    return resumed


def _start_resume(request: Request, state: ServerState, run_id: str, body: ResumeRun) -> RunResumed:
    run = run_detail(state, run_id).run
    _refuse_unless_stopped(run)
    project = state.project()
    checked = merge_variables(project.pipeline(run.pipeline), body.variables)
    overrides = {name: checked[name] for name in body.variables}  # as typed, text converted
    scheduler = state.scheduler

    def work(started: StartSignal) -> object:
        return resume_run(
            project,
            run.run_id,
            from_block=body.from_block,
            variables=overrides,
            executor=scheduler.executor,
            sinks=[*scheduler.sinks, started],
        )

    background_runs(request).start(run.run_id, work)
    now = run_detail(state, run.run_id).run
    return RunResumed(
        run_id=now.run_id, pipeline=now.pipeline, status=now.status, from_block=body.from_block
    )


def _refuse_unless_stopped(run: RunSummary) -> None:
    """409 for a run that is queued or running, or that only ``treadle resume`` may resume:
    ``treadle cancel`` signals the process of a run started by ``treadle run``, and that
    process would be this server."""
    if run.status in ACTIVE:
        raise HTTPException(
            409,
            detail=f"run {run.run_id} is {run.status.value}: only a stopped run can be resumed"
            " (cancel it first)",
        )
    if run.trigger == "cli":
        raise HTTPException(
            409,
            detail=f"run {run.run_id} was started by `treadle run`: resume it with "
            f"`treadle resume {run.run_id}` (or `treadle retry {run.run_id} --from BLOCK`)",
        )


class StartSignal:
    """An event sink that tells when the run has started (``run_id``); ``error`` is why it
    did not."""

    def __init__(self) -> None:
        self.settled = threading.Event()
        self.run_id: str | None = None
        self.error: Exception | None = None

    def emit(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
            self.settled.set()


class BackgroundRuns:
    """The resumes and retries this server runs, one thread each.

    The queue holds new runs only, so a scheduler cannot resume a run: it runs here, as
    ``treadle resume`` would run it. A request waits until the run has started (or refused
    to start: that refusal is its answer), never for the run to finish. When the server
    stops, the runs still going are asked to stop, so they are recorded as cancelled."""

    def __init__(self) -> None:
        self._threads: dict[threading.Thread, str] = {}
        self._lock = threading.Lock()

    def start(self, run_id: str, work: Callable[[StartSignal], object]) -> None:
        """Run ``work`` in a thread; raise what it raised before the run started."""
        started = StartSignal()
        thread = threading.Thread(
            target=self._run, args=(work, started), name=f"treadle-resume-{run_id}", daemon=True
        )
        with self._lock:
            self._threads[thread] = run_id
        thread.start()
        if started.settled.wait(START_WAIT) and started.error is not None:
            raise started.error

    def _run(self, work: Callable[[StartSignal], object], started: StartSignal) -> None:
        try:
            work(started)
        except Exception as exc:
            if not started.settled.is_set():
                started.error = exc  # the request raises it
            else:
                log.exception("a resumed run failed to run")
        finally:
            started.settled.set()
            with self._lock:
                self._threads.pop(threading.current_thread(), None)

    @property
    def active(self) -> dict[threading.Thread, str]:
        with self._lock:
            return dict(self._threads)

    def stop(self, runs: RunStore, wait: float) -> None:
        """Ask every run in progress here to stop; wait up to ``wait`` seconds for them."""
        active = self.active
        for run_id in active.values():
            with suppress(UserInputError):  # it finished meanwhile
                runs.request_cancel(run_id, "the server stopped")
        deadline = time.monotonic() + wait
        for thread in active:
            thread.join(max(deadline - time.monotonic(), 0.0))


_background_lock = threading.Lock()


def background_runs(request: Request) -> BackgroundRuns:
    """This app's ``BackgroundRuns``, made on first use."""
    app_state = request.app.state
    with _background_lock:
        if getattr(app_state, "background_runs", None) is None:
            app_state.background_runs = BackgroundRuns()
        return app_state.background_runs


# -- logs -------------------------------------------------------------------------------------


@router.get("/runs/{run_id}/blocks/{block}/logs", response_model=BlockLogOut)
def block_log(
    run_id: str,
    block: str,
    _: Viewer,
    state: State,
    item: Annotated[int | None, Query(ge=0, description="an item of a dynamic fan-out")] = None,
    offset: Annotated[int, Query(ge=0, description="bytes to skip (what was read before)")] = 0,
    max_bytes: Annotated[int, Query(ge=1, le=MAX_LOG_CHUNK)] = MAX_LOG_CHUNK,
) -> BlockLogOut:
    """A block run's log (print, logging and stderr): whole lines from ``offset``. A block
    that has logged nothing yet has an empty log."""
    detail = run_detail(state, run_id)
    names = [b.block for b in detail.blocks] or _blocks_of(state, detail.run.pipeline)
    if block not in names:
        raise UnknownName(
            f"run {detail.run_id} has no block {block!r}", hint=did_you_mean(block, names)
        )
    key = block if item is None else f"{block}.{item}"
    path = log_path(_logs_root(state), detail.run_id, key)
    size = path.stat().st_size if path.is_file() else 0
    if offset > size:
        raise UserInputError(f"offset {offset} is past the end of the log ({size} bytes)")
    finished = detail.run.status not in ACTIVE
    chunk, next_offset = read_log(path, offset, max_bytes, finished=finished)
    text = mask(chunk.decode("utf-8", errors="replace"), secret_values(state.root))
    return BlockLogOut(
        run_id=detail.run_id,
        block=block,
        item=item,
        text=text,
        offset=offset,
        next_offset=next_offset,
        size=size,
    )


def _blocks_of(state: ServerState, pipeline: str) -> list[str]:
    """The pipeline's blocks: a queued run has recorded none yet."""
    found = state.project().pipelines.get(pipeline)
    return list(found.block_names) if found is not None else []


def _logs_root(state: ServerState) -> Path:
    return state.project().state_dir / "logs"


def read_log(path: Path, offset: int, limit: int, *, finished: bool) -> tuple[bytes, int]:
    """Up to ``limit`` bytes of ``path`` from ``offset``, and where to read on, cut after
    the last complete line: a line still being written, or cut by ``limit``, comes whole
    in a later read (so a secret is never split between two reads, and is masked). Once
    the run has ``finished``, a last line without its newline comes too; a line longer
    than ``limit`` comes in pieces."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read(limit)
    except FileNotFoundError:
        return b"", offset
    at_end = len(chunk) < limit
    if not (finished and at_end):
        end = chunk.rfind(b"\n") + 1
        chunk = chunk[:end] if end or at_end else chunk
    return chunk, offset + len(chunk)


@router.get(
    "/runs/{run_id}/logs/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_logs(run_id: str, request: Request, _: Viewer, state: State) -> StreamingResponse:
    """The run's new log lines and status changes as they happen, as Server-Sent Events:

    * ``status``: ``{run_id, block, status, why}`` (``block`` null: the run's own status);
    * ``log``: ``{block, item, line}`` for each new line of a block's log (secrets masked);
    * ``end``: ``{run_id, status}`` once the run has finished; then the stream closes.
    """
    detail = await run_in_threadpool(run_detail, state, run_id)
    watch = await run_in_threadpool(RunWatch.of, state, detail.run_id)
    return StreamingResponse(
        _events(request, watch),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, watch: RunWatch) -> AsyncIterator[str]:
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        detail = await run_in_threadpool(watch.runs.get_run, watch.run_id)
        finished = detail is None or detail.run.status not in ACTIVE
        messages = watch.status_changes(detail)
        messages += await run_in_threadpool(watch.new_lines, finished)
        for message in messages:
            yield message
        if finished:
            while rest := await run_in_threadpool(watch.new_lines, True):  # logs over a chunk
                for message in rest:
                    yield message
            status = detail.run.status.value if detail else "deleted"
            yield sse("end", {"run_id": watch.run_id, "status": status})
            return
        if messages:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE_EVERY:
            quiet_since = time.monotonic()
            yield ": keepalive\n\n"
        await asyncio.sleep(POLL_EVERY)


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


class RunWatch:
    """What one stream has sent of a run: how far it read each log, the statuses it told."""

    def __init__(self, runs: RunStore, run_id: str, folder: Path, secrets: tuple[str, ...]) -> None:
        self.runs = runs
        self.run_id = run_id
        self.folder = folder
        self.secrets = secrets
        self.read_to: dict[Path, int] = {}
        self.told: dict[str | None, tuple[str, str]] = {}

    @classmethod
    def of(cls, state: ServerState, run_id: str) -> RunWatch:
        folder = _logs_root(state) / run_id
        return cls(state.runs, run_id, folder, secret_values(state.root))

    def new_lines(self, finished: bool) -> list[str]:
        """``log`` events for the lines written since the last look (a last look, when the
        run has finished, takes a line without its newline too)."""
        messages = []
        for path in self._logs():
            block, _, item = path.stem.partition(".")
            offset = self.read_to.get(path, 0)
            chunk, self.read_to[path] = read_log(path, offset, STREAM_CHUNK, finished=finished)
            text = mask(chunk.decode("utf-8", errors="replace"), self.secrets)
            for line in text.splitlines():
                data = {"block": block, "item": int(item) if item.isdigit() else None, "line": line}
                messages.append(sse("log", data))
        return messages

    def _logs(self) -> Iterator[Path]:
        if self.folder.is_dir():
            yield from sorted(self.folder.glob("*.log"))

    def status_changes(self, detail: RunDetail | None) -> list[str]:
        """``status`` events for the run and each block whose status changed since told."""
        if detail is None:
            return []
        now: dict[str | None, tuple[str, str]] = {
            None: (detail.run.status.value, detail.run.reason or "")
        }
        now.update({b.block: (b.status.value, b.why or "") for b in detail.blocks})
        messages = []
        for block, (status, why) in now.items():
            if self.told.get(block) != (status, why):
                self.told[block] = (status, why)
                data = {"run_id": self.run_id, "block": block, "status": status, "why": why}
                messages.append(sse("status", data))
        return messages
