"""Commands for the encrypted secret store: ``secrets set|list|delete``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from treadle.cli.app import JsonOption, ProjectOption, app, stdout

secrets_app = typer.Typer(
    help="Secrets for io_config.yaml's {{ secret('name') }}: set, list, delete.",
    no_args_is_help=True,
)
app.add_typer(secrets_app, name="secrets")


@secrets_app.command("set")
def set_secret(
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    project: ProjectOption = Path("."),
) -> None:
    """Store a secret, encrypted. The value is asked for (not echoed), or read from stdin."""
    from treadle.project.loader import find_project_root
    from treadle.project.secrets import SecretStore, check_secret_name

    root = find_project_root(project)
    check_secret_name(name)
    if sys.stdin.isatty():
        value = typer.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        from treadle.errors import UserInputError

        raise UserInputError(f"no value given for secret {name!r}", hint="type or pipe it in")
    SecretStore(root).set(name, value)
    stdout().print(f"secret {name} stored (encrypted); use it as {{{{ secret('{name}') }}}}")


@secrets_app.command("list")
def list_secrets(project: ProjectOption = Path("."), as_json: JsonOption = False) -> None:
    """The secrets' names (never their values)."""
    import json
    from datetime import UTC, datetime

    from treadle.project.loader import find_project_root
    from treadle.project.secrets import SecretStore

    store = SecretStore(find_project_root(project))
    rows = [
        {
            "name": name,
            "updated_at": datetime.fromtimestamp(store.updated_at(name) or 0, UTC).isoformat(),
        }
        for name in store.names()
    ]
    if as_json:
        stdout().print_json(json.dumps(rows))
    elif not rows:
        stdout().print("no secrets: store one with `treadle secrets set NAME`")
    for row in rows if not as_json else ():
        stdout().print(f"{row['name']}  (updated {row['updated_at']})")


@secrets_app.command("delete")
def delete_secret(
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    project: ProjectOption = Path("."),
) -> None:
    """Delete a secret."""
    from treadle.project.loader import find_project_root
    from treadle.project.secrets import SecretStore

    SecretStore(find_project_root(project)).delete(name)
    stdout().print(f"secret {name} deleted")
