"""Which process is which: a pid alone is reused, so a process is its pid and start tick.

A leaf module (like ``errors`` and ``events``): the engine records who runs a run, the
store and the scheduler ask whether that process still lives.
"""

from __future__ import annotations

import os


def process_start(pid: int) -> float | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc``); None if unknown.

    Two processes with the same pid have different starts, so (pid, start) names one."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return float(stat.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def this_host() -> str:
    return os.uname().nodename


def pid_alive(host: str | None, pid: int | None, started: float | None = None) -> bool | None:
    """Whether the process ``pid`` (that started at ``started``) still runs on this machine.

    None when ``host`` is another machine (only its heartbeat can tell then). A zombie
    (exited, not yet reaped), or a live process with the same pid but a different start
    (the pid was reused), counts as dead."""
    if not host or host != this_host() or not pid or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return True  # no /proc (not Linux): os.kill said it exists
    if fields[0] == "Z":
        return False
    return started is None or float(fields[19]) == started
