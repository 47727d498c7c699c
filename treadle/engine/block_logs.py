"""Each block run's log: its ``logger``, ``print`` and stderr, one file per block run.

The file (``.treadle/logs/<run_id>/<key>.log``) is opened on the first line written, so
a block that logs nothing costs no file. Every line carries the time, run id and block.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

from treadle.project.masking import mask

MAX_LOG_BYTES = 100 * 1024 * 1024  # per block run: a runaway print loop must not fill the disk


class BlockLog(io.TextIOBase):
    """A text stream that prefixes each line and appends it to the block run's log file."""

    def __init__(
        self, logs_root: Path, run_id: str, key: str, attempt: int, masked: tuple[str, ...] = ()
    ) -> None:
        self.logs_root, self.run_id, self.key = logs_root, run_id, key
        self.masked = masked
        self.prefix = f"{run_id} {key}#{attempt}"
        self._file: io.TextIOWrapper | None = None
        self._partial = ""
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.write_line("OUT", line)
        return len(text)

    def write_line(self, level: str, line: str) -> None:
        if self._file is None:
            path = log_path(self.logs_root, self.run_id, self.key)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        if self._written > MAX_LOG_BYTES:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        if self.masked:
            line = mask(line, self.masked)
        text = f"{stamp} {level:<7} [{self.prefix}] {line}\n"
        self._written += len(text)
        if self._written > MAX_LOG_BYTES:
            text = f"{stamp} WARNING [{self.prefix}] log cut: over {MAX_LOG_BYTES:,} bytes\n"
        self._file.write(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._partial:
            self.write_line("OUT", self._partial)
            self._partial = ""
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()

    def logger(self) -> logging.Logger:
        """A logger writing to this log (not registered globally, so nothing leaks)."""
        logger = logging.Logger(f"treadle.block.{self.prefix}", logging.DEBUG)
        logger.addHandler(_LogHandler(self))
        return logger


class _LogHandler(logging.Handler):
    def __init__(self, log: BlockLog) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            for line in message.splitlines() or [""]:
                self.log.write_line(record.levelname, line)
        except Exception:  # a broken log line must never fail the block
            self.handleError(record)


def log_path(logs_root: Path, run_id: str, key: str) -> Path:
    return logs_root / run_id / f"{key}.log"


_current_log: ContextVar[BlockLog | None] = ContextVar("treadle_block_log", default=None)


class _StreamProxy(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr``: writes go to the block log of the
    current context (thread), else to the real stream. Installed once and left in place,
    so concurrent runs in several threads never swap process-wide streams."""

    def __init__(self, original: TextIO) -> None:
        self._original = original

    def _target(self) -> Any:
        return _current_log.get() or self._original

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return _current_log.get() is None and self._original.isatty()

    def fileno(self) -> int:
        return self._original.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


@contextmanager
def capture_output(log: BlockLog) -> Iterator[None]:
    """Send this context's ``print`` and stderr to ``log``."""
    if not isinstance(sys.stdout, _StreamProxy):
        sys.stdout = _StreamProxy(sys.stdout)
    if not isinstance(sys.stderr, _StreamProxy):
        sys.stderr = _StreamProxy(sys.stderr)
    token = _current_log.set(log)
    try:
        yield
    finally:
        _current_log.reset(token)
