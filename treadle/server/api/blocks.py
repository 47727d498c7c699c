"""Blocks of a pipeline: ``/api/v1/pipelines/{pipeline}/blocks`` (add from a template, read,
write the file, remove, run one), ``…/edges`` (connect, disconnect) and
``/api/v1/block-templates``.

Writes go through ``treadle/project/editing.py`` (atomic, checked, undone when invalid:
422 with each problem's file and line) and are in the audit trail.

Running one block (``…/blocks/{block}/run``) is ``treadle run --block``: a new run (its
trigger is ``block``, so it is not taken for the pipeline's last run), kept in
the history, of that block alone, its inputs the stored outputs of its upstream blocks
from the latest run that has them (with the same variables). It runs on a worker thread;
when it takes longer than ``timeout``, the answer says ``timed_out`` and the run is asked
to stop (with the inline executor, after the block it is running returns).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from treadle.engine.api import RunResult
from treadle.engine.block_logs import log_path
from treadle.engine.outputs import OutputMeta, OutputStore
from treadle.errors import UnknownName, UserInputError, did_you_mean, unknown_name_error
from treadle.events import BlockStatus
from treadle.project import editing
from treadle.project.block_templates import TEMPLATES, add_block
from treadle.project.masking import mask, secret_values
from treadle.project.model import BlockSpec, Project
from treadle.project.paths import project_path
from treadle.scheduler.launch import run_pipeline
from treadle.server.api.pipelines import (
    BlockOut,
    Edge,
    PipelineDetail,
    block_out,
    pipeline_detail,
    reload_project,
)
from treadle.server.api.runs import BLOCK_TRIGGER, StartSignal, run_detail
from treadle.server.auth import Editor, State, Viewer, audit
from treadle.server.inputs import Variables
from treadle.server.state import ServerState
from treadle.store.access import Role

router = APIRouter(tags=["blocks"])

#: Blocks run at once through the API; more wait for a free worker (within their timeout).
RUN_WORKERS = 4
#: The end of a block's log that a run's answer carries.
LOG_TAIL_CHARS = 64_000

_slots = threading.BoundedSemaphore(RUN_WORKERS)


# -- models --------------------------------------------------------------------------------


class TemplateOut(BaseModel):
    name: str
    type: str
    language: str
    description: str


class NewBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100)
    template: str = Field(max_length=100, description="see GET /block-templates")
    upstream: list[str] = Field(default_factory=list, max_length=100)


class BlockDetail(BlockOut):
    pipeline: str
    text: str = Field(description="the block file's text")


class BlockText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str


class BlockRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variables: Variables = Field(default_factory=dict, description="runtime variables")
    timeout: float = Field(
        default=300.0, gt=0, le=3600, description="seconds to wait before the run is stopped"
    )
    wait: bool = Field(
        default=True,
        description="false: answer as soon as the run has started (status `running`), then"
        " follow it with GET /runs/{run_id}/logs/stream and read the result from"
        " GET /pipelines/{pipeline}/blocks/{block}/runs/{run_id}",
    )


class ColumnOut(BaseModel):
    name: str
    type: str


class OutputPreview(BaseModel):
    kind: str = Field(description="table, json or pickle")
    type: str = Field(description="pandas, polars, pyarrow; else the Python type")
    row_count: int | None
    columns: list[ColumnOut]
    rows: list[Any] = Field(description="the first rows (a table's as objects)")
    value: Any = Field(default=None, description="a value that is not a table, or its preview")
    items: int | None = Field(default=None, description="outputs of a fanned-out block")


class ErrorOut(BaseModel):
    type: str
    message: str
    traceback: str


class BlockRunResult(BaseModel):
    run_id: str | None
    status: str = Field(description="succeeded, failed, … or timed_out")
    duration: float | None
    error: ErrorOut | None
    logs: str = Field(description="the block's log (secrets masked), its end when long")
    output: OutputPreview | None


# -- routes --------------------------------------------------------------------------------


@router.get("/block-templates", response_model=list[TemplateOut])
def list_templates(_: Viewer) -> list[TemplateOut]:
    return [
        TemplateOut(
            name=name,
            type=template.type.value,
            language="sql" if template.suffix == ".sql" else "python",
            description=template.description,
        )
        for name, template in TEMPLATES.items()
    ]


@router.post("/pipelines/{pipeline}/blocks", response_model=BlockDetail, status_code=201)
def create_block(
    pipeline: str, body: NewBlock, request: Request, principal: Editor, state: State
) -> BlockDetail:
    """Write a block file from a template and append the block to pipeline.yaml."""
    if body.template not in TEMPLATES:
        raise UserInputError(
            f"unknown block template {body.template!r}; templates: {', '.join(TEMPLATES)}",
            hint=did_you_mean(body.template, list(TEMPLATES)),
        )
    editing.pipeline_file(state.root, pipeline)  # 404 for an unknown pipeline
    with editing.EDIT_LOCK:
        add_block(state.root, pipeline, body.name, body.template, body.upstream)
    project = reload_project(state)
    detail = _detail(state, project, pipeline, body.name)
    audit(
        request,
        principal,
        "block.created",
        _target(pipeline, body.name),
        template=body.template,
        file=detail.file,
        upstream=body.upstream,
    )
    return detail


@router.get("/pipelines/{pipeline}/blocks/{block}", response_model=BlockDetail)
def get_block(pipeline: str, block: str, principal: Viewer, state: State) -> BlockDetail:
    """The block as pipeline.yaml declares it, and its file's text (to a viewer, known
    secret values in it show as ***, as through the files API)."""
    detail = _detail(state, state.project(), pipeline, block)
    if not principal.role.allows(Role.EDITOR):
        detail.text = mask(detail.text, secret_values(state.root))
    return detail


@router.put("/pipelines/{pipeline}/blocks/{block}/file", response_model=BlockDetail)
def write_block_file(
    pipeline: str, block: str, body: BlockText, request: Request, principal: Editor, state: State
) -> BlockDetail:
    """Replace the block's file. A syntax error or a missing decorator: 422 with the line,
    and the file is left as it was."""
    project = state.project()
    spec = _block(project, pipeline, block)
    uses = [b.type for p in project.pipelines.values() for b in p.blocks if b.file == spec.file]
    editing.write_block_file(state.root, spec.file, uses, body.text)
    audit(
        request,
        principal,
        "block.file_written",
        _target(pipeline, block),
        file=spec.file,
        bytes=len(body.text.encode("utf-8")),
    )
    return _detail(state, project, pipeline, block)


@router.delete("/pipelines/{pipeline}/blocks/{block}", status_code=204)
def delete_block(
    pipeline: str, block: str, request: Request, principal: Editor, state: State
) -> None:
    """Remove the block from pipeline.yaml and from the other blocks' upstream. Its file
    is kept (other pipelines may use it)."""
    editing.remove_block(state.root, pipeline, block)
    reload_project(state)
    audit(request, principal, "block.deleted", _target(pipeline, block))


class BlockRename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100, description="the block's new name")


@router.post("/pipelines/{pipeline}/blocks/{block}/rename", response_model=BlockDetail)
def rename_block(
    pipeline: str, block: str, body: BlockRename, request: Request, principal: Editor, state: State
) -> BlockDetail:
    """Give the block a new name in this pipeline (and in its downstream blocks' upstream).
    Its file stays where it is, so pipelines sharing it are not affected."""
    project = reload_project(state)
    spec = _block(project, pipeline, block)
    try:
        editing.rename_block(state.root, pipeline, block, body.name, spec.file)
    except editing.AlreadyExists as exc:
        raise HTTPException(409, detail=exc.message) from None
    project = reload_project(state)
    audit(request, principal, "block.renamed", _target(pipeline, block), name=body.name)
    return _detail(state, project, pipeline, body.name)


@router.post("/pipelines/{pipeline}/edges", response_model=PipelineDetail, status_code=201)
def add_edge(
    pipeline: str, body: Edge, request: Request, principal: Editor, state: State
) -> PipelineDetail:
    """Make ``from`` an upstream of ``to``. A cycle: 422 naming its blocks, file unchanged."""
    try:
        editing.add_edge(state.root, pipeline, body.upstream, body.downstream)
    except editing.AlreadyExists as exc:
        raise HTTPException(409, detail=exc.message) from None
    audit(request, principal, "edge.added", pipeline, **_edge(body))
    return pipeline_detail(state, reload_project(state), pipeline)


@router.delete("/pipelines/{pipeline}/edges", response_model=PipelineDetail)
def remove_edge(
    pipeline: str, body: Edge, request: Request, principal: Editor, state: State
) -> PipelineDetail:
    """Remove ``from`` from the upstream of ``to``."""
    editing.remove_edge(state.root, pipeline, body.upstream, body.downstream)
    audit(request, principal, "edge.removed", pipeline, **_edge(body))
    return pipeline_detail(state, reload_project(state), pipeline)


@router.post("/pipelines/{pipeline}/blocks/{block}/run", response_model=BlockRunResult)
def run_block(
    pipeline: str,
    block: str,
    request: Request,
    principal: Editor,
    state: State,
    body: BlockRun | None = None,
) -> BlockRunResult:
    """Run this block alone on its upstream's latest stored outputs; its status, error,
    log and a preview of its output. A block that raises is a ``failed`` answer, not an
    HTTP error; no stored upstream output (or another bad input) is a 422."""
    body = body or BlockRun()
    project = state.project()
    _block(project, pipeline, block)
    started = StartSignal()
    future = _in_worker(
        run_pipeline,
        project,
        pipeline,
        block=block,
        variables=body.variables,
        sinks=[started],
        trigger=BLOCK_TRIGGER,
        triggered_by=principal.name,
    )
    future.add_done_callback(lambda _: started.settled.set())
    running = _BlockRun(state, future, started, body.timeout)
    try:
        if body.wait:
            answer = _finished(project, future.result(timeout=body.timeout), block)
        else:
            answer = running.answer_once_started(project, block)
    except TimeoutError:
        answer = running.timed_out()
    audit(
        request,
        principal,
        "block.run",
        _target(pipeline, block),
        run_id=answer.run_id,
        status=answer.status,
    )
    return answer


@router.get("/pipelines/{pipeline}/blocks/{block}/runs/{run_id}", response_model=BlockRunResult)
def block_run_result(
    pipeline: str, block: str, run_id: str, _: Editor, state: State
) -> BlockRunResult:
    """What the block did in that run: its status, error, log and output preview (while it
    runs: its status and the log so far). Editors only, as running a block is: a preview
    holds rows of data, which viewers do not see."""
    detail = run_detail(state, run_id)
    if detail.run.pipeline != pipeline:
        raise UnknownName(f"run {detail.run_id} is of pipeline {detail.run.pipeline!r}")
    try:
        row = detail.block(block)
    except KeyError:
        names = [b.block for b in detail.blocks]
        raise unknown_name_error(f"block of run {detail.run_id}", block, names) from None
    project = state.project()
    done = row.status not in (BlockStatus.QUEUED, BlockStatus.RUNNING)
    return BlockRunResult(
        run_id=detail.run_id,
        status=row.status.value,
        duration=row.duration,
        error=ErrorOut(**row.error.to_dict()) if row.error else None,
        logs=_logs(project, detail.run_id, block, row.items),
        output=_output(project, detail.run_id, block, row.items) if done else None,
    )


# -- helpers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BlockRun:
    """A block run on a worker thread (``run_block``), and how to stop it in time."""

    state: ServerState
    future: Future[RunResult]
    started: StartSignal
    timeout: float

    def answer_once_started(self, project: Project, block: str) -> BlockRunResult:
        """The answer of a run that is not waited for: ``running`` with its id once it
        has started (its result if it has already finished, its error if it could not
        start). A thread stops it when ``timeout`` seconds have passed."""
        deadline = time.monotonic() + self.timeout
        if not self.started.settled.wait(self.timeout):
            raise TimeoutError
        if self.future.done():
            return _finished(project, self.future.result(), block)
        threading.Thread(
            target=self._stop_at, args=(deadline,), name="treadle-block-deadline", daemon=True
        ).start()
        return BlockRunResult(
            run_id=self.started.run_id,
            status="running",
            duration=None,
            error=None,
            logs="",
            output=None,
        )

    def timed_out(self) -> BlockRunResult:
        """Stop it, and say that it did not finish in time."""
        run_id = self.stop()
        message = f"the block did not finish within {self.timeout:g}s; the run was asked to stop"
        return BlockRunResult(
            run_id=run_id,
            status="timed_out",
            duration=None,
            error=ErrorOut(type="Timeout", message=message, traceback=""),
            logs="",
            output=None,
        )

    def stop(self) -> str | None:
        """Drop it while it waits for a worker, else ask the run to stop (it stops at its
        next check); its run id once it has started."""
        dropped = self.future.cancel()
        run_id = self.started.run_id
        if not dropped and run_id is not None:
            reason = f"the API waited {self.timeout:g}s for the block"
            with contextlib.suppress(UserInputError):  # it finished meanwhile
                self.state.runs.request_cancel(run_id, reason)
        return run_id

    def _stop_at(self, deadline: float) -> None:
        try:
            self.future.result(timeout=max(deadline - time.monotonic(), 0.0))
        except TimeoutError:
            self.stop()
        except Exception:  # noqa: S110 - the run records its own failure
            pass


def _in_worker(work: Callable[..., RunResult], *args: Any, **kwargs: Any) -> Future[RunResult]:
    """Call ``work`` on a daemon thread once one of ``RUN_WORKERS`` slots is free. Daemon:
    a block that never returns must not keep the server from exiting. The future can be
    cancelled while it waits for a slot."""
    future: Future[RunResult] = Future()

    def run() -> None:
        with _slots:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(work(*args, **kwargs))
            except BaseException as exc:  # handed to the request that waits for it
                future.set_exception(exc)

    threading.Thread(target=run, name="treadle-block-run", daemon=True).start()
    return future


def _block(project: Project, pipeline: str, block: str) -> BlockSpec:
    spec = project.pipeline(pipeline)
    if not spec.has_block(block):
        raise unknown_name_error(f"block of pipeline {pipeline!r}", block, spec.block_names)
    return spec.block(block)


def _detail(state: ServerState, project: Project, pipeline: str, block: str) -> BlockDetail:
    spec = _block(project, pipeline, block)
    path = project_path(state.root, spec.file)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise UserInputError(
            f"cannot read the block file: {exc.strerror}", path=spec.file
        ) from None
    return BlockDetail(**block_out(spec).model_dump(), pipeline=pipeline, text=text)


def _target(pipeline: str, block: str) -> str:
    return f"{pipeline}.{block}"


def _edge(edge: Edge) -> dict[str, str]:
    return {"from": edge.upstream, "to": edge.downstream}


def _finished(project: Project, result: RunResult, block: str) -> BlockRunResult:
    outcome = result.blocks.get(block)
    error_out = None
    if outcome is not None and outcome.error is not None:
        error_out = ErrorOut(**outcome.error.to_dict())
    elif not result.ok and result.problem:
        error_out = ErrorOut(type="RunFailed", message=result.problem, traceback="")
    return BlockRunResult(
        run_id=result.run_id,
        status=outcome.status.value if outcome else result.status.value,
        duration=outcome.duration if outcome else result.duration,
        error=error_out,
        logs=_logs(project, result.run_id, block, outcome.items if outcome else None),
        output=_output(project, result.run_id, block, outcome.items if outcome else None),
    )


def _logs(project: Project, run_id: str, block: str, items: int | None) -> str:
    """The block's log, its end when long; secrets masked again as it is served (the engine
    masked those it knew when it wrote), as every log the API serves is."""
    logs_root = project.state_dir / "logs"
    keys = [block] if items is None else [f"{block}.{i}" for i in range(items)]
    texts = []
    for key in keys:
        path = log_path(logs_root, run_id, key)
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    text = mask("".join(texts), secret_values(project.root))
    return text if len(text) <= LOG_TAIL_CHARS else "…" + text[-LOG_TAIL_CHARS:]


def _output(project: Project, run_id: str, block: str, items: int | None) -> OutputPreview | None:
    """The output's metadata and stored preview (the output itself is not loaded)."""
    store = OutputStore(project.state_dir / "outputs", run_id)
    meta = store.meta(block if items is None else f"{block}.0")
    return None if meta is None else _preview(meta, items)


def _preview(meta: OutputMeta, items: int | None) -> OutputPreview:
    if meta.kind == "table":
        rows, value = list(meta.preview or []), None
    else:
        value = meta.value if meta.file is None else meta.preview
        rows = value if isinstance(value, list) else []
    return OutputPreview(
        kind=meta.kind,
        type=meta.python_type,
        row_count=meta.rows,
        columns=[ColumnOut(name=n, type=t) for n, t in meta.columns or ()],
        rows=rows,
        value=value,
        items=items,
    )
