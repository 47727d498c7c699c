"""Commands that serve: ``start`` (API + scheduler), ``server`` (API only), ``users``, ``audit``."""

from __future__ import annotations

import getpass
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.cli.app import JsonOption, ProjectOption, app, stdout
from treadle.errors import UserInputError

if TYPE_CHECKING:
    from treadle.scheduler.service import Scheduler
    from treadle.server.state import ServerState
    from treadle.store.access import AccessStore
    from treadle.store.audit import AuditStore

HostOption = Annotated[str, typer.Option(help="Address to listen on.")]
PortOption = Annotated[int, typer.Option(help="Port to listen on.")]
ProjectArgument = Annotated[Path, typer.Argument(help="The project folder.")]


@app.command()
def start(
    project: ProjectArgument = Path("."),
    host: HostOption = "127.0.0.1",
    port: PortOption = 6789,
) -> None:
    """Serve the API (and web UI) and run the scheduler, in one process, until Ctrl-C."""
    serve(project, host, port, run_scheduler=True)


@app.command()
def server(
    project: ProjectArgument = Path("."),
    host: HostOption = "127.0.0.1",
    port: PortOption = 6789,
) -> None:
    """Serve the API (and web UI) only; runs it queues are started by `treadle scheduler`."""
    serve(project, host, port, run_scheduler=False)


def serve(project: Path, host: str, port: int, *, run_scheduler: bool) -> None:
    """Serve until SIGINT/SIGTERM; then stop taking requests, stop the scheduler (runs in
    progress are recorded as cancelled, never left running), and close the store."""
    from treadle.scheduler.service import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Scheduler(project) as scheduler:
        state = server_state_for(scheduler, host, runs_here=run_scheduler)
        report = scheduler.reload(scheduler.clock.now(), force=True)
        print_problems(scheduler.problems)
        ensure_first_admin(state)
        http = start_http(state, host, port)
        what = "API and scheduler" if run_scheduler else "API"
        count = len(report.specs) if report is not None else 0
        stdout().print(
            f"treadle: {what} for {scheduler.project.root} on http://{_url_host(host)}:{port}"
            f" ({count} triggers; auth {'on' if state.auth else 'off'})"
        )
        try:
            if run_scheduler:
                scheduler.serve(stop)
            else:
                while not stop.wait(0.5):
                    pass
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            stop_http(http)
    stdout().print("treadle stopped")
    exit_leaving_interrupted_runs(scheduler)


def exit_leaving_interrupted_runs(scheduler: Scheduler) -> None:
    """When a block did not return in time, its run is already recorded as cancelled;
    exit now rather than wait for its thread (Python would join it at exit)."""
    if scheduler.interrupted:
        stdout().print(
            f"interrupted runs (recorded as cancelled): {', '.join(scheduler.interrupted)}"
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def server_state_for(scheduler: Scheduler, host: str, *, runs_here: bool) -> ServerState:
    """The server's state; refuses to listen beyond this machine without authentication."""
    from treadle.server.state import LOOPBACK, ServerState

    state = ServerState.for_scheduler(scheduler, runs_here=runs_here)
    if not state.auth and host not in LOOPBACK:
        raise UserInputError(
            f"refusing to listen on {host} with `auth: false`: anyone who can reach it could"
            " run code on this machine",
            path="treadle.yaml",
            hint="remove `auth: false` from treadle.yaml, or listen on 127.0.0.1",
        )
    return state


def ensure_first_admin(state: ServerState) -> None:
    """With auth on and no user yet, create ``admin`` with ``TREADLE_ADMIN_PASSWORD`` or a
    random password, printed this once. There is never a default password."""
    from treadle.store.access import Role, new_password

    if not state.auth or state.access.count_users() > 0:
        return
    given = os.environ.get("TREADLE_ADMIN_PASSWORD")
    password = given or new_password()
    state.access.add_user("admin", Role.ADMIN, password)
    state.audit.record(
        "treadle start", "user.added", "admin", origin="cli", detail={"role": "admin"}
    )
    if given:
        stdout().print("created the first user, admin, with the password in TREADLE_ADMIN_PASSWORD")
    else:
        stdout().print(
            "created the first user: [bold]admin[/], password "
            f"[bold]{password}[/] (shown this once; change it with"
            " `treadle users passwd admin`)"
        )


def start_http(state: ServerState, host: str, port: int) -> Any:
    """Start uvicorn in a thread; return it once it listens (or say why it cannot)."""
    import uvicorn

    from treadle.server.app import create_app

    config = uvicorn.Config(create_app(state), host=host, port=port, log_level="warning")
    http = uvicorn.Server(config)
    thread = threading.Thread(target=http.run, name="treadle-http", daemon=True)
    thread.start()
    http.thread = thread
    while not http.started:  # the port may be taken: then say so, and do not go on
        if not thread.is_alive():
            raise UserInputError(
                f"could not listen on {host}:{port} (is the port in use?)",
                hint="choose another with --port",
            )
        time.sleep(0.01)
    return http


def stop_http(http: Any) -> None:
    """Stop taking requests and let the ones in progress finish (up to 10 s)."""
    http.should_exit = True
    http.thread.join(timeout=10)


def print_problems(problems: list[UserInputError]) -> None:
    from treadle.cli.app import render_error

    for problem in problems:
        render_error(problem)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# -- users ------------------------------------------------------------------------------------

users_app = typer.Typer(
    help="Users of the server: add, list, change, delete.", no_args_is_help=True
)
app.add_typer(users_app, name="users")

RoleOption = Annotated[str, typer.Option(help="admin, editor or viewer.")]


@contextmanager
def _access(project: Path) -> Iterator[tuple[AccessStore, AuditStore]]:
    """The users and the audit trail in the project's metadata database."""
    from treadle.scheduler.history import history, load
    from treadle.store.access import AccessStore
    from treadle.store.audit import AuditStore

    with history(load(project)) as store:
        yield AccessStore(store), AuditStore(store)


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _ask_password(prompt: str) -> str:
    password = os.environ.get("TREADLE_PASSWORD")
    if password:
        return password
    first = typer.prompt(prompt, hide_input=True)
    second = typer.prompt("again", hide_input=True)
    if first != second:
        raise UserInputError("the two passwords differ; nothing changed")
    return first


@users_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    role: RoleOption = "viewer",
    project: ProjectOption = Path("."),
) -> None:
    """Add a user; the password is asked for (or read from TREADLE_PASSWORD)."""
    from treadle.store.access import check_user_name, parse_role

    parsed = parse_role(role)
    check_user_name(name)
    with _access(project) as (access, audit):
        if access.user(name) is not None:
            raise UserInputError(f"user {name!r} already exists")
        user = access.add_user(name, parsed, _ask_password(f"password for {name}"))
        audit.record(_cli_actor(), "user.added", name, origin="cli", detail={"role": parsed.value})
    stdout().print(f"added {user.name} ({user.role.value})")


@users_app.command("list")
def list_users(project: ProjectOption = Path("."), as_json: JsonOption = False) -> None:
    """The users and their roles."""
    with _access(project) as (access, _):
        users = access.users()
    if as_json:
        typer.echo(json.dumps([u.to_dict() for u in users], indent=2))
        return
    for user in users:
        stdout().print(f"{user.name}\t{user.role.value}")
    if not users:
        stdout().print("no users yet (`treadle start` creates the first admin)")


@users_app.command("role")
def change_role(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    role: Annotated[str, typer.Argument(help="admin, editor or viewer.")],
    project: ProjectOption = Path("."),
) -> None:
    """Change a user's role."""
    from treadle.store.access import parse_role

    parsed = parse_role(role)
    with _access(project) as (access, audit):
        access.set_role(name, parsed)
        audit.record(_cli_actor(), "user.role_changed", name, origin="cli", detail={"role": role})
    stdout().print(f"{name} is now {parsed.value}")


@users_app.command("passwd")
def change_password(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    project: ProjectOption = Path("."),
) -> None:
    """Set a user's password (asked for, or TREADLE_PASSWORD); their sessions end."""
    with _access(project) as (access, audit):
        if access.user(name) is None:
            access.set_password(name, "")  # names the missing user, with "did you mean"
        access.set_password(name, _ask_password(f"new password for {name}"))
        audit.record(_cli_actor(), "user.password_changed", name, origin="cli")
    stdout().print(f"changed the password of {name}")


@users_app.command("delete")
def delete_user(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    project: ProjectOption = Path("."),
) -> None:
    """Delete a user with their API tokens and sessions."""
    with _access(project) as (access, audit):
        access.delete_user(name)
        audit.record(_cli_actor(), "user.deleted", name, origin="cli")
    stdout().print(f"deleted {name}")


@users_app.command("token")
def create_token(
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    label: Annotated[str, typer.Option("--name", help="What the token is for.")] = "",
    project: ProjectOption = Path("."),
) -> None:
    """Make an API token for a user; it is shown this once."""
    with _access(project) as (access, audit):
        token, value = access.create_token(name, label)
        audit.record(
            _cli_actor(), "token.created", name, origin="cli", detail={"token_id": token.id}
        )
    stdout().print(f"token {token.id} for {name} (shown this once):")
    typer.echo(value)


# -- audit ------------------------------------------------------------------------------------


@app.command("audit")
def audit_trail(
    project: ProjectOption = Path("."),
    limit: Annotated[int, typer.Option(help="How many events, newest first.")] = 50,
    actor: Annotated[str | None, typer.Option(help="Only this actor's.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action (run.* for a prefix).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The audit trail: who did what, when, from where."""
    from treadle.store.rows import iso

    with _access(project) as (_, audit):
        events = audit.events(limit=limit, actor=actor, action=action)
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in events], indent=2))
        return
    for event in events:
        stdout().print(
            f"{iso(event.at)}  {event.actor}  {event.action}  {event.target}  {event.origin}",
            markup=False,
        )
