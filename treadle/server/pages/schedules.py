"""``/triggers`` and ``/backfills``: schedules with their next fire times (previewed as
you type), API trigger tokens, and backfills previewed before they are made."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from treadle.server.api import backfills as backfills_api
from treadle.server.api import triggers_admin as triggers_api
from treadle.server.pages.rendering import PageState, User, page

router = APIRouter(include_in_schema=False)


@router.get("/triggers", response_class=HTMLResponse)
def trigger_list(
    request: Request, user: User, state: PageState, pipeline: str = ""
) -> HTMLResponse:
    """Every trigger, or one pipeline's (``?pipeline=``)."""
    triggers = triggers_api.list_all_triggers(user, state)
    return page(
        request,
        "triggers.html",
        user,
        section="triggers",
        triggers=[t for t in triggers if t.pipeline == pipeline] if pipeline else triggers,
        shown_pipeline=pipeline,
        pipeline_names=sorted(state.scheduler.project.pipelines),
    )


@router.get("/backfills", response_class=HTMLResponse)
def backfill_list(
    request: Request, user: User, state: PageState, pipeline: str = ""
) -> HTMLResponse:
    """Every backfill; ``?pipeline=`` chooses that pipeline in the form for a new one."""
    return page(
        request,
        "backfills.html",
        user,
        section="backfills",
        backfills=backfills_api.list_backfills(user, state),
        pipeline_names=sorted(state.scheduler.project.pipelines),
        chosen_pipeline=pipeline,
    )
