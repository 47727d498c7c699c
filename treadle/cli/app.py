"""The ``treadle`` command's app, its exit codes and its error rendering.

Exit codes: 0 success; 1 a block failed; 2 the project or the arguments are invalid;
3 an internal error (a bug in Treadle: please report it); 130 interrupted. Heavy modules
(pandas, pyarrow, the engine, the store) are imported inside the commands that need them,
so ``treadle --help`` and small runs start fast. This package is, with the server, the
only place that renders errors.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from treadle.errors import ProjectInvalid, TreadleError, UserInputError

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="treadle",
    help="Treadle: run data pipelines of small Python and SQL blocks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _version(show: bool) -> None:
    if show:
        from treadle import __version__

        sys.stdout.write(f"treadle {__version__}\n")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Treadle: run data pipelines of small Python and SQL blocks."""


ProjectOption = Annotated[
    Path,
    typer.Option("--project", "-p", envvar="TREADLE_PROJECT", help="The project folder."),
]
ExecutorOption = Annotated[
    str | None, typer.Option(help="inline or process (default: the project's setting).")
]
VarOption = Annotated[
    list[str] | None, typer.Option("--var", help="A runtime variable, NAME=VALUE (repeatable).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output (stable).")]


def main() -> None:
    """Entry point: run the app and render any ``TreadleError`` as a clear message."""
    try:
        app()
    except TreadleError as exc:
        render_error(exc)
        sys.exit(EXIT_INVALID if isinstance(exc, UserInputError) else EXIT_FAILED)
    except KeyboardInterrupt:
        stderr().print("[yellow]interrupted[/]")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # not the user's fault: say so, with what we know
        import traceback

        console = stderr()
        from rich.markup import escape

        console.print(
            f"[bold red]internal error[/] (a bug in Treadle): {type(exc).__name__}: "
            + escape(str(exc))
        )
        console.print(traceback.format_exc(), markup=False, highlight=False)
        console.print("Please report it with the lines above.")
        sys.exit(EXIT_INTERNAL)


def render_error(exc: TreadleError) -> None:
    from rich.markup import escape

    console = stderr()
    problems = exc.problems if isinstance(exc, ProjectInvalid) else [exc]
    if isinstance(exc, ProjectInvalid):
        console.print(f"[bold red]error:[/] {exc.message}:")
    for problem in problems:  # user text is escaped: "[x]" in a value is not markup
        if isinstance(problem, UserInputError):
            where = f"[bold]{escape(problem.location)}[/]: " if problem.location else ""
            console.print(f"[bold red]error:[/] {where}{escape(problem.message)}", highlight=False)
            if problem.hint:
                console.print(f"       [dim]→ {escape(problem.hint)}[/]", highlight=False)
        else:
            console.print(f"[bold red]error:[/] {escape(str(problem))}", highlight=False)


def parse_vars(pairs: list[str]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UserInputError(
                f"--var {pair!r} is not NAME=VALUE", hint="write e.g. --var month=2020-10"
            )
        variables[name.strip()] = value
    return variables


def stdout() -> Console:
    """The terminal's width in a terminal; wide when piped, so ids are never cut."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 250)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)
