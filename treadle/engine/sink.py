"""Where the engine's events go. ``store/``, the CLI and the server satisfy ``EventSink``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from treadle.events import Event


class EventSink(Protocol):
    def emit(self, event: Event) -> None:
        """Receive one event. Must be quick; must not raise (a failing sink is a bug)."""


class CancelSource(Protocol):
    def cancel_requested(self, run_id: str) -> str | None:
        """Why someone asked to cancel ``run_id``, or None. Polled about once a second."""


class MemorySink:
    """Keeps every event in a list: for tests and for callers that inspect a run."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


class FanOutSink:
    """Sends each event to several sinks, in order."""

    def __init__(self, sinks: Iterable[EventSink]) -> None:
        self.sinks = tuple(sinks)

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)
