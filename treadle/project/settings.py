"""Every setting of ``treadle.yaml``, with its default, in one place.

Each key is optional. Unknown keys are reported (with a "did you mean") by the loader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

EXECUTOR_NAMES = ("inline", "process")
OUTPUT_FORMATS = ("arrow", "parquet")


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
    database_url: str = ""


SETTING_KEYS = tuple(ProjectSettings.__dataclass_fields__)
