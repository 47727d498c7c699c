"""``/pipelines`` (every pipeline, its last and next run) and ``/pipelines/{name}``: the
editor — the graph beside the blocks' code, run a block and see its output."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from treadle.server.api import blocks as blocks_api
from treadle.server.api import pipelines as pipelines_api
from treadle.server.pages.graph import NODE_H, NODE_W, layered_layout
from treadle.server.pages.rendering import PageState, User, page

router = APIRouter(include_in_schema=False)


@router.get("/pipelines", response_class=HTMLResponse)
def pipeline_list(request: Request, user: User, state: PageState) -> HTMLResponse:
    pipelines = [
        {**p.model_dump(), "last_run": _with_duration(p.last_run)}
        for p in pipelines_api.list_pipelines(user, state)
    ]
    return page(request, "pipelines.html", user, section="pipelines", pipelines=pipelines)


@router.get("/pipelines/{name}", response_class=HTMLResponse)
def pipeline_editor(name: str, request: Request, user: User, state: PageState) -> HTMLResponse:
    detail = pipelines_api.get_pipeline(name, user, state)
    root = state.root
    sources = {b.name: (root / b.file).read_text(encoding="utf-8") for b in detail.blocks}
    graph = layered_layout(
        {b.name: list(b.upstream) for b in detail.blocks}, {b.name: b.type for b in detail.blocks}
    )
    shared = {b.name: _other_users(state, name, b.file) for b in detail.blocks}
    problems = [
        {"file": p.path, "line": p.line, "message": p.message, "hint": p.hint}
        for p in pipelines_api.project_check(state)
    ]
    return page(
        request,
        "pipeline.html",
        user,
        section="pipelines",
        pipeline=detail,
        sources=sources,
        shared=shared,
        graph=graph,
        node_w=NODE_W,
        node_h=NODE_H,
        templates=blocks_api.list_templates(user),
        problems=problems,
        variables_json=json.dumps(detail.variables, default=str),
    )


def _other_users(state: PageState, pipeline: str, file: str) -> list[str]:
    """The other pipelines with a block of the same file (removing it here keeps it)."""
    project = state.scheduler.project
    return sorted(
        other.name
        for other in project.pipelines.values()
        if other.name != pipeline and any(b.file == file for b in other.blocks)
    )


def _with_duration(last_run: pipelines_api.LastRun | None) -> dict | None:
    if last_run is None:
        return None
    duration = None
    if last_run.started_at and last_run.finished_at:
        started = datetime.fromisoformat(last_run.started_at)
        duration = (datetime.fromisoformat(last_run.finished_at) - started).total_seconds()
    return {**last_run.model_dump(), "duration": duration}
