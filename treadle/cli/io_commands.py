"""Commands about connections: ``io test PROFILE``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from treadle.cli.app import ProjectOption, app, stdout

io_app = typer.Typer(help="Connections (io_config.yaml profiles): test one.", no_args_is_help=True)
app.add_typer(io_app, name="io")


@io_app.command("test")
def test_profile(
    profile: Annotated[str, typer.Argument(help="The io_config.yaml profile.")] = "default",
    project: ProjectOption = Path("."),
    connector: Annotated[
        str | None,
        typer.Option(
            help="Test it as this connector (e.g. BigQuery for a profile of GOOGLE_ keys, "
            "which is tested as GCS otherwise)."
        ),
    ] = None,
) -> None:
    """Connect with a profile and say whether it works, or exactly why not."""
    from treadle.errors import UserInputError
    from treadle.io.base import check_profile
    from treadle.project.loader import find_project_root

    root = find_project_root(project)
    started = time.perf_counter()
    try:
        name, where = check_profile(profile, root, connector)
    except UserInputError:
        raise
    except Exception as exc:  # the backend's own words are the exact failure
        raise UserInputError(
            f"profile {profile!r} could not connect: {type(exc).__name__}: {exc}",
            hint="check its settings in io_config.yaml",
        ) from None
    took = (time.perf_counter() - started) * 1000
    stdout().print(f"[green]ok[/]: profile {profile!r} connects to {where} ({took:.0f} ms)")
