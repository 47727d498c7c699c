"""The run history of a project, opened with lost runs noticed: for every command.

Reading the history (``treadle runs list``) must not pay for importing the engine, so
this module knows the store and the project only; ``launch`` builds on it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from treadle.processes import pid_alive
from treadle.project.loader import load_project
from treadle.project.model import Project
from treadle.store import RunStore, open_store

LOST_REASON = "worker lost: the process running it died"


def load(project: str | Path | Project) -> Project:
    return project if isinstance(project, Project) else load_project(project)


@contextmanager
def history(project: Project) -> Iterator[RunStore]:
    """The project's run history (``database_url``, else SQLite under ``.treadle/``)."""
    url = project.settings.database_url or None  # TREADLE_DATABASE_URL wins, in open_store
    store = open_store(project.root, url, project=project.settings.name)
    try:
        yield store
    finally:
        store.close()


def recover_lost_runs(project: Project, store: RunStore, now: float | None = None) -> list[str]:
    """Mark runs whose process died as failed ("worker lost"), and resume those whose
    pipeline says ``resume_on_crash: true`` (in a background ``treadle resume``)."""
    now = time.time() if now is None else now
    lost = store.find_lost_runs(now, project.settings.lost_after, pid_alive)
    for run_id in lost:
        if not store.mark_lost(run_id, LOST_REASON):
            continue  # another process noticed it first, and resumes it if need be
        detail = store.get_run(run_id)
        if detail is not None:
            from treadle.scheduler.notify import alert_stuck

            alert_stuck(project, store, detail.run, LOST_REASON)
        pipeline = project.pipelines.get(detail.run.pipeline) if detail else None
        if pipeline is not None and pipeline.resume_on_crash:
            _resume_in_background(project, run_id)
    return lost


def _resume_in_background(project: Project, run_id: str) -> None:
    logs = project.state_dir / "logs" / run_id  # cleaned with the run's other logs
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "resume.log", "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "treadle.cli", "resume", run_id, "--project", str(project.root)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
