"""``POST /api/v1/triggers/{pipeline}/{trigger}/runs``: start a run of an API trigger.

The caller proves itself with the trigger's token (``treadle triggers token``) as
``Authorization: Bearer <token>``; a missing or wrong token gets 401 and starts nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from treadle.errors import UnknownName
from treadle.scheduler.service import Scheduler
from treadle.server.auth import audit
from treadle.server.inputs import Variables
from treadle.server.state import server_state
from treadle.store.scheduling import TriggerRecord

router = APIRouter(prefix="/triggers", tags=["triggers"])
_bearer = HTTPBearer(auto_error=False)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variables: Variables = Field(default_factory=dict, description="runtime variables")
    execution_date: datetime | None = Field(
        default=None, description="the run's execution date (default: now)"
    )


class RunCreated(BaseModel):
    run_id: str
    pipeline: str
    trigger: str
    status: str = "queued"


def _scheduler(request: Request) -> Scheduler:
    return server_state(request).scheduler


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def authorized_trigger(
    pipeline: str,
    trigger: str,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TriggerRecord:
    """The API trigger the bearer token opens; 401 for anything else. A dependency, so
    it answers before the body is looked at: a caller without the token learns nothing,
    not even whether the trigger exists."""
    scheduler = _scheduler(request)
    if credentials is None:
        raise _unauthorized("send the trigger's token as `Authorization: Bearer <token>`")
    record = scheduler.schedules.trigger(pipeline, trigger)
    if (
        record is None
        or record.type != "api"
        or not scheduler.schedules.token_matches(record.id, credentials.credentials)
    ):
        raise _unauthorized("unknown trigger or wrong token")
    try:
        return scheduler.api_trigger(pipeline, trigger)  # as the file says now
    except UnknownName:
        raise _unauthorized("unknown trigger or wrong token") from None


@router.post("/{pipeline}/{trigger}/runs", status_code=201, response_model=RunCreated)
def start_run(
    record: Annotated[TriggerRecord, Depends(authorized_trigger)],
    request: Request,
    body: RunRequest | None = None,
) -> RunCreated:
    """Queue a run of the trigger's pipeline, with the body's variables and date."""
    body = body or RunRequest()
    run_id = _scheduler(request).queue_api_run(record, body.variables, body.execution_date)
    audit(
        request,
        f"trigger:{record.pipeline}.{record.name}",
        "run.started",
        run_id,
        pipeline=record.pipeline,
        trigger=record.name,
    )
    return RunCreated(run_id=run_id, pipeline=record.pipeline, trigger=record.name)
