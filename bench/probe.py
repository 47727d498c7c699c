"""Time one thing inside a fresh process: warm-up runs first, then timed runs.

    python bench/probe.py python   WORKSPACE [--warmup 1] [--repeat 3]
    python bench/probe.py inline   WORKSPACE ...
    python bench/probe.py process  WORKSPACE ...

``python`` calls the workspace's ``baseline.py`` ``pipeline()`` (the block functions as plain
Python); ``inline`` / ``process`` call ``run_pipeline`` with that executor. Imports and
block-file loading happen in the warm-up, so the timed runs measure the calls alone.
Stored outputs of earlier runs are deleted (untimed) before each run. Prints one JSON
line: ``{"samples": [seconds, ...]}``.
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


def plain_python(workspace: Path) -> Callable[[], Any]:
    spec = importlib.util.spec_from_file_location("baseline", workspace / "baseline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pipeline


def treadle_run(workspace: Path, executor: str) -> Callable[[], Any]:
    from treadle import run_pipeline

    project = workspace / "project"

    def run() -> Any:
        return run_pipeline(project, PIPELINE, executor=executor).raise_for_status()

    return run


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
    parser.add_argument("kind", choices=["python", "inline", "process"])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.kind == "python":
        call = plain_python(args.workspace)
    else:
        call = treadle_run(args.workspace, args.kind)
    project = args.workspace / "project"
    samples = time_calls(call, lambda: clear_outputs(project), args.warmup, args.repeat)
    print(json.dumps({"samples": samples}))


if __name__ == "__main__":
    main()
