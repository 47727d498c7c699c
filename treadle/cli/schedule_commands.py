"""Commands that schedule: ``scheduler``, ``triggers list|token``, ``backfill``."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from typer.core import TyperGroup

from treadle.cli.app import JsonOption, ProjectOption, VarOption, app, parse_vars, stdout

if TYPE_CHECKING:
    from treadle.store.scheduling import BackfillRecord


@app.command()
def scheduler(
    project: Annotated[Path, typer.Argument(help="The project folder.")] = Path("."),
) -> None:
    """Run the project's triggers and start queued runs until stopped (Ctrl-C). Without
    the API: `treadle server` serves it apart, `treadle start` does both in one process."""
    from treadle.cli.server_commands import exit_leaving_interrupted_runs, print_problems
    from treadle.scheduler.service import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Scheduler(project) as running:
        report = running.reload(running.clock.now(), force=True)
        print_problems(running.problems)
        count = len(report.specs) if report is not None else 0
        stdout().print(f"scheduler: {count} triggers in {running.project.root}")
        try:
            running.serve(stop)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
    stdout().print("scheduler stopped")
    exit_leaving_interrupted_runs(running)


# -- triggers ---------------------------------------------------------------------------------

triggers_app = typer.Typer(
    help="Triggers: list them, make API trigger tokens.", no_args_is_help=True
)
app.add_typer(triggers_app, name="triggers")


@triggers_app.command("list")
def list_triggers(project: ProjectOption = Path("."), as_json: JsonOption = False) -> None:
    """Every trigger, as the files say and the scheduler sees it, with its next slot."""
    from treadle.errors import ProjectInvalid
    from treadle.scheduler.service import Scheduler

    logging.getLogger("treadle.scheduler").setLevel(logging.ERROR)  # problems: raised below
    with Scheduler(project) as running:
        now = running.clock.now()
        running.reload(now, force=True)
        rows = running.describe_triggers(now)
    _print_triggers(rows, as_json, quiet_when_empty=bool(running.problems))
    if running.problems:
        raise ProjectInvalid(running.problems)


def _print_triggers(rows: list[dict[str, Any]], as_json: bool, quiet_when_empty: bool) -> None:
    if as_json:
        stdout().print_json(json.dumps(rows))
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("pipeline", "trigger", "type", "schedule", "enabled", "last", "next"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["pipeline"], row["name"], row["type"], row["schedule"],
            "yes" if row["enabled"] else "no", row["last_slot"] or "", row["next_slot"] or "",
        )  # fmt: skip
    if rows:
        stdout().print(table)
    elif not quiet_when_empty:
        stdout().print("no triggers: add them in pipelines/NAME/triggers.yaml")


@triggers_app.command("token")
def token(
    pipeline: Annotated[str, typer.Argument(help="The pipeline.")],
    trigger: Annotated[str, typer.Argument(help="Its API trigger (`type: api`).")],
    project: ProjectOption = Path("."),
) -> None:
    """Make a new token for an API trigger (the old one stops working). Shown once."""
    import secrets

    from treadle.scheduler.service import Scheduler
    from treadle.store.scheduling import hash_token

    with Scheduler(project) as running:
        record = running.api_trigger(pipeline, trigger, enabled_only=False)
        new = secrets.token_urlsafe(32)
        running.schedules.set_token(record.id, hash_token(new), time.time())
    console = stdout()
    console.print(f"token for {pipeline}.{trigger} (shown once; store it now):")
    console.print(new, soft_wrap=True)
    console.print(
        f"use: curl -X POST -H 'Authorization: Bearer {new}' "
        "-H 'Content-Type: application/json' -d '{\"variables\": {}}' "
        f"http://127.0.0.1:6789/api/v1/triggers/{pipeline}/{trigger}/runs",
        soft_wrap=True,
    )


@triggers_app.command("enable")
def enable(
    pipeline: Annotated[str, typer.Argument(help="The pipeline.")],
    trigger: Annotated[str, typer.Argument(help="The trigger.")],
    project: ProjectOption = Path("."),
) -> None:
    """Turn a trigger on (written to its triggers.yaml; a running scheduler follows)."""
    _set_enabled(project, pipeline, trigger, True)


@triggers_app.command("disable")
def disable(
    pipeline: Annotated[str, typer.Argument(help="The pipeline.")],
    trigger: Annotated[str, typer.Argument(help="The trigger.")],
    project: ProjectOption = Path("."),
) -> None:
    """Turn a trigger off (written to its triggers.yaml; a running scheduler follows)."""
    _set_enabled(project, pipeline, trigger, False)


def _set_enabled(project: Path, pipeline: str, name: str, enabled: bool) -> None:
    from dataclasses import replace

    from treadle.errors import unknown_name_error
    from treadle.project.loader import load_project
    from treadle.project.triggers import load_triggers, save_trigger, triggers_path

    loaded = load_project(project)
    loaded.pipeline(pipeline)  # an unknown pipeline is named, with "did you mean"
    specs = {s.name: s for s in load_triggers(loaded.root, pipeline, loaded.pipelines)}
    if name not in specs:
        raise unknown_name_error(f"trigger of pipeline {pipeline}", name, list(specs))
    save_trigger(loaded.root, pipeline, replace(specs[name], enabled=enabled))
    where = triggers_path(loaded.root, pipeline).relative_to(loaded.root)
    stdout().print(f"{pipeline}.{name} {'enabled' if enabled else 'disabled'} in {where}")


# -- backfills --------------------------------------------------------------------------------


class _BackfillGroup(TyperGroup):
    """``treadle backfill PIPELINE …`` creates one; ``list``, ``show``, ``cancel`` manage."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands:
            return "create", self.commands["create"], args
        return super().resolve_command(ctx, args)


backfill_app = typer.Typer(
    cls=_BackfillGroup,
    help="Backfills: `treadle backfill PIPELINE --start … --end …`, or list, show, cancel.",
    no_args_is_help=True,
)
app.add_typer(backfill_app, name="backfill")


@backfill_app.command("create")
def create_backfill(
    pipeline: Annotated[str, typer.Argument(help="The pipeline to backfill.")],
    start: Annotated[str, typer.Option(help="First execution date (ISO), included.")],
    end: Annotated[str, typer.Option(help="Last execution date (ISO), included.")],
    every: Annotated[str, typer.Option(help="Between runs: 1d, 6h, 15m …")] = "1d",
    var: VarOption = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Runs at once.")] = 1,
    retry_failed: Annotated[
        bool, typer.Option(help="Run again only the failed runs of this backfill.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Show the runs it would make; make none.")] = False,
    project: ProjectOption = Path("."),
) -> None:
    """One run per slot from --start to --end (both included); `treadle backfill PIPELINE
    …` is short for `treadle backfill create PIPELINE …`."""
    from treadle.scheduler import backfills
    from treadle.scheduler.service import Scheduler

    with Scheduler(project, workers=concurrency) as running:
        plan = backfills.plan_backfill(
            running.project, pipeline, start, end, every, parse_vars(var or [])
        )
        console = stdout()
        if dry_run:
            runs = "run" if plan.total == 1 else "runs"
            console.print(f"backfill {plan.id}: {plan.total} {runs} of {plan.pipeline}")
            for slot in plan.slots:
                console.print(f"  {slot.isoformat()}")
            return
        new, queued = backfills.queue_backfill(running.schedules, plan, concurrency)
        what = "created" if new else "found (same pipeline, range and variables)"
        doing = "its failed runs run again" if retry_failed else f"{queued} queued now"
        console.print(f"backfill {plan.id} {what}: {plan.total} runs, {doing}")
        with _progress(plan.total) as update:
            if retry_failed:
                record = backfills.retry_failed(running, plan.id, update)
            else:
                record = backfills.run_backfill(running, plan.id, update)
    _print_backfill(record)
    if record.status != "succeeded":
        raise typer.Exit(1)


def _progress(total: int) -> Any:
    from contextlib import contextmanager

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    @contextmanager
    def progress() -> Any:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=stdout(), transient=False) as bar:
            task = bar.add_task("backfill", total=total)

            def update(counts: dict[str, int]) -> None:
                done = sum(counts.get(s, 0) for s in ("succeeded", "failed", "cancelled"))
                described = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)
                bar.update(task, completed=done, description=described or "backfill")

            yield update

    return progress()


@backfill_app.command("list")
def list_backfills(project: ProjectOption = Path("."), as_json: JsonOption = False) -> None:
    """The backfills, newest first."""
    records = _with_store(project, lambda store: store.backfills())
    if as_json:
        stdout().print_json(json.dumps([r.to_dict() for r in records]))
        return
    if not records:
        stdout().print("no backfills: start one with `treadle backfill PIPELINE --start … --end …`")
        return
    for record in records:
        _print_backfill(record)


@backfill_app.command("show")
def show_backfill(
    backfill_id: Annotated[str, typer.Argument(help="The backfill (or a unique start of its id).")],
    project: ProjectOption = Path("."),
    as_json: JsonOption = False,
) -> None:
    """A backfill and each of its runs."""
    from treadle.scheduler.backfills import find_backfill

    def read(store: Any) -> tuple[Any, list[Any]]:
        record = find_backfill(store, backfill_id)
        return record, store.backfill_runs(record.id)

    record, runs = _with_store(project, read)
    if as_json:
        data = record.to_dict()
        data["run_list"] = [
            {"run_id": r, "status": s, "execution_date": _iso(d)} for r, s, d in runs
        ]
        stdout().print_json(json.dumps(data))
        return
    _print_backfill(record)
    for run_id, status, when in runs:
        stdout().print(f"  {_iso(when)}  {status:<10} {run_id}")


@backfill_app.command("cancel")
def cancel(
    backfill_id: Annotated[str, typer.Argument(help="The backfill (or a unique start of its id).")],
    project: ProjectOption = Path("."),
) -> None:
    """Cancel a backfill: its queued runs now, its running runs at their next check."""
    from treadle.scheduler.backfills import cancel_backfill

    record = _with_store(
        project, lambda store: cancel_backfill(store, backfill_id, "cancelled with the CLI")
    )
    _print_backfill(record)


def _with_store(project: Path, read: Any) -> Any:
    from treadle.scheduler.history import history, load
    from treadle.store.scheduling import ScheduleStore

    loaded = load(project)
    with history(loaded) as store:
        return read(ScheduleStore(store))


def _print_backfill(record: BackfillRecord) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(record.runs.items())) or "no runs"
    stdout().print(
        f"{record.id}  {record.pipeline}  {record.status}  {_iso(record.start)} → "
        f"{_iso(record.end)} every {record.every}: {record.total} runs ({counts})"
        + (f"  {record.reason}" if record.reason else "")
    )


def _iso(unix_seconds: float | None) -> str:
    if unix_seconds is None:
        return ""
    return datetime.fromtimestamp(unix_seconds, UTC).isoformat(timespec="minutes")
