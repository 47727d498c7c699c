"""Time one thing inside a fresh process: warm-up runs first, then timed runs.

    python bench/probe.py python    PROJECT [--warmup 1] [--repeat 3]
    python bench/probe.py inline    PROJECT ...
    python bench/probe.py process   PROJECT ...
    python bench/probe.py recorded  PROJECT ...
    python bench/probe.py list_runs PROJECT ...

``python`` calls ``baseline.py`` (next to the project folder) ``pipeline()``: the block
functions as plain Python. ``inline`` / ``process`` call the engine's ``run_pipeline``
(``treadle.engine.api``: nothing recorded) with that executor; ``recorded`` calls
``treadle.run_pipeline`` inline, which records the run in the project's history (SQLite,
or ``TREADLE_DATABASE_URL``), opening it for each run as every caller does. ``list_runs``
opens the history once (untimed) and times ``store.list_runs(limit=20)``.
Imports and block-file loading happen in the warm-up, so the timed runs measure the calls
alone. Stored outputs of earlier runs are deleted (untimed) before each run. Prints one
JSON line: ``{"samples": [seconds, ...]}``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workloads import PIPELINE, clear_outputs


def plain_python(project: Path) -> Callable[[], Any]:
    spec = importlib.util.spec_from_file_location("baseline", project.parent / "baseline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pipeline


def engine_run(project: Path, executor: str) -> Callable[[], Any]:
    from treadle.engine.api import run_pipeline

    return lambda: run_pipeline(project, PIPELINE, executor=executor).raise_for_status()


def recorded_run(project: Path) -> Callable[[], Any]:
    from treadle import run_pipeline  # treadle.scheduler.launch: records the history

    return lambda: run_pipeline(project, PIPELINE, executor="inline").raise_for_status()


def list_runs(project: Path) -> Callable[[], Any]:
    from treadle.store import open_store

    # TREADLE_DATABASE_URL or SQLite, as `treadle runs list` opens it (the folder is named
    # as the project: workloads.py); open for the life of the process
    store = open_store(project, project=project.name)
    if len(store.list_runs(limit=20)) != 20:  # not a test: a guard against timing no work
        raise SystemExit(f"{store!r} holds fewer than 20 runs of project {store.project!r}")
    return lambda: store.list_runs(limit=20)


CALLS: dict[str, Callable[[Path], Callable[[], Any]]] = {
    "python": plain_python,
    "inline": lambda project: engine_run(project, "inline"),
    "process": lambda project: engine_run(project, "process"),
    "recorded": recorded_run,
    "list_runs": list_runs,
}


def time_calls(
    call: Callable[[], Any], before: Callable[[], None], warmup: int, repeat: int
) -> list[float]:
    samples: list[float] = []
    for index in range(warmup + repeat):
        before()
        gc.collect()
        start = time.perf_counter()
        result = call()
        elapsed = time.perf_counter() - start
        del result  # freed outside the timed window, for both kinds of call
        if index >= warmup:
            samples.append(elapsed)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=list(CALLS))
    parser.add_argument("project", type=Path)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    call = CALLS[args.kind](args.project)
    samples = time_calls(call, lambda: clear_outputs(args.project), args.warmup, args.repeat)
    print(json.dumps({"samples": samples}))


if __name__ == "__main__":
    main()
