"""Every setting of ``treadle.yaml``, with its default, in one place.

Each key is optional. Unknown keys are reported (with a "did you mean") by the loader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

EXECUTOR_NAMES = ("inline", "process")
OUTPUT_FORMATS = ("arrow", "parquet")
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Retention:
    """How long things are kept (``retention:`` in treadle.yaml; durations like ``30d``).

    Applied in the background after runs, and by ``treadle clean``."""

    #: Block outputs under ``.treadle/outputs/``: the biggest by far.
    outputs: float = 30 * DAY
    #: Block logs under ``.treadle/logs/``.
    logs: float = 90 * DAY
    #: Finished runs in the run history (with their outputs and logs).
    runs: float = 365 * DAY


RETENTION_KEYS = tuple(Retention.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class ProjectSettings:
    #: A display name; defaults to the project folder's name.
    name: str = ""
    #: How blocks run: ``inline`` (in the calling process) or ``process`` (worker pool).
    executor: str = "inline"
    #: Most blocks of one run that run at once (process executor).
    concurrency: int = max(os.cpu_count() or 1, 1)
    #: Tables in the output store: ``arrow`` (Arrow IPC, fastest) or ``parquet`` (smaller).
    output_format: str = "arrow"
    #: Metadata database URL (run history); empty means SQLite under ``.treadle/``.
    #: ``TREADLE_DATABASE_URL`` in the environment wins over it.
    database_url: str = ""
    #: Seconds between heartbeats of a running run.
    heartbeat_every: float = 10.0
    #: A running run whose heartbeat is older than this many seconds is lost
    #: (a dead process on this machine is noticed at once).
    lost_after: float = 60.0
    #: How long outputs, logs and runs are kept.
    retention: Retention = field(default_factory=Retention)
    #: Most scheduled, API and backfill runs of the whole project at once; empty: no limit.
    #: (A pipeline's own ``max_active_runs`` applies as well.)
    max_active_runs: int | None = None
    #: Where the web UI is reached, for links in alerts (``{base_url}/runs/<run id>``).
    base_url: str = "http://127.0.0.1:6789"
    #: Whether the server asks who is calling (users, roles, API tokens). ``false`` is
    #: allowed only while the server listens on 127.0.0.1 (a one-person laptop).
    auth: bool = True
    #: Largest request body the server accepts, in bytes (block files, uploads).
    max_body_bytes: int = 10 * 1024 * 1024


SETTING_KEYS = tuple(ProjectSettings.__dataclass_fields__)
