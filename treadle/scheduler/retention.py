"""Keep disk use bounded: outputs, logs and run history older than ``retention:`` go.

``clean`` does it now (``treadle clean``); ``clean_if_due`` does it at most once a day,
after a run, so a project that only ever runs ``treadle run`` from cron stays small too.
A running run's outputs and logs are never touched.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from treadle.project.model import Project
from treadle.store import RunStore

CLEAN_EVERY = 86400.0  # seconds between automatic cleanups
STALE_AFTER = 3600.0  # seconds: a temporary file this old was left by a killed process
MARKER = "last_clean"


@dataclass
class CleanReport:
    runs: list[str] = field(default_factory=list)  # removed from the history
    folders: list[Path] = field(default_factory=list)  # output and log folders removed
    bytes: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"runs": self.runs, "folders": [str(p) for p in self.folders], "bytes": self.bytes}


def clean(
    project: Project, store: RunStore, *, now: float | None = None, dry_run: bool = False
) -> CleanReport:
    """Remove what retention says is too old; with ``dry_run`` only report it."""
    now = time.time() if now is None else now
    keep = project.settings.retention
    report = CleanReport()
    report.runs = store.delete_runs(now - keep.runs, project=project.settings.name, dry_run=dry_run)
    running = {r.run_id for r in store.list_runs(status="running", limit=10_000)}
    state = project.state_dir
    expired = set(report.runs)
    for folder, max_age in ((state / "outputs", keep.outputs), (state / "logs", keep.logs)):
        for run_dir in _subfolders(folder):
            too_old = now - run_dir.stat().st_mtime > max_age
            if run_dir.name not in running and (too_old or run_dir.name in expired):
                report.folders.append(run_dir)
                report.bytes += _size(run_dir)
                if not dry_run:
                    shutil.rmtree(run_dir, ignore_errors=True)
    for leftover in _stale_temporaries(state / "outputs", now):
        report.bytes += leftover.stat().st_size
        if not dry_run:
            leftover.unlink(missing_ok=True)
    if not dry_run:
        _touch(state / MARKER)
    return report


def _stale_temporaries(outputs: Path, now: float) -> list[Path]:
    """Half-written outputs left by a killed process (an hour old at least)."""
    try:
        found = list(outputs.glob("*/.*.tmp"))
    except OSError:
        return []
    return [f for f in found if now - f.stat().st_mtime > STALE_AFTER]


def clean_if_due(project: Project, store: RunStore, now: float | None = None) -> CleanReport | None:
    """``clean`` when the last one was more than ``CLEAN_EVERY`` ago (a stat, otherwise)."""
    now = time.time() if now is None else now
    try:
        if now - (project.state_dir / MARKER).stat().st_mtime < CLEAN_EVERY:
            return None
    except FileNotFoundError:
        _touch(project.state_dir / MARKER)  # a new project: start counting from now
        return None
    return clean(project, store, now=now)


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return []


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
