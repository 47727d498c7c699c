"""The executor contract: run ``BlockTask``s, hand back ``TaskOutcome``s.

The runner decides *what* runs and *when* (order, concurrency, retries); an executor
decides only *where*. Capability flags say what an executor can do, so the runner and
the user are never surprised.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from treadle.engine.inputs import InputResolver
from treadle.engine.outputs import OutputStore
from treadle.engine.tasks import BlockTask, TaskOutcome


class Executor(ABC):
    name: ClassVar[str]

    def __init__(self, resolver: InputResolver, concurrency: int, store: OutputStore) -> None:
        self.resolver = resolver
        self.concurrency = max(1, concurrency)
        self.store = store

    @abstractmethod
    def submit(self, task: BlockTask) -> None:
        """Queue ``task``; it starts when the executor has room. Never raises for user code."""

    @abstractmethod
    def wait(self, timeout: float | None) -> list[TaskOutcome]:
        """Outcomes of tasks that finished; ``[]`` when ``timeout`` seconds pass first."""

    @abstractmethod
    def cancel_all(self) -> None:
        """Stop every queued and running task; their outcomes never come."""

    def close(self) -> None:
        """Release workers and threads. The executor is unusable afterwards."""

    @property
    def slots(self) -> int:
        """How many tasks run at once; more submitted tasks wait in the executor."""
        return self.concurrency

    @property
    @abstractmethod
    def busy(self) -> int:
        """Tasks submitted and not yet returned by ``wait``."""
