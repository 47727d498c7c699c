"""The scheduler's clock, a dependency: tests pass their own and run years in milliseconds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""

    def wait(self, wake: threading.Event, seconds: float) -> bool:
        """Sleep up to ``seconds`` or until ``wake`` is set; True when woken."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, wake: threading.Event, seconds: float) -> bool:
        return wake.wait(max(seconds, 0.0))
