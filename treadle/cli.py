"""The ``treadle`` command. The only place (with the server) that renders errors.

Exit codes: 0 success; 1 a block failed; 2 the project or the arguments are invalid;
3 an internal error (a bug in Treadle: please report it); 130 interrupted. Heavy modules (pandas, pyarrow, the engine) are imported inside the
commands that need them, so ``treadle --help`` and small runs start fast.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.errors import ProjectInvalid, TreadleError, UserInputError

if TYPE_CHECKING:
    from rich.console import Console

    from treadle.engine.api import RunResult
    from treadle.events import Event

app = typer.Typer(
    name="treadle",
    help="Treadle: run data pipelines of small Python and SQL blocks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def main() -> None:
    """Entry point: run the app and render any ``TreadleError`` as a clear message."""
    try:
        app()
    except TreadleError as exc:
        _render_error(exc)
        sys.exit(EXIT_INVALID if isinstance(exc, UserInputError) else EXIT_FAILED)
    except KeyboardInterrupt:
        _stderr().print("[yellow]interrupted[/]")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # not the user's fault: say so, with what we know
        import traceback

        console = _stderr()
        console.print(
            f"[bold red]internal error[/] (a bug in Treadle): {type(exc).__name__}: {exc}"
        )
        console.print(traceback.format_exc(), markup=False, highlight=False)
        console.print("Please report it with the lines above.")
        sys.exit(EXIT_INTERNAL)


# -- commands ------------------------------------------------------------------------------


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Folder for the new project (new or empty).")],
) -> None:
    """Create a project with a working example pipeline (no network needed)."""
    from treadle.project.scaffold import init_project

    root = init_project(path)
    console = _stdout()
    console.print(f"Created project [bold]{root.name}[/] in {root}")
    console.print(f"Run its example:  treadle run {path} example_pipeline")


@app.command()
def validate(
    project: Annotated[Path, typer.Argument(help="The project folder.")] = Path("."),
) -> None:
    """Check the whole project and report every problem at once."""
    from treadle.project.loader import load_project

    loaded = load_project(project)
    blocks = sum(len(p.blocks) for p in loaded.pipelines.values())
    _stdout().print(f"[green]ok[/]: {len(loaded.pipelines)} pipelines, {blocks} blocks")


@app.command()
def run(
    project: Annotated[Path, typer.Argument(help="The project folder.")],
    pipeline: Annotated[str, typer.Argument(help="The pipeline to run.")],
    var: Annotated[
        list[str] | None, typer.Option("--var", help="A runtime variable, NAME=VALUE (repeatable).")
    ] = None,
    execution_date: Annotated[
        str | None, typer.Option(help="ISO date or datetime; default now (UTC).")
    ] = None,
    block: Annotated[
        str | None,
        typer.Option(help="Run only this block, with its upstream outputs from the latest run."),
    ] = None,
    downstream: Annotated[
        bool, typer.Option(help="With --block: also run everything downstream of it.")
    ] = False,
    executor: Annotated[
        str | None, typer.Option(help="inline or process (default: the project's setting).")
    ] = None,
) -> None:
    """Run a pipeline and show each block's progress."""
    from treadle.engine.api import run_pipeline

    if downstream and not block:
        raise UserInputError("--downstream needs --block", hint="name the block to start from")
    view: ProgressView | PlainProgress = (
        ProgressView(_stdout()) if sys.stdout.isatty() else PlainProgress()
    )
    try:
        with view:
            result = run_pipeline(
                project,
                pipeline,
                variables=_parse_vars(var or []),
                execution_date=execution_date,
                block=block,
                downstream=downstream,
                executor=executor,
                sinks=[view],
                trigger="cli",
            )
    except KeyboardInterrupt:
        _stderr().print("[yellow]interrupted[/]: the run was cancelled and its blocks stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    view.report(result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


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
    _stdout().print(
        f"wrote {rows:,} {kind} trips to {path} in {time.perf_counter() - started:.2f}s"
    )


# -- rendering -----------------------------------------------------------------------------


class ProgressView:
    """A live table of the run's blocks, fed by the engine's events (an ``EventSink``).

    Used when stdout is a terminal; otherwise ``PlainProgress`` writes lines.
    """

    REFRESH_EVERY = 0.1  # seconds; redrawing on every event would cost more than the blocks

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: dict[str, dict[str, Any]] = {}
        self.title = ""
        self._live: Any = None
        self._last_refresh = 0.0

    def __enter__(self) -> ProgressView:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()

    def emit(self, event: Event) -> None:
        from treadle import events as ev

        if isinstance(event, ev.RunStarted):
            self.title = f"{event.pipeline} · run {event.run_id}"
            self.rows = {name: {"status": "queued", "started": None} for name in event.blocks}
            from rich.live import Live

            # A terminal gets a thread that redraws running times; elsewhere only events do.
            self._live = Live(
                self,
                console=self.console,
                auto_refresh=self.console.is_terminal,
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()
            return
        row = self.rows.get(getattr(event, "block", ""), None)
        if row is not None:
            self._update_row(row, event)
        if (
            isinstance(event, ev.RunFinished)
            or time.monotonic() - self._last_refresh > self.REFRESH_EVERY
        ):
            self._refresh()

    def _update_row(self, row: dict[str, Any], event: Event) -> None:
        from treadle import events as ev

        if isinstance(event, ev.BlockStarted):
            row.update(status="running", attempt=event.attempt)
            row.setdefault("started_at", time.monotonic())
        elif isinstance(event, ev.BlockRetrying):
            row.update(status=f"retry {event.attempt} in {event.delay:g}s")
        elif isinstance(event, ev.BlockFinished) and event.index is None:
            row.update(status=event.status.value, duration=event.duration, rows=event.rows)
        elif isinstance(event, ev.OutputSaved) and "." not in event.key:
            row.update(rows=event.rows)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._last_refresh = time.monotonic()

    def report(self, result: RunResult) -> None:
        from rich.panel import Panel
        from rich.text import Text

        for block in result.blocks.values():
            if block.error is not None:
                body = Text(block.error.traceback.rstrip() or str(block.error))
                title = f"block {block.name} failed (attempt {block.attempts}): {block.error}"
                self.console.print(Panel(body, title=title, title_align="left", border_style="red"))
        style = "green" if result.ok else "bold red"
        problem = f" ({result.problem})" if result.problem else ""
        self.console.print(
            f"[{style}]run {result.run_id} {result.status.value}[/] in {result.duration:.2f}s{problem}"
        )

    def __rich__(self) -> Any:
        """The table as it is now (rich calls this on every redraw)."""
        from rich.table import Table

        table = Table(title=self.title, title_justify="left", expand=False)
        table.add_column("block")
        table.add_column("status")
        table.add_column("time", justify="right")
        table.add_column("rows", justify="right")
        for name, row in self.rows.items():
            status = row["status"]
            duration = row.get("duration")
            if duration is None and "started_at" in row:
                duration = time.monotonic() - row["started_at"]
            rows = row.get("rows")
            table.add_row(
                name,
                f"[{_STATUS_STYLE.get(status, 'yellow')}]{status}[/]",
                f"{duration:.2f}s" if duration is not None else "",
                f"{rows:,}" if isinstance(rows, int) else "",
            )
        return table


class PlainProgress:
    """Progress as plain lines, one per finished block: for logs, CI and cron (no rich)."""

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()

    def emit(self, event: Event) -> None:
        from treadle import events as ev

        if isinstance(event, ev.RunStarted):
            self._line(f"run {event.run_id} of {event.pipeline}: {len(event.blocks)} blocks")
        elif isinstance(event, ev.BlockRetrying):
            error = (event.error or {}).get("message", "")
            self._line(
                f"  retrying {event.block} (attempt {event.attempt} in {event.delay:g}s): {error}"
            )
        elif isinstance(event, ev.BlockFinished) and event.index is None:
            rows = f"  {event.rows:,} rows" if event.rows is not None else ""
            reason = f"  ({event.reason})" if event.reason else ""
            self._line(
                f"  {event.status.value:<16} {event.block}  {event.duration:.2f}s{rows}{reason}"
            )

    def report(self, result: RunResult) -> None:
        for block in result.blocks.values():
            if block.error is not None:
                self._line(f"block {block.name} failed (attempt {block.attempts}): {block.error}")
                self._line("    " + block.error.traceback.rstrip().replace("\n", "\n    "))
        problem = f" ({result.problem})" if result.problem else ""
        self._line(f"run {result.run_id} {result.status.value} in {result.duration:.2f}s{problem}")

    @staticmethod
    def _line(text: str) -> None:
        sys.stdout.write(text + "\n")


_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "upstream_failed": "red",
    "condition_failed": "magenta",
    "cancelled": "magenta",
    "queued": "dim",
    "running": "cyan",
}


def _render_error(exc: TreadleError) -> None:
    console = _stderr()
    problems = exc.problems if isinstance(exc, ProjectInvalid) else [exc]
    if isinstance(exc, ProjectInvalid):
        console.print(f"[bold red]error:[/] {exc.message}:")
    for problem in problems:
        if isinstance(problem, UserInputError):
            where = f"[bold]{problem.location}[/]: " if problem.location else ""
            console.print(f"[bold red]error:[/] {where}{problem.message}", highlight=False)
            if problem.hint:
                console.print(f"       [dim]→ {problem.hint}[/]", highlight=False)
        else:
            console.print(f"[bold red]error:[/] {problem}", highlight=False)


def _parse_vars(pairs: list[str]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UserInputError(
                f"--var {pair!r} is not NAME=VALUE", hint="write e.g. --var month=2020-10"
            )
        variables[name.strip()] = value
    return variables


def _stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


if __name__ == "__main__":
    main()
