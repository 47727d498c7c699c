"""What is measured for every workload, and the one routine that measures it.

Each ``Measurement`` is a command line. A *whole-process* measurement times the command's
wall clock from outside (one untimed warm-up run first, so the OS file cache is warm for
everyone). An *in-process* measurement runs ``probe.py``, which times the calls inside
a fresh process after a warm-up call. Every sample is its own process; samples are taken
round-robin across the measurements.

Ratios compare like with like, from the same run of the harness: whole-process numbers
against the plain-Python script as a whole process, in-process numbers against the plain
calls in-process. The orchestration cost per block is (Treadle in-process − plain calls
in-process) / the number of block runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workloads import PIPELINE, Target, Workspace

WHOLE = "whole process"
IN_PROCESS = "in-process"
PYTHON = sys.executable
TREADLE = str(Path(sys.executable).with_name("treadle"))
PROBE = str(Path(__file__).with_name("probe.py"))


@dataclass(frozen=True)
class Measurement:
    key: str
    label: str
    scope: str  # WHOLE or IN_PROCESS
    command: Callable[[Workspace], list[str]]
    #: The whole-process run prints ``{"calls": seconds}``: its in-process time, cold.
    reports_calls: bool = False


def probe(kind: str) -> Callable[[Workspace], list[str]]:
    return lambda space: [PYTHON, PROBE, kind, str(space.root)]


def treadle_run(*options: str) -> Callable[[Workspace], list[str]]:
    return lambda space: [TREADLE, "run", str(space.project), PIPELINE, *options]


MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement(
        "python",
        "plain Python script",
        WHOLE,
        lambda space: [PYTHON, str(space.baseline)],
        reports_calls=True,
    ),
    Measurement("python_calls", "plain Python calls", IN_PROCESS, probe("python")),
    Measurement("inline", "run_pipeline inline", IN_PROCESS, probe("inline")),
    Measurement("process", "run_pipeline process", IN_PROCESS, probe("process")),
    Measurement("cli", "treadle run", WHOLE, treadle_run()),
    Measurement(
        "cli_process", "treadle run --executor process", WHOLE, treadle_run("--executor", "process")
    ),
)
#: The plain-Python measurement each scope is compared with.
BASELINES = {WHOLE: "python", IN_PROCESS: "python_calls"}


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)
    #: In-process time of the calls, reported by each whole-process run (cold process).
    calls: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"samples": self.samples, "median": self.median}
        if self.calls:
            calls = {"samples": self.calls, "median": statistics.median(self.calls)}
            data["calls_in_process"] = calls
        return data


class BenchError(RuntimeError):
    pass


def measure_all(
    space: Workspace, repeat: int, on_round: Callable[[int], None] = lambda _: None
) -> dict[str, Timing]:
    """``repeat`` samples of every measurement, taken round-robin (one of each per round)
    so that a slow patch of the machine hits all of them alike. A first, untimed round of
    the whole-process commands warms the OS file cache and Python's bytecode cache."""
    timings = {m.key: Timing() for m in MEASUREMENTS}
    for measurement in MEASUREMENTS:
        if measurement.scope == WHOLE:
            sample(measurement, space)
    for round_ in range(repeat):
        on_round(round_)
        for measurement in MEASUREMENTS:
            seconds, calls = sample(measurement, space)
            timings[measurement.key].samples.append(seconds)
            if calls is not None:
                timings[measurement.key].calls.append(calls)
    return timings


def sample(measurement: Measurement, space: Workspace) -> tuple[float, float | None]:
    """One timed run: (seconds, in-process seconds of the calls if the run reports them).

    Before it, untimed: earlier outputs are deleted and pending disk writes flushed, so
    no run pays for the previous one's write-back."""
    space.clear_outputs()
    os.sync()
    command = measurement.command(space)
    if measurement.scope == IN_PROCESS:
        output = run_checked([*command, "--warmup", "1", "--repeat", "1"], capture=True)
        return json.loads(output)["samples"][0], None
    started = time.perf_counter()
    output = run_checked(command, capture=measurement.reports_calls)
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(output)["calls"] if measurement.reports_calls else None


def run_checked(command: list[str], *, capture: bool) -> str:
    done = subprocess.run(
        command,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout or ""


# -- derived numbers -----------------------------------------------------------------------


def derive(timings: dict[str, Timing], block_runs: int) -> dict[str, dict[str, float]]:
    """Per measurement: ``median`` (s), ``ratio`` vs its plain-Python baseline, and for
    Treadle's in-process runs ``ms_per_block`` of orchestration cost."""
    metrics: dict[str, dict[str, float]] = {}
    for measurement in MEASUREMENTS:
        baseline_key = BASELINES[measurement.scope]
        median, baseline = timings[measurement.key].median, timings[baseline_key].median
        metrics[measurement.key] = {"median": median, "ratio": median / baseline}
        if measurement.scope == IN_PROCESS and measurement.key != baseline_key:
            metrics[measurement.key]["ms_per_block"] = (median - baseline) / block_runs * 1000
    return metrics


UNITS = {"median": " s", "ratio": "x", "ms_per_block": " ms/block"}


def describe(target: Target) -> str:
    return f"{target.op} {target.limit:g}{UNITS[target.metric]}"


def check_targets(
    targets: tuple[Target, ...], metrics: dict[str, dict[str, float]]
) -> list[dict[str, object]]:
    checked = []
    for target in targets:
        value = metrics[target.measurement][target.metric]
        checked.append(
            {
                "name": target.label,
                "measurement": target.measurement,
                "metric": target.metric,
                "target": describe(target),
                "value": value,
                "passed": target.passes(value),
            }
        )
    return checked
