"""How a run's progress is shown: a live table in a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from treadle.engine.api import RunResult
    from treadle.events import Event


def progress_view() -> ProgressView | PlainProgress:
    """The live table when stdout is a terminal, else plain lines (logs, CI, cron)."""
    from treadle.cli.app import stdout

    return ProgressView(stdout()) if sys.stdout.isatty() else PlainProgress()


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
            for line in _reuse_lines(event):
                self.console.print(f"[dim]{line}[/]", highlight=False)
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
                title = f"block {block.name} failed{_attempt(block.attempts)}: {block.error}"
                self.console.print(Panel(body, title=title, title_align="left", border_style="red"))
        style = "green" if result.ok else "bold red"
        problem = f" ({result.problem})" if result.problem else ""
        self.console.print(
            f"[{style}]run {result.run_id} {result.status.value}[/] in {result.duration:.2f}s{problem}"
        )
        for warning in result.warnings:
            self.console.print(f"[yellow]warning:[/] {warning}", highlight=False)

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

    _width = 0  # of the longest block name, for aligned columns

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()

    def emit(self, event: Event) -> None:
        from treadle import events as ev

        if isinstance(event, ev.RunStarted):
            self._width = max(map(len, event.blocks), default=0)
            count = f"{len(event.blocks)} block{'s' if len(event.blocks) != 1 else ''}"
            self._line(f"run {event.run_id} of {event.pipeline}: {count}")
            for line in _reuse_lines(event):
                self._line("  " + line)
        elif isinstance(event, ev.BlockRetrying):
            error = (event.error or {}).get("message", "")
            self._line(
                f"  retrying {event.block} (attempt {event.attempt} in {event.delay:g}s): {error}"
            )
        elif isinstance(event, ev.BlockFinished) and event.index is None:
            rows = f"  {event.rows:,} rows" if event.rows is not None else ""
            reason = f"  ({event.reason})" if event.reason else ""
            self._line(
                f"  {event.status.value:<16} {event.block:<{self._width}}  "
                f"{event.duration:6.2f}s{rows}{reason}"
            )

    def report(self, result: RunResult) -> None:
        for block in result.blocks.values():
            if block.error is not None:
                self._line(f"block {block.name} failed{_attempt(block.attempts)}: {block.error}")
                self._line("    " + block.error.traceback.rstrip().replace("\n", "\n    "))
        problem = f" ({result.problem})" if result.problem else ""
        self._line(f"run {result.run_id} {result.status.value} in {result.duration:.2f}s{problem}")
        for warning in result.warnings:
            self._line(f"warning: {warning}")

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


def _reuse_lines(event: Any) -> list[str]:
    """Which stored outputs of other runs this run starts from (``--block``)."""
    return [
        f"reusing the output of {block} from run {run_id}"
        for block, run_id in event.reused.items()
        if run_id != event.run_id
    ]


def _attempt(attempts: int) -> str:
    return f" (attempt {attempts})" if attempts else ""
