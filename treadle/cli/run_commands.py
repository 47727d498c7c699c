"""Commands that make projects and start, resume, retry or stop runs."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.cli.app import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ExecutorOption,
    ProjectOption,
    VarOption,
    app,
    parse_vars,
    stderr,
    stdout,
)
from treadle.cli.progress import progress_view
from treadle.errors import UserInputError

if TYPE_CHECKING:
    from treadle.engine.api import RunResult


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Folder for the new project (new or empty).")],
) -> None:
    """Create a project with a working example pipeline (no network needed)."""
    from treadle.project.scaffold import init_project

    root = init_project(path)
    console = stdout()
    console.print(f"Created project [bold]{root.name}[/] in {root}")
    console.print(f"Run its example:  treadle run {path} example_pipeline")


@app.command()
def validate(
    project: Annotated[Path, typer.Argument(help="The project folder.")] = Path("."),
) -> None:
    """Check the whole project, triggers included, and report every problem at once."""
    from treadle.errors import ProjectInvalid
    from treadle.project.loader import load_project
    from treadle.scheduler.triggering import SyncReport, read_all_triggers

    loaded = load_project(project)
    report = SyncReport()
    triggers = sum(len(found) for found in read_all_triggers(loaded, report).values())
    if report.problems:
        raise ProjectInvalid(report.problems)
    blocks = sum(len(p.blocks) for p in loaded.pipelines.values())
    stdout().print(
        f"[green]ok[/]: {len(loaded.pipelines)} pipelines, {blocks} blocks, {triggers} triggers"
    )


@app.command()
def run(
    project: Annotated[Path, typer.Argument(help="The project folder.")],
    pipeline: Annotated[str, typer.Argument(help="The pipeline to run.")],
    var: VarOption = None,
    execution_date: Annotated[
        str | None, typer.Option(help="ISO date or datetime; default now (UTC).")
    ] = None,
    block: Annotated[
        list[str] | None,
        typer.Option(help="Run only this block, with its upstream outputs from the latest run."),
    ] = None,
    downstream: Annotated[
        bool, typer.Option(help="With --block: also run everything downstream of it.")
    ] = False,
    executor: Annotated[
        str | None, typer.Option(help="inline or process (default: the project's setting).")
    ] = None,
) -> None:
    """Run a pipeline and show each block's progress; the run is kept in the history."""
    from treadle.scheduler.launch import run_pipeline

    if downstream and not block:
        raise UserInputError("--downstream needs --block", hint="name the block to start from")
    if block and len(block) > 1:
        raise UserInputError(
            f"--block was given {len(block)} times ({', '.join(block)})",
            hint="give one block; add --downstream to run what depends on it too",
        )
    _watch(
        lambda view: run_pipeline(
            project,
            pipeline,
            variables=parse_vars(var or []),
            execution_date=execution_date,
            block=block[0] if block else None,
            downstream=downstream,
            executor=executor,
            sinks=[view],
            trigger="cli",
            triggered_by=_user(),
        )
    )


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run (or a unique start of its id).")],
    project: ProjectOption = Path("."),
    executor: ExecutorOption = None,
    var: VarOption = None,
) -> None:
    """Run the blocks of a run that did not succeed, reusing the outputs of those that did."""
    _resume(project, run_id, None, var, executor)


@app.command()
def retry(
    run_id: Annotated[str, typer.Argument(help="The run (or a unique start of its id).")],
    from_block: Annotated[
        str, typer.Option("--from", help="Rerun this block and everything downstream of it.")
    ],
    project: ProjectOption = Path("."),
    executor: ExecutorOption = None,
    var: VarOption = None,
) -> None:
    """Rerun a block of a run and everything downstream of it (same run id)."""
    _resume(project, run_id, from_block, var, executor)


def _resume(
    project: Path, run_id: str, from_block: str | None, var: list[str] | None, executor: str | None
) -> None:
    from treadle.scheduler.launch import resume_run

    variables = parse_vars(var or [])
    _watch(
        lambda view: resume_run(
            project,
            run_id,
            from_block=from_block,
            variables=variables,
            executor=executor,
            sinks=[view],
        )  # fmt: skip
    )


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="The run (or a unique start of its id).")],
    project: ProjectOption = Path("."),
) -> None:
    """Stop a running run (its running blocks are really stopped) and mark it cancelled."""
    from treadle.scheduler.launch import cancel_run

    outcome = cancel_run(project, run_id)
    if outcome.status == "cancelled":
        stdout().print(f"run {outcome.run_id} cancelled")
    elif outcome.status is None:
        stdout().print(
            f"cancel of run {outcome.run_id} requested: it stops at its next check "
            f"(on {outcome.host or 'another machine'}), after the block it is running"
        )
    else:
        stdout().print(f"run {outcome.run_id} ended {outcome.status} before it could be stopped")


def _watch(start: Callable[[Any], RunResult]) -> None:
    """Run ``start(view)`` with a progress view; exit 0 on success, 1 on failure.

    SIGTERM (``treadle cancel``, a service manager) stops the run as Ctrl-C does."""
    view = progress_view()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with view:
            result = start(view)
    except KeyboardInterrupt:
        stderr().print("[yellow]interrupted[/]: the run was cancelled and its blocks stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    view.report(result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@app.command()
def samples(
    kind: Annotated[str, typer.Argument(help="green or yellow.")],
    out: Annotated[Path, typer.Option(help="CSV file to write (.csv.gz to compress).")],
    month: Annotated[str, typer.Option(help="YYYY-MM of the pickups.")] = "2020-10",
    rows: Annotated[int, typer.Option(help="Number of trips.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Same seed, same file.")] = 0,
) -> None:
    """Write an NYC-taxi-shaped sample CSV (deterministic by seed)."""
    from treadle.samples import write_csv

    started = time.perf_counter()
    path = write_csv(kind, out, month=month, rows=rows, seed=seed)
    stdout().print(f"wrote {rows:,} {kind} trips to {path} in {time.perf_counter() - started:.2f}s")


# -- rendering -----------------------------------------------------------------------------


new_app = typer.Typer(help="Create things from templates: a block.", no_args_is_help=True)
app.add_typer(new_app, name="new")


@new_app.command("block")
def new_block(
    pipeline: Annotated[str, typer.Argument(help="The pipeline to add the block to.")],
    name: Annotated[str, typer.Argument(help="The block's name (and file name).")],
    template: Annotated[
        str, typer.Option(help="The template; `treadle new templates` lists them.")
    ] = "transformer",
    upstream: Annotated[
        list[str] | None, typer.Option(help="An upstream block (repeatable).")
    ] = None,
    project: ProjectOption = Path("."),
) -> None:
    """Write a block file from a template and add the block to the pipeline."""
    from treadle.project.block_templates import add_block
    from treadle.project.loader import find_project_root

    root = find_project_root(project)
    file = add_block(root, pipeline, name, template, list(upstream or []))
    stdout().print(f"created {file.relative_to(root)} and added block {name} to {pipeline}")


@new_app.command("templates")
def list_templates() -> None:
    """The block templates."""
    from treadle.project.block_templates import TEMPLATES

    width = max(len(key) for key in TEMPLATES) + 2
    for key, template in TEMPLATES.items():
        stdout().print(f"{key:<{width}}{template.type.value:<14} {template.description}")
