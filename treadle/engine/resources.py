"""What one block attempt cost: CPU seconds and peak resident memory.

CPU is the process's CPU time (so work on a library's threads counts). Peak memory is
the process's high-water mark of resident memory, reset before each attempt through
``/proc/self/clear_refs`` on Linux; elsewhere it is the peak since the process started.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass

_RSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


@dataclass(slots=True)
class Usage:
    cpu_time: float
    peak_memory: int | None


class _PeakReset:
    """An open ``/proc/self/clear_refs`` of this process (re-opened after a fork)."""

    fd: int | None = None
    pid: int | None = None

    @classmethod
    def reset(cls) -> None:
        if cls.pid != os.getpid():
            cls.pid = os.getpid()
            try:
                cls.fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
            except OSError:
                cls.fd = None
        if cls.fd is not None:
            try:
                os.write(cls.fd, b"5")  # 5: reset the peak resident set size
            except OSError:
                cls.fd = None


class Meter:
    """Start it before an attempt; ``usage()`` after it."""

    def __init__(self) -> None:
        _PeakReset.reset()
        self._cpu = time.process_time()

    def usage(self) -> Usage:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RSS_UNIT
        return Usage(time.process_time() - self._cpu, peak or None)
