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
    import treadle.io
    from treadle.errors import UserInputError, unknown_name_error
    from treadle.io.base import read_profile
    from treadle.project.loader import find_project_root

    root = find_project_root(project)
    _, settings = read_profile(profile, root)  # a missing profile or variable: named
    name = connector or treadle.io.connector_name_for(settings)
    if name not in treadle.io.CONNECTORS:
        raise unknown_name_error("connector", name, sorted(treadle.io.CONNECTORS))
    started = time.perf_counter()
    with getattr(treadle.io, name).from_profile(profile, project=root) as connector:
        try:
            where = connector.check()
        except UserInputError:
            raise
        except Exception as exc:  # the backend's own words are the exact failure
            raise UserInputError(
                f"profile {profile!r} ({name}) could not connect: {type(exc).__name__}: {exc}",
                hint="check its settings in io_config.yaml",
            ) from None
    took = (time.perf_counter() - started) * 1000
    stdout().print(f"[green]ok[/]: profile {profile!r} connects to {where} ({took:.0f} ms)")
