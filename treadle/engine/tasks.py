"""What an executor is handed (``BlockTask``) and what it gives back (``TaskOutcome``).

Both are plain, picklable data so they can cross into worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from treadle.errors import ErrorInfo
from treadle.events import BlockStatus
from treadle.project.model import BlockSpec


@dataclass(frozen=True, slots=True)
class InputRef:
    """Where one upstream input comes from.

    ``keys`` holds one output key, or for a reduce every per-item key of the upstream
    block (the input is then the list of their values). ``item`` picks one element of a
    dynamic upstream's list output.
    """

    run_id: str
    keys: tuple[str, ...]
    item: int | None = None
    collect: bool = False


@dataclass(frozen=True, slots=True)
class BlockRunInfo:
    """The ``block`` a block function can ask for: what is running, which attempt."""

    name: str
    type: str
    file: str
    upstream: tuple[str, ...]
    index: int | None
    attempt: int

    @property
    def key(self) -> str:
        return self.name if self.index is None else f"{self.name}.{self.index}"


@dataclass(frozen=True, slots=True)
class RunContext:
    """Everything about a run that every block of it sees."""

    run_id: str
    pipeline: str
    project_root: Path
    execution_date: datetime
    interval_start: datetime
    interval_end: datetime
    variables: dict[str, Any] = field(default_factory=dict)
    trigger: str | None = None
    table_format: str = "arrow"
    triggered_by: str | None = None
    resumed: bool = False  # this run id ran before; this is a resume or a retry of it
    pipeline_hash: str = ""
    file_hashes: dict[str, str] = field(default_factory=dict)
    masked: tuple[str, ...] = ()  # secrets no log line may show
    outputs_root: Path = field(init=False)
    logs_root: Path = field(init=False)

    def __post_init__(self) -> None:
        state = self.project_root / ".treadle"
        object.__setattr__(self, "outputs_root", state / "outputs")
        object.__setattr__(self, "logs_root", state / "logs")


@dataclass(frozen=True, slots=True)
class BlockTask:
    task_id: int
    run: RunContext
    block: BlockSpec
    inputs: tuple[InputRef, ...]
    index: int | None = None
    attempt: int = 1
    final_attempt: bool = True  # no retry follows if this attempt fails

    @property
    def key(self) -> str:
        return self.block.name if self.index is None else f"{self.block.name}.{self.index}"

    def info(self) -> BlockRunInfo:
        b = self.block
        return BlockRunInfo(b.name, b.type.value, b.file, b.upstream, self.index, self.attempt)


@dataclass(slots=True)
class TaskOutcome:
    """The result of one attempt of one block (or one item of a dynamic block).

    ``value`` is set only by executors that share memory with the runner (inline);
    ``meta`` once the output is stored, or ``pending`` while a writer thread stores it.
    """

    task_id: int
    status: BlockStatus
    duration: float = 0.0
    error: ErrorInfo | None = None
    value: Any = None
    has_value: bool = False
    meta: Any = None  # OutputMeta
    pending: Any = None  # PendingOutput
    cpu_time: float | None = None
    peak_memory: int | None = None
    secrets_read: tuple[str, ...] = ()  # names, for the audit trail
