"""``/api/v1/pipelines``: list, read, create, replace, change and delete pipelines; check
one pipeline or the whole project (``/validate``).

Writes go through ``treadle/project/editing.py``: atomic, checked by loading the project,
and undone when invalid (422 with each problem's file, line, message and hint). Every
change is in the audit trail. Reads serve the project as last loaded valid (see
``ServerState.project``).
"""

from __future__ import annotations

import re
import weakref
from collections import Counter
from collections.abc import Hashable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from treadle.errors import ProjectInvalid, UserInputError
from treadle.project import editing
from treadle.project.loader import load_project
from treadle.project.masking import masked_variables, secret_values
from treadle.project.model import BlockSpec, BlockType, Pipeline, Project, RetryPolicy
from treadle.scheduler.service import Scheduler
from treadle.scheduler.triggering import SyncReport, read_all_triggers
from treadle.server.api.runs import BLOCK_TRIGGER
from treadle.server.auth import Editor, State, Viewer, audit
from treadle.server.inputs import Text, Variables
from treadle.server.state import ServerState
from treadle.store.access import Role
from treadle.store.rows import iso
from treadle.store.scheduling import TriggerRecord
from treadle.store.sql import RunStore

router = APIRouter(tags=["pipelines"])

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
#: (the triggers' ids, fingerprints and states; valid until; each pipeline's next slot)
_NextSlots = tuple[Hashable, datetime | None, dict[str, str]]
_next_slots: weakref.WeakKeyDictionary[Scheduler, _NextSlots] = weakref.WeakKeyDictionary()


# -- models --------------------------------------------------------------------------------


class LastRun(BaseModel):
    run_id: str
    status: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class PipelineSummary(BaseModel):
    name: str
    description: str
    blocks: int = Field(description="how many blocks it has")
    triggers: int = Field(default=0, description="how many triggers it has, enabled or not")
    last_run: LastRun | None
    next_run: str | None = Field(
        description="the next slot of its schedule triggers (ISO 8601, in the trigger's zone)"
    )


class RetriesOut(BaseModel):
    count: int
    delay: float
    backoff: float
    max_delay: float


class SqlSettingsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    table: str | None
    db_schema: str | None = Field(alias="schema")
    if_exists: str
    raw: bool
    limit: int | None


class BlockSettings(BaseModel):
    timeout: float | None = Field(description="seconds; null: none")
    retries: RetriesOut | None = Field(description="null: the pipeline's")
    dynamic: bool
    reduce: bool
    profile: str
    sensor_interval: float | None = Field(description="sensors only: seconds between polls")
    sql: SqlSettingsOut | None = Field(description="SQL blocks only")


class BlockOut(BaseModel):
    name: str
    type: str
    file: str
    language: Literal["python", "sql"]
    upstream: list[str]
    settings: BlockSettings
    line: int | None = Field(description="where the block is in pipeline.yaml")


class Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    upstream: str = Field(alias="from", max_length=200)
    downstream: str = Field(alias="to", max_length=200)


class AlertOut(BaseModel):
    urls: list[str] = Field(description="masked: the scheme only")
    on: list[str]
    title: str | None
    body: str | None


class PipelineSettings(BaseModel):
    retries: RetriesOut
    concurrency: int | None
    max_active_runs: int | None
    sla: float | None = Field(description="seconds")
    resume_on_crash: bool
    alerts: list[AlertOut]


class TriggerSummary(BaseModel):
    name: str
    type: str
    schedule: str
    enabled: bool
    last_slot: str | None
    next_slot: str | None


class PipelineDetail(BaseModel):
    name: str
    description: str
    blocks: list[BlockOut]
    edges: list[Edge]
    variables: dict[str, Any]
    settings: PipelineSettings
    triggers: list[TriggerSummary]


class NewPipeline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=10_000)
    copy_of: str | None = Field(
        default=None,
        max_length=100,
        description="a pipeline to copy (its blocks, each with its own copy of the file,"
        " edges, variables and settings; not its triggers); empty: a blank pipeline",
    )


class PipelineText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaml: Text = Field(description="the whole pipeline.yaml")


class PipelineChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=10_000, description="'': none")
    variables: Variables | None = Field(default=None, description="replaces them all; {}: none")


class Problem(BaseModel):
    file: str | None
    line: int | None
    message: str
    hint: str | None


class ValidationReport(BaseModel):
    ok: bool
    problems: list[Problem]


# -- routes --------------------------------------------------------------------------------


@router.get("/pipelines", response_model=list[PipelineSummary])
def list_pipelines(_: Viewer, state: State) -> list[PipelineSummary]:
    """Every pipeline with its block and trigger counts, last run and next scheduled run."""
    project = state.project()
    names = sorted(project.pipelines)
    last = last_runs(state.runs, names)
    triggers = state.schedules.triggers()
    upcoming = next_runs(state, triggers)
    counts = Counter(t.pipeline for t in triggers)
    return [
        PipelineSummary(
            name=name,
            description=project.pipelines[name].description,
            blocks=len(project.pipelines[name].blocks),
            triggers=counts[name],
            last_run=last.get(name),
            next_run=upcoming.get(name),
        )
        for name in names
    ]


@router.get("/pipelines/{name}", response_model=PipelineDetail)
def get_pipeline(name: str, principal: Viewer, state: State) -> PipelineDetail:
    """Blocks, edges, variables, settings (alert URLs masked) and triggers. To a viewer,
    secret-looking variables show as *** (as in runs); editors see them to edit them."""
    masked = not principal.role.allows(Role.EDITOR)
    return pipeline_detail(state, state.project(), name, masked=masked)


@router.get("/pipelines/{name}/yaml", response_model=PipelineText)
def get_pipeline_text(name: str, _: Editor, state: State) -> PipelineText:
    """The pipeline.yaml as written (editors only: alert URLs in it may hold secrets)."""
    path = editing.pipeline_file(state.root, name)
    return PipelineText(yaml=path.read_bytes().decode("utf-8", errors="replace"))


@router.post("/pipelines", response_model=PipelineSummary, status_code=201)
def create_pipeline(
    body: NewPipeline, request: Request, principal: Editor, state: State
) -> PipelineSummary:
    """A new pipeline, ``pipelines/<name>/pipeline.yaml``: with no blocks, or a copy of
    ``copy_of`` with copies of its block files. 409 if it (or a file to copy to) exists."""
    try:
        if body.copy_of:
            editing.copy_pipeline(state.root, body.copy_of, body.name, body.description or None)
        else:
            editing.create_pipeline(state.root, body.name, body.description)
    except editing.AlreadyExists as exc:
        raise HTTPException(409, detail=exc.message) from None
    spec = reload_project(state).pipeline(body.name)
    copied = {"copy_of": body.copy_of} if body.copy_of else {}
    audit(request, principal, "pipeline.created", body.name, **copied)
    return PipelineSummary(
        name=body.name,
        description=spec.description,
        blocks=len(spec.block_names),
        last_run=None,
        next_run=None,
    )


@router.put("/pipelines/{name}", response_model=PipelineDetail)
def replace_pipeline(
    name: str, body: PipelineText, request: Request, principal: Editor, state: State
) -> PipelineDetail:
    """Replace pipeline.yaml with ``yaml``. Invalid: 422 with the problems, file unchanged."""
    editing.replace_pipeline_text(state.root, name, body.yaml)
    audit(request, principal, "pipeline.updated", name, how="replaced")
    return pipeline_detail(state, reload_project(state), name)


@router.patch("/pipelines/{name}", response_model=PipelineDetail)
def change_pipeline(
    name: str, body: PipelineChange, request: Request, principal: Editor, state: State
) -> PipelineDetail:
    """Set the description and/or the variables (comments in pipeline.yaml stay)."""
    values = body.model_dump(include=body.model_fields_set)
    if not values:
        raise UserInputError("nothing to change", hint="send description and/or variables")
    editing.set_pipeline_values(state.root, name, values)
    audit(request, principal, "pipeline.updated", name, changed=sorted(values))
    return pipeline_detail(state, reload_project(state), name)


@router.delete("/pipelines/{name}", status_code=204)
def delete_pipeline(name: str, request: Request, principal: Editor, state: State) -> None:
    """Remove pipeline.yaml and triggers.yaml (and the folder when nothing else is in it).

    Block files are all kept, shared or not: they are code, and other pipelines may use
    them; delete them through the files API if they are no longer wanted. The run history
    is kept too."""
    removed = editing.delete_pipeline(state.root, name)
    reload_project(state)
    audit(request, principal, "pipeline.deleted", name, removed=removed)


@router.post("/validate", response_model=ValidationReport)
def validate_project(_: Viewer, state: State) -> ValidationReport:
    """Check the whole project, triggers included: what ``treadle validate`` reports."""
    return _report(project_check(state))


@router.post("/pipelines/{name}/validate", response_model=ValidationReport)
def validate_pipeline(name: str, _: Viewer, state: State) -> ValidationReport:
    """Check the project and report the problems in this pipeline's files."""
    editing.pipeline_file(state.root, name)  # 404 for an unknown pipeline
    files = editing.pipeline_files(state.root, name)
    return _report([p for p in project_check(state) if p.path in files])


# -- helpers shared with blocks.py ---------------------------------------------------------


def reload_project(state: ServerState) -> Project:
    """The project reread now: a change written a moment ago may share its file's mtime."""
    state.scheduler.reload(state.scheduler.clock.now(), force=True)
    return state.scheduler.project


def pipeline_detail(
    state: ServerState, project: Project, name: str, *, masked: bool = False
) -> PipelineDetail:
    pipeline = project.pipeline(name)  # 404 with "did you mean"
    variables = dict(pipeline.variables)
    if masked:
        variables = masked_variables(variables, secret_values(state.root))
    return PipelineDetail(
        name=pipeline.name,
        description=pipeline.description,
        blocks=[block_out(b) for b in pipeline.blocks],
        edges=[Edge(upstream=u, downstream=b.name) for b in pipeline.blocks for u in b.upstream],
        variables=variables,
        settings=_settings(pipeline),
        triggers=[TriggerSummary(**t) for t in _triggers(state, name)],
    )


def block_out(block: BlockSpec) -> BlockOut:
    sql = block.sql
    return BlockOut(
        name=block.name,
        type=block.type.value,
        file=block.file,
        language="sql" if block.is_sql else "python",
        upstream=list(block.upstream),
        settings=BlockSettings(
            timeout=block.timeout,
            retries=_retries(block.retries) if block.retries else None,
            dynamic=block.dynamic,
            reduce=block.reduce,
            profile=block.profile,
            sensor_interval=block.sensor_interval if block.type is BlockType.SENSOR else None,
            sql=SqlSettingsOut(
                table=sql.table,
                db_schema=sql.schema,
                if_exists=sql.if_exists,
                raw=sql.raw,
                limit=sql.limit,
            )
            if block.is_sql
            else None,
        ),
        line=block.line,
    )


def last_runs(runs: RunStore, pipelines: list[str]) -> dict[str, LastRun]:
    """The newest run of each pipeline (not counting one block run from the editor), in one
    query: one lookup per pipeline on the index (project, pipeline, created_at), however
    many runs the history holds."""
    if not pipelines:
        return {}
    names = {f"p{i}": name for i, name in enumerate(pipelines)}
    newest = ", ".join(
        f"(SELECT id FROM pipeline_runs WHERE project = :project AND pipeline = :{key} "
        "AND (trigger IS NULL OR trigger <> :block_trigger) "
        "ORDER BY created_at DESC, id DESC LIMIT 1)"
        for key in names
    )
    text = (
        "SELECT id, pipeline, status, created_at, started_at, finished_at "
        f"FROM pipeline_runs WHERE id IN ({newest})"
    )
    with runs.db.transaction(write=False) as tx:
        rows = tx.all(text, {"project": runs.project, "block_trigger": BLOCK_TRIGGER, **names})
    t = runs.db.read_ts
    return {
        row[1]: LastRun(
            run_id=row[0],
            status=row[2],
            created_at=iso(t(row[3])),
            started_at=iso(t(row[4])),
            finished_at=iso(t(row[5])),
        )
        for row in rows
    }


def next_runs(state: ServerState, triggers: list[TriggerRecord]) -> dict[str, str]:
    """Each pipeline's soonest next slot over its enabled schedule triggers (``triggers``:
    the store's, just read).

    Kept until that slot passes or a trigger changes (a cron costs ~0.25 ms to expand, per
    trigger and request)."""
    scheduler = state.scheduler
    now = scheduler.clock.now()
    key = tuple((t.id, t.fingerprint, t.enabled) for t in triggers)
    cached = _next_slots.get(scheduler)
    if cached is not None and cached[0] == key and (cached[1] is None or now < cached[1]):
        return cached[2]
    soonest = _soonest_slots(scheduler.describe_triggers(now))
    until = min((datetime.fromisoformat(slot) for slot in soonest.values()), default=None)
    _next_slots[scheduler] = (key, until, soonest)
    return soonest


def _soonest_slots(triggers: list[dict[str, Any]]) -> dict[str, str]:
    soonest: dict[str, str] = {}
    for row in triggers:
        slot, pipeline = row["next_slot"], row["pipeline"]
        if slot and (
            pipeline not in soonest
            or datetime.fromisoformat(slot) < datetime.fromisoformat(soonest[pipeline])
        ):
            soonest[pipeline] = slot
    return soonest


def project_check(state: ServerState) -> list[UserInputError]:
    """The problems ``treadle validate`` reports: the project's files, else the triggers'."""
    try:
        project = load_project(state.root)
    except ProjectInvalid as exc:
        return list(exc.problems)
    report = SyncReport()
    read_all_triggers(project, report)
    return report.problems


# -- rendering -----------------------------------------------------------------------------


def _report(problems: list[UserInputError]) -> ValidationReport:
    return ValidationReport(
        ok=not problems,
        problems=[
            Problem(file=p.path, line=p.line, message=p.message, hint=p.hint) for p in problems
        ],
    )


def _retries(policy: RetryPolicy) -> RetriesOut:
    return RetriesOut(
        count=policy.count, delay=policy.delay, backoff=policy.backoff, max_delay=policy.max_delay
    )


def _settings(pipeline: Pipeline) -> PipelineSettings:
    return PipelineSettings(
        retries=_retries(pipeline.retries),
        concurrency=pipeline.concurrency,
        max_active_runs=pipeline.max_active_runs,
        sla=pipeline.sla,
        resume_on_crash=pipeline.resume_on_crash,
        alerts=[
            AlertOut(
                urls=[masked_url(u) for u in alert.urls],
                on=sorted(event.value for event in alert.on),
                title=alert.title,
                body=alert.body,
            )
            for alert in pipeline.alerts
        ],
    )


def masked_url(url: str) -> str:
    """``slack://T0/B0/xyz`` → ``slack://***``: apprise URLs carry their tokens inside."""
    scheme = _SCHEME.match(url)
    return f"{scheme[1]}://***" if scheme else "***"


def _triggers(state: ServerState, pipeline: str) -> list[dict[str, Any]]:
    rows = state.scheduler.describe_triggers(state.scheduler.clock.now())
    keys = TriggerSummary.model_fields
    return [{k: row[k] for k in keys} for row in rows if row["pipeline"] == pipeline]
