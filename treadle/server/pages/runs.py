"""``/runs`` (filters, pages) and ``/runs/{id}``: a run's timeline, its blocks and their
logs. While a run is active its page follows the run's event stream (``static/run.js``):
log lines are appended as they come, and the part that shows statuses (``/runs/{id}/live``)
is fetched again when a status changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from treadle.events import RunStatus
from treadle.server.api import runs as runs_api
from treadle.server.pages.rendering import PageState, User, page

router = APIRouter(include_in_schema=False)
TRIGGERS = ("ui", "api", "schedule", "event", "backfill", "block", "cli")
ACTIVE = ("queued", "running")
LABEL_W, CHART_W, ROW_H = 190, 520, 24


@router.get("/runs", response_class=HTMLResponse)
def run_list(
    request: Request,
    user: User,
    state: PageState,
    pipeline: str = "",
    status: str = "",
    trigger: str = "",
    before: str = "",
    day_from: str = "",
    day_to: str = "",
) -> HTMLResponse:
    chosen = RunStatus(status) if status in {s.value for s in RunStatus} else None
    runs = runs_api.list_runs(
        user, state, pipeline=pipeline or None, status=chosen, trigger=trigger or None,
        limit=50, before=before or None, since=_day(day_from), until=_day(day_to, after=True),
    )  # fmt: skip
    filters = {
        "pipeline": pipeline, "status": status, "trigger": trigger,
        "day_from": day_from, "day_to": day_to,
    }  # fmt: skip
    next_query = urlencode({**{k: v for k, v in filters.items() if v}, "before": runs.next or ""})
    return page(
        request,
        "runs.html",
        user,
        section="runs",
        page=runs,
        filters=filters,
        next_query=next_query,
        pipeline_names=sorted(state.scheduler.project.pipelines),
        statuses=[s.value for s in RunStatus],
        triggers=TRIGGERS,
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: str, request: Request, user: User, state: PageState) -> HTMLResponse:
    live = _live(run_id, user, state)
    run = live["run"]
    logs = [
        (b.block, runs_api.block_log(run.run_id, b.block, user, state).text)
        for b in run.blocks
        if b.status.value != "queued"
    ]
    return page(request, "run.html", user, section="runs", logs=logs, **live)


@router.get("/runs/{run_id}/live", response_class=HTMLResponse)
def run_live(run_id: str, request: Request, user: User, state: PageState) -> HTMLResponse:
    """The part of the run page that shows statuses (fetched again when one changes)."""
    return page(request, "run_live.html", user, **_live(run_id, user, state))


def _live(run_id: str, user: User, state: PageState) -> dict:
    run = runs_api.show_run(run_id, user, state)
    return {"run": run, "active": run.status.value in ACTIVE, "timeline": timeline(run)}


@dataclass(frozen=True)
class Bar:
    block: str
    status: str
    x: float
    y: int
    w: float
    seconds: float


@dataclass(frozen=True)
class Timeline:
    bars: list[Bar]
    width: int
    height: int


def timeline(run: runs_api.RunDetailOut) -> Timeline:
    """One bar per block that started, placed by its start and finish within the run."""
    spans = [
        (b.block, b.status.value, _time(b.started_at), _time(b.finished_at))
        for b in run.blocks
        if b.started_at
    ]
    if not spans:
        return Timeline([], 0, 0)
    start = min(s for _, _, s, _ in spans)
    now = datetime.now().astimezone().timestamp()
    end = max((f or now) for _, _, _, f in spans)
    scale = CHART_W / max(end - start, 1e-3)
    bars = [
        Bar(block, status, LABEL_W + (s - start) * scale, 4 + i * ROW_H,
            max(((f or now) - s) * scale, 2.0), (f or now) - s)
        for i, (block, status, s, f) in enumerate(spans)
    ]  # fmt: skip
    return Timeline(bars, LABEL_W + CHART_W + 10, 8 + len(bars) * ROW_H)


def _day(text: str, *, after: bool = False) -> datetime | None:
    """The start of a ``YYYY-MM-DD`` day in UTC (of the next day with ``after``); a value
    that is not a date is ignored, as an empty field is."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return day + timedelta(days=1) if after else day


def _time(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None
