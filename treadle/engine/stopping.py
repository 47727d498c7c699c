"""A stop flag per run, for code that waits inside a block call on the runner's thread.

A sensor block waits between polls; when its run is cancelled (``treadle cancel``, the
scheduler stopping), that wait ends at once instead of running on to the sensor's
timeout. Worker processes (the ``process`` executor) never see these flags: they are
stopped by being killed.
"""

from __future__ import annotations

import threading

_flags: dict[str, threading.Event] = {}
_lock = threading.Lock()


def stop_flag(run_id: str) -> threading.Event:
    """The run's stop flag (made on first use)."""
    with _lock:
        return _flags.setdefault(run_id, threading.Event())


def forget(run_id: str) -> None:
    with _lock:
        _flags.pop(run_id, None)
