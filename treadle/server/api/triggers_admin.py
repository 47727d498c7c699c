"""Triggers, managed: ``/api/v1/triggers`` and ``/api/v1/pipelines/{pipeline}/triggers``.

Viewers list triggers and preview their next fire times; editors create, change, enable,
disable and delete them, and rotate API triggers' tokens. Every change is written to the
pipeline's ``triggers.yaml`` by ``save_trigger``/``remove_trigger`` (comments and the other
triggers stay as written; invalid content is refused and the file left as it was), then
the scheduler rereads the files so the store follows at once.

(``POST /api/v1/triggers/{pipeline}/{trigger}/runs``, called with a trigger's own token,
is ``triggers.py``.)
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from treadle.engine.api import merge_variables
from treadle.errors import ProjectInvalid, UserInputError, did_you_mean, unknown_name_error
from treadle.project.editing import EDIT_LOCK
from treadle.project.masking import masked_variables, secret_values
from treadle.project.triggers import (
    TriggerSpec,
    TriggerType,
    load_triggers,
    load_zone,
    remove_trigger,
    save_trigger,
    trigger_from_dict,
)
from treadle.scheduler.schedules import schedule_for
from treadle.scheduler.triggering import to_datetime
from treadle.server.auth import Editor, Principal, State, Viewer, audit
from treadle.server.inputs import valid_unicode
from treadle.server.state import ServerState
from treadle.store.scheduling import hash_token

router = APIRouter(tags=["triggers"])

MAX_PREVIEW = 100


class TriggerIn(BaseModel):
    """A trigger as its triggers.yaml keys, in JSON. Unknown keys are refused by the
    rules of triggers.yaml (with a "did you mean")."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, max_length=200, description="required to create")
    type: str | None = Field(default=None, description="api for an API trigger")
    schedule: str | None = Field(default=None, description='a cron ("0 5 * * *") or @daily …')
    every: str | float | None = Field(default=None, description="a duration: 15m, 6h, 1d …")
    after: str | None = Field(default=None, description="an event trigger: after this pipeline")
    timezone: str | None = Field(default=None, description="an IANA name; default UTC")
    start: str | None = Field(default=None, description="2024-01-01 or 2024-01-01 05:00")
    end: str | None = None
    catchup: bool | None = None
    max_active_runs: int | None = None
    skip_if_running: bool | None = None
    variables: dict[str, Any] | None = None
    enabled: bool | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _unicode(self) -> TriggerIn:
        """JSON may carry a lone surrogate (``\\ud800``), which triggers.yaml cannot hold."""
        valid_unicode(self.model_dump())
        return self

    def as_yaml(self) -> dict[str, Any]:
        """The keys given, as triggers.yaml would hold them (``null`` is "not given")."""
        return self.model_dump(exclude_none=True)


class TriggerOut(BaseModel):
    pipeline: str
    name: str
    type: str
    schedule: str = Field(description="the cron or preset, every …, or after …")
    spec: dict[str, Any] = Field(description="its triggers.yaml keys; secret variables masked")
    enabled: bool
    has_token: bool
    last_fire: str | None = Field(description="the latest slot that fired, in its time zone")
    next_fire: str | None = Field(description="the next slot (enabled schedule triggers)")


class TokenOut(BaseModel):
    token: str = Field(description="shown this once; only its hash is kept")
    url: str = Field(description="POST here with `Authorization: Bearer <token>`")


class PreviewOut(BaseModel):
    pipeline: str
    trigger: str
    timezone: str
    enabled: bool
    fire_times: list[str] = Field(description="the next slots, in the trigger's time zone")


# -- reading -----------------------------------------------------------------------------


@router.get("/triggers", response_model=list[TriggerOut])
def list_all_triggers(_: Viewer, state: State) -> list[TriggerOut]:
    """Every trigger of every pipeline, with its last and next fire."""
    return _trigger_rows(state)


@router.get("/pipelines/{pipeline}/triggers", response_model=list[TriggerOut])
def list_pipeline_triggers(pipeline: str, _: Viewer, state: State) -> list[TriggerOut]:
    """The pipeline's triggers, with their last and next fire."""
    state.project().pipeline(pipeline)
    return _trigger_rows(state, pipeline)


@router.get("/pipelines/{pipeline}/triggers/{name}/preview", response_model=PreviewOut)
def preview_trigger(
    pipeline: str,
    name: str,
    _: Viewer,
    state: State,
    count: Annotated[int, Query(ge=1, le=MAX_PREVIEW, description="how many fire times")] = 10,
) -> PreviewOut:
    """The next ``count`` fire times of a schedule trigger, as its file says now."""
    spec = _existing_spec(state, pipeline, name)
    if spec.type is not TriggerType.SCHEDULE:
        raise UserInputError(f"trigger {pipeline}.{name} ({spec.type.value}) has no schedule")
    now = state.scheduler.clock.now()
    return PreviewOut(
        pipeline=pipeline,
        trigger=name,
        timezone=spec.timezone,
        enabled=spec.enabled,
        fire_times=[t.isoformat() for t in _next_fire_times(state, spec, now, count)],
    )


@router.post("/pipelines/{pipeline}/triggers/preview", response_model=PreviewOut)
def preview_new_trigger(
    pipeline: str,
    body: TriggerIn,
    _: Viewer,
    state: State,
    count: Annotated[int, Query(ge=1, le=MAX_PREVIEW, description="how many fire times")] = 5,
) -> PreviewOut:
    """The next ``count`` fire times of a schedule trigger as ``body`` describes it,
    checked as creating it would be; nothing is saved (the UI shows them as you type)."""
    spec = _checked_spec(state, pipeline, body.as_yaml())
    if spec.type is not TriggerType.SCHEDULE:
        raise UserInputError(f"a {spec.type.value} trigger has no schedule to preview")
    now = state.scheduler.clock.now()
    return PreviewOut(
        pipeline=pipeline,
        trigger=spec.name,
        timezone=spec.timezone,
        enabled=spec.enabled,
        fire_times=[t.isoformat() for t in _next_fire_times(state, spec, now, count)],
    )


# -- changing ----------------------------------------------------------------------------


@router.post("/pipelines/{pipeline}/triggers", response_model=TriggerOut, status_code=201)
def create_trigger(
    pipeline: str, body: TriggerIn, request: Request, principal: Editor, state: State
) -> TriggerOut:
    """Add a trigger to the pipeline's triggers.yaml (409 when the name is taken)."""
    spec = _checked_spec(state, pipeline, body.as_yaml())
    with EDIT_LOCK:
        if spec.name in _file_specs(state, pipeline):
            raise HTTPException(
                409, detail=f"pipeline {pipeline} already has a trigger {spec.name!r}; PUT it"
            )
        _save(state, spec)
    return _changed(state, request, principal, "trigger.created", spec)


@router.put("/pipelines/{pipeline}/triggers/{name}", response_model=TriggerOut)
def update_trigger(
    pipeline: str, name: str, body: TriggerIn, request: Request, principal: Editor, state: State
) -> TriggerOut:
    """Replace the trigger ``name`` with the body (keys left out take their defaults)."""
    if body.name is not None and body.name != name:
        raise UserInputError(
            f"the body names trigger {body.name!r}, the path {name!r}",
            hint="to rename a trigger, delete it and create the new one",
        )
    with EDIT_LOCK:
        _existing_spec(state, pipeline, name)
        spec = _checked_spec(state, pipeline, {**body.as_yaml(), "name": name})
        _save(state, spec)
    return _changed(state, request, principal, "trigger.updated", spec)


@router.post("/pipelines/{pipeline}/triggers/{name}/enable", response_model=TriggerOut)
def enable_trigger(
    pipeline: str, name: str, request: Request, principal: Editor, state: State
) -> TriggerOut:
    """Turn the trigger on (``enabled: true`` in its triggers.yaml)."""
    return _set_enabled(state, request, principal, pipeline, name, True)


@router.post("/pipelines/{pipeline}/triggers/{name}/disable", response_model=TriggerOut)
def disable_trigger(
    pipeline: str, name: str, request: Request, principal: Editor, state: State
) -> TriggerOut:
    """Turn the trigger off: it fires no more, and its queued runs wait."""
    return _set_enabled(state, request, principal, pipeline, name, False)


@router.delete("/pipelines/{pipeline}/triggers/{name}", status_code=204)
def delete_trigger(
    pipeline: str, name: str, request: Request, principal: Editor, state: State
) -> Response:
    """Remove the trigger from its triggers.yaml."""
    state.project().pipeline(pipeline)
    with EDIT_LOCK, _problems_listed():
        remove_trigger(state.root, pipeline, name)
    _resync(state)
    audit(request, principal, "trigger.deleted", f"{pipeline}.{name}")
    return Response(status_code=204)


@router.post(
    "/pipelines/{pipeline}/triggers/{name}/token", response_model=TokenOut, status_code=201
)
def rotate_token(
    pipeline: str, name: str, request: Request, principal: Editor, state: State
) -> TokenOut:
    """A new token for an API trigger, shown once; the old one stops working at once."""
    spec = _existing_spec(state, pipeline, name)
    if spec.type is not TriggerType.API:
        raise UserInputError(
            f"trigger {pipeline}.{name} ({spec.type.value}) has no token: only API triggers do",
            hint="an API trigger has `type: api`",
        )
    record = state.scheduler.api_trigger(pipeline, name, enabled_only=False)
    token = secrets.token_urlsafe(32)
    state.schedules.set_token(record.id, hash_token(token), time.time())
    audit(request, principal, "trigger.token_rotated", f"{pipeline}.{name}")
    path = request.url_for("start_run", pipeline=pipeline, trigger=name).path
    return TokenOut(token=token, url=state.project().settings.base_url + path)


# -- helpers -----------------------------------------------------------------------------


def _trigger_rows(state: ServerState, pipeline: str | None = None) -> list[TriggerOut]:
    """The store's triggers (as the scheduler describes them), with their specs."""
    state.project()  # rereads changed files, so the store is current
    specs = {(r.pipeline, r.name): r.spec for r in state.schedules.triggers(pipeline)}
    masked = secret_values(state.root)
    rows = []
    for row in state.scheduler.describe_triggers(state.scheduler.clock.now()):
        spec = specs.get((row["pipeline"], row["name"]))
        if spec is None:
            continue
        rows.append(
            TriggerOut(
                pipeline=row["pipeline"],
                name=row["name"],
                type=row["type"],
                schedule=row["schedule"],
                spec=_masked_spec(spec, masked),
                enabled=row["enabled"],
                has_token=row["has_token"],
                last_fire=row["last_slot"],
                next_fire=row["next_slot"],
            )
        )
    return rows


def _masked_spec(spec: Mapping[str, Any], masked: tuple[str, ...]) -> dict[str, Any]:
    shown = dict(spec)
    if shown.get("variables"):
        shown["variables"] = masked_variables(shown["variables"], masked)
    return shown


def _trigger_out(state: ServerState, spec: TriggerSpec) -> TriggerOut:
    """The trigger as the store has it now; as its spec says when the store could not
    follow (another file of the project is invalid)."""
    for row in _trigger_rows(state, spec.pipeline):
        if row.name == spec.name:
            return row
    return TriggerOut(
        pipeline=spec.pipeline,
        name=spec.name,
        type=spec.type.value,
        schedule="",
        spec=_masked_spec(spec.to_dict(), secret_values(state.root)),
        enabled=spec.enabled,
        has_token=False,
        last_fire=None,
        next_fire=None,
    )


def _file_specs(state: ServerState, pipeline: str) -> dict[str, TriggerSpec]:
    """The pipeline's triggers as its triggers.yaml says now (404: no such pipeline)."""
    project = state.project()
    project.pipeline(pipeline)
    with _problems_listed():
        specs = load_triggers(state.root, pipeline, project.pipelines)
    return {spec.name: spec for spec in specs}


def _existing_spec(state: ServerState, pipeline: str, name: str) -> TriggerSpec:
    specs = _file_specs(state, pipeline)
    if name not in specs:
        raise unknown_name_error(f"trigger of pipeline {pipeline}", name, list(specs))
    return specs[name]


def _checked_spec(state: ServerState, pipeline: str, data: dict[str, Any]) -> TriggerSpec:
    """The trigger ``data`` describes, checked as the scheduler checks triggers.yaml:
    by its own rules, its ``after:`` against the pipelines, its variables against the
    pipeline's (so what is saved is never a file the scheduler then refuses), and its
    schedule computed once."""
    project = state.project()
    target = project.pipeline(pipeline)
    with _problems_listed():
        spec = trigger_from_dict(pipeline, data)
    _check_computable(spec, state.scheduler.clock.now())
    if spec.after is not None and spec.after not in project.pipelines:
        raise UserInputError(
            f"after names an unknown pipeline {spec.after!r}",
            hint=did_you_mean(spec.after, sorted(project.pipelines)),
        )
    merge_variables(target, spec.variables)
    return spec


def _check_computable(spec: TriggerSpec, now: datetime) -> None:
    """Refuse a schedule whose slots cannot be computed (a start in the year 9999, an
    ``every`` of 10^20 days): written, it would make every listing of triggers fail."""
    try:
        spec.to_dict()
        if spec.type is TriggerType.SCHEDULE:
            schedule_for(spec, now).next_after(now)
    except (OverflowError, ValueError) as exc:
        raise UserInputError(
            f"trigger {spec.name!r}: its schedule cannot be computed ({exc})",
            hint="use a start or end before the year 9999 and an every of at most a few years",
        ) from None


@contextmanager
def _problems_listed() -> Iterator[None]:
    """A ``ProjectInvalid`` raised inside becomes one error about the trigger: its one
    problem as it is (message and hint), or every problem listed in the message."""
    try:
        yield
    except ProjectInvalid as exc:
        if len(exc.problems) == 1:
            (problem,) = exc.problems
            path = problem.path or exc.path
            raise UserInputError(problem.message, hint=problem.hint, path=path) from None
        listed = "; ".join(str(problem) for problem in exc.problems)
        count = len(exc.problems)
        raise UserInputError(f"the trigger has {count} problems: {listed}", path=exc.path) from None


def _set_enabled(
    state: ServerState,
    request: Request,
    principal: Principal,
    pipeline: str,
    name: str,
    enabled: bool,
) -> TriggerOut:
    with EDIT_LOCK:
        spec = replace(_existing_spec(state, pipeline, name), enabled=enabled)
        _save(state, spec)
    action = "trigger.enabled" if enabled else "trigger.disabled"
    return _changed(state, request, principal, action, spec)


def _save(state: ServerState, spec: TriggerSpec) -> None:
    """Write ``spec`` into its pipeline's triggers.yaml (checked by ``save_trigger``)."""
    with EDIT_LOCK, _problems_listed():
        save_trigger(state.root, spec.pipeline, spec)


def _changed(
    state: ServerState, request: Request, principal: Principal, action: str, spec: TriggerSpec
) -> TriggerOut:
    """After a write: the store follows the file, the change is audited."""
    _resync(state)
    shown = _trigger_out(state, spec)
    audit(request, principal, action, f"{spec.pipeline}.{spec.name}", spec=shown.spec)
    return shown


def _resync(state: ServerState) -> None:
    state.scheduler.reload(state.scheduler.clock.now(), force=True)


def _next_fire_times(
    state: ServerState, spec: TriggerSpec, now: datetime, count: int
) -> list[datetime]:
    """The next ``count`` slots after ``now``, in the trigger's time zone."""
    record = state.schedules.trigger(spec.pipeline, spec.name)
    first_seen = to_datetime(record.created_at) if record is not None else now
    schedule = schedule_for(spec, first_seen)
    times: list[datetime] = []
    try:
        slot = schedule.next_after(now)
        while slot is not None and len(times) < count:
            times.append(slot)
            slot = schedule.next_after(slot)
    except OverflowError:  # the slots run past the year 9999: there are no more
        pass
    zone = load_zone(spec.timezone)
    return [slot.astimezone(zone) for slot in times]
