"""``GET /api/v1/audit`` (admin): the audit trail, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from treadle.server.auth import Admin, State
from treadle.server.inputs import MAX_ID

router = APIRouter(tags=["audit"])


class AuditEventOut(BaseModel):
    id: int
    at: str | None
    actor: str
    action: str
    target: str
    origin: str
    detail: dict[str, Any]


@router.get("/audit", response_model=list[AuditEventOut])
def audit_trail(
    _: Admin,
    state: State,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="an event id: older events")
    ] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[
        str | None, Query(max_length=100, description="e.g. run.started, or run.* for a prefix")
    ] = None,
) -> list[AuditEventOut]:
    events = state.audit.events(limit=limit, before=before, actor=actor, action=action)
    return [AuditEventOut(**e.to_dict()) for e in events]
