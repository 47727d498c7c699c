"""Commands that read the run history: ``runs list``, ``runs show``, ``logs``, ``clean``."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.cli.app import JsonOption, ProjectOption, app, stdout
from treadle.errors import UserInputError

if TYPE_CHECKING:
    from treadle.store.rows import RunDetail

runs_app = typer.Typer(help="The run history: list runs, show one.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

FOLLOW_POLL = 0.3  # seconds between looks at a log being written


@runs_app.command("list")
def list_runs(
    project: ProjectOption = Path("."),
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The newest runs, with their status."""
    with _history(project) as (_, store):
        runs = store.list_runs(pipeline=pipeline, status=status, limit=limit)
    if as_json:
        _print_json([r.to_dict() for r in runs])
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("run", "pipeline", "status", "started", "duration", "trigger", "reason"):
        table.add_column(column, no_wrap=column != "reason")
    for run in runs:
        data = run.to_dict()
        table.add_row(
            run.run_id, run.pipeline, _styled(run.status.value), _short_time(data["started_at"]),
            _seconds(run.duration), run.trigger or "", run.reason,
        )  # fmt: skip
    if runs:
        stdout().print(table)
    elif pipeline or status:
        stdout().print("no runs match")
    else:
        stdout().print("no runs yet: start one with `treadle run PROJECT PIPELINE`")


@runs_app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="The run (or a unique start of its id).")],
    project: ProjectOption = Path("."),
    as_json: JsonOption = False,
) -> None:
    """A run and its blocks: status, duration, rows, attempts, and why."""
    with _history(project) as (_, store):
        detail = _get(store, run_id)
    if as_json:
        _print_json(detail.to_dict())
        return
    _print_detail(detail)


@app.command()
def logs(
    run_id: Annotated[str, typer.Argument(help="The run (or a unique start of its id).")],
    block: Annotated[str | None, typer.Option(help="Only this block's log.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")
    ] = False,
    project: ProjectOption = Path("."),
) -> None:
    """Print the logs of a run's blocks (print, logging and stderr, secrets masked)."""
    with _history(project) as (loaded, store):
        detail = _get(store, run_id)
        order = [b.block for b in detail.blocks]
        if block is not None and block not in order:
            from treadle.errors import did_you_mean

            raise UserInputError(
                f"run {detail.run_id} has no block {block!r}", hint=did_you_mean(block, order)
            )
        folder = loaded.state_dir / "logs" / detail.run_id
        positions: dict[Path, int] = {}
        while True:
            _print_new_lines(folder, order, block, positions)
            if not follow or store.get_run(detail.run_id).run.status != "running":
                break
            time.sleep(FOLLOW_POLL)
        _print_new_lines(folder, order, block, positions)


@app.command()
def clean(
    project: ProjectOption = Path("."),
    dry_run: Annotated[bool, typer.Option(help="Only say what would be removed.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove outputs, logs and runs older than the project's retention settings."""
    from treadle.scheduler.retention import clean as clean_project

    with _history(project) as (loaded, store):
        report = clean_project(loaded, store, dry_run=dry_run)
    if as_json:
        _print_json({**report.to_dict(), "dry_run": dry_run})
        return
    verb = "would remove" if dry_run else "removed"
    stdout().print(
        f"{verb} {len(report.runs)} runs and {len(report.folders)} folders "
        f"({report.bytes / 1e6:.1f} MB)"
    )


# -- helpers -------------------------------------------------------------------------------


@contextmanager
def _history(path: Path) -> Iterator[tuple[Any, Any]]:
    """The project and its run history, with lost runs noticed first."""
    from treadle.scheduler.history import history, load, recover_lost_runs

    project = load(path)
    with history(project) as store:
        recover_lost_runs(project, store)
        yield project, store


def _get(store: Any, run_id: str) -> RunDetail:
    detail = store.get_run(run_id)
    if detail is None:
        raise UserInputError(f"no run {run_id!r}", hint="`treadle runs list` shows the runs")
    return detail


def _print_detail(detail: RunDetail) -> None:
    from rich.table import Table

    run, data = detail.run, detail.to_dict()
    console = stdout()
    console.print(
        f"[bold]run {run.run_id}[/] of [bold]{run.pipeline}[/]: {_styled(run.status.value)}"
    )
    facts = {
        "execution date": data["execution_date"],
        "started": data["started_at"],
        "finished": data["finished_at"],
        "duration": _seconds(run.duration),
        "started by": " ".join(filter(None, [run.trigger, run.triggered_by])),
        "variables": json.dumps(detail.variables) if detail.variables else "",
        "resumed": f"{run.resumes} time{'s' if run.resumes != 1 else ''}" if run.resumes else "",
        "reason": run.reason,
    }
    for name, value in facts.items():
        if value:
            console.print(f"  {name:<15}{value}", highlight=False)
    table = Table(box=None, header_style="bold")
    for column in ("block", "status", "duration", "rows", "attempts", "why"):
        table.add_column(
            column, justify="right" if column in ("duration", "rows", "attempts") else "left"
        )
    for row in detail.blocks:
        why = row.why or (f"{row.error.type}: {row.error.message}" if row.error else "")
        rows = f"{row.rows:,}" if row.rows is not None else ""
        table.add_row(
            row.block,
            _styled(row.status.value),
            _seconds(row.duration),
            rows,
            str(row.attempts),
            why,
        )
    console.print(table)


def _print_new_lines(
    folder: Path, order: list[str], only: str | None, positions: dict[Path, int]
) -> None:
    """Print what each block's log gained since the last call (pipeline order)."""
    files = sorted(folder.glob("*.log")) if folder.exists() else []
    rank = {name: i for i, name in enumerate(order)}
    files.sort(key=lambda f: (rank.get(f.stem.split(".")[0], len(rank)), f.stem))
    for file in files:
        if only is not None and file.stem.split(".")[0] != only:
            continue
        with open(file, "rb") as handle:
            handle.seek(positions.get(file, 0))
            chunk = handle.read()
            positions[file] = handle.tell()
        if chunk:
            sys.stdout.write(chunk.decode("utf-8", errors="replace"))
    sys.stdout.flush()


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


_STYLES = {"succeeded": "green", "failed": "bold red", "running": "cyan", "cancelled": "magenta"}


def _styled(status: str) -> str:
    return f"[{_STYLES.get(status, 'yellow')}]{status}[/]"


def _seconds(value: float | None) -> str:
    return f"{value:.2f}s" if value is not None else ""


def _short_time(iso_text: str | None) -> str:
    return iso_text.replace("T", " ")[:19] if iso_text else ""
