"""What can be measured, and the one routine that measures it.

Each ``Measurement`` is a command line (and the run-history database it uses); each
workload names the ones it takes. A *whole-process* measurement times the command's wall
clock from outside (one untimed warm-up run first, so the OS file cache is warm for
everyone). An *in-process* measurement runs ``probe.py``, which times the calls inside
a fresh process after a warm-up call. Every sample is its own process; samples are taken
round-robin across the measurements. A PostgreSQL measurement is skipped, with the
reason, when the harness has no PostgreSQL database.

Ratios compare like with like, from the same run of the harness: whole-process numbers
against the plain-Python script as a whole process, in-process numbers against the plain
calls in-process. The orchestration cost per block is (Treadle in-process − plain calls
in-process) / the number of block runs; the history's recording cost per block is
(``treadle.run_pipeline`` in-process − the engine's ``run_pipeline`` in-process) / the
number of block runs.
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

from workloads import PIPELINE, Target, Workload, Workspace

WHOLE = "whole process"
IN_PROCESS = "in-process"
SQLITE = "sqlite"  # the project's default history: <project>/.treadle/treadle.db
POSTGRES = "postgres"  # the harness's database, through TREADLE_DATABASE_URL
PYTHON = sys.executable
TREADLE = str(Path(sys.executable).with_name("treadle"))
PROBE = str(Path(__file__).with_name("probe.py"))


@dataclass(frozen=True)
class Measurement:
    key: str
    label: str
    scope: str  # WHOLE or IN_PROCESS
    command: Callable[[Workspace], list[str]]
    #: The baseline measurement it is compared with (ratio, ms/block); None for none.
    versus: str | None = None
    #: The measurement that is the same run without the run history (recording cost).
    history_over: str | None = None
    #: The run-history database it reads or writes (``treadle run`` records one too);
    #: None when it touches none.
    database: str | None = None
    #: The whole-process run prints ``{"calls": seconds}``: its in-process time, cold.
    reports_calls: bool = False


def probe(kind: str) -> Callable[[Workspace], list[str]]:
    return lambda space: [PYTHON, PROBE, kind, str(space.project)]


def treadle(*args: str) -> Callable[[Workspace], list[str]]:
    """``treadle ARGS``; ``{project}`` in an argument is the workspace's project folder."""
    return lambda space: [TREADLE, *(a.format(project=space.project) for a in args)]


def recorded(database: str) -> Measurement:
    return Measurement(
        f"inline_{database}",
        f"run_pipeline inline + history ({database})",
        IN_PROCESS,
        probe("recorded"),
        versus="python_calls",
        history_over="inline",
        database=database,
    )


def list_runs_query(database: str) -> Measurement:
    label = f"store.list_runs(limit=20) ({database})"
    return Measurement(
        f"list_runs_{database}", label, IN_PROCESS, probe("list_runs"), database=database
    )


def runs_list_command(database: str, output: str) -> Measurement:
    options = ("--json",) if output == "json" else ()
    return Measurement(
        f"runs_list_{output}_{database}",
        " ".join(("treadle runs list", *options, f"({database})")),
        WHOLE,
        treadle("runs", "list", "--project", "{project}", *options),
        versus="python_startup",
        database=database,
    )


ALL_MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement(
        "python",
        "plain Python script",
        WHOLE,
        lambda space: [PYTHON, str(space.baseline)],
        reports_calls=True,
    ),
    Measurement("python_calls", "plain Python calls", IN_PROCESS, probe("python")),
    Measurement("inline", "run_pipeline inline", IN_PROCESS, probe("inline"), "python_calls"),
    recorded(SQLITE),
    recorded(POSTGRES),
    Measurement("process", "run_pipeline process", IN_PROCESS, probe("process"), "python_calls"),
    Measurement(
        "cli",
        "treadle run",
        WHOLE,
        treadle("run", "{project}", PIPELINE),
        "python",
        database=SQLITE,
    ),
    Measurement(
        "cli_process",
        "treadle run --executor process",
        WHOLE,
        treadle("run", "{project}", PIPELINE, "--executor", "process"),
        "python",
        database=SQLITE,
    ),
    Measurement(
        "python_startup",
        "Python start-up (python -c pass)",
        WHOLE,
        lambda _: [PYTHON, "-c", "pass"],
    ),
    list_runs_query(SQLITE),
    list_runs_query(POSTGRES),
    *(runs_list_command(db, output) for db in (SQLITE, POSTGRES) for output in ("json", "table")),
)
MEASUREMENTS = {m.key: m for m in ALL_MEASUREMENTS}


def measurements_of(workload: Workload) -> list[Measurement]:
    return [MEASUREMENTS[key] for key in workload.measurements]


def baselines_of(workload: Workload) -> set[str]:
    """The keys other measurements of ``workload`` are compared with."""
    return {m.versus for m in measurements_of(workload) if m.versus}


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)
    #: In-process time of the calls, reported by each whole-process run (cold process).
    calls: list[float] = field(default_factory=list)
    #: Why it was not measured (no PostgreSQL); empty when it was.
    skipped: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_dict(self) -> dict[str, object]:
        if self.skipped:
            return {"skipped": self.skipped}
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
    """``repeat`` samples of every measurement of the workspace's workload, taken
    round-robin (one of each per round) so that a slow patch of the machine hits all of
    them alike. A first, untimed round of the whole-process commands warms the OS file
    cache and Python's bytecode cache (and creates the project's SQLite history)."""
    timings = {m.key: Timing() for m in measurements_of(space.workload)}
    measured = []
    for measurement in measurements_of(space.workload):
        if measurement.database == POSTGRES and space.postgres.url is None:
            timings[measurement.key].skipped = space.postgres.unavailable
        else:
            measured.append(measurement)
    for measurement in measured:
        if measurement.scope == WHOLE:
            sample(measurement, space)
    for round_ in range(repeat):
        on_round(round_)
        for measurement in measured:
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
    env = environment(measurement, space)
    if measurement.scope == IN_PROCESS:
        output = run_checked([*command, "--warmup", "1", "--repeat", "1"], env, capture=True)
        return json.loads(output)["samples"][0], None
    started = time.perf_counter()
    output = run_checked(command, env, capture=measurement.reports_calls)
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(output)["calls"] if measurement.reports_calls else None


#: Set by the harness for every command, whatever this process's environment says.
CONTROLLED = ("TREADLE_DATABASE_URL", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


def environment(measurement: Measurement, space: Workspace) -> dict[str, str]:
    """This process's environment, with ``TREADLE_DATABASE_URL`` set to the harness's
    PostgreSQL database for a PostgreSQL measurement and removed for the others.

    Bytecode is cached, as it is for an installed package, in the workspace (not next to
    the sources): the untimed warm-up run writes it, the timed runs read it. Without this,
    ``PYTHONDONTWRITEBYTECODE=1`` would make every whole-process run compile Treadle."""
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env["PYTHONPYCACHEPREFIX"] = str(space.pycache)
    if measurement.database == POSTGRES and space.postgres.url is not None:
        env["TREADLE_DATABASE_URL"] = space.postgres.url
    return env


def run_checked(command: list[str], env: dict[str, str], *, capture: bool) -> str:
    done = subprocess.run(
        command,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout or ""


# -- derived numbers -----------------------------------------------------------------------


def derive(workload: Workload, timings: dict[str, Timing]) -> dict[str, dict[str, float]]:
    """Per measurement taken: ``median`` (s); ``ratio`` vs its plain-Python baseline; for
    Treadle's in-process pipeline runs ``ms_per_block`` of orchestration cost; for a run
    with history, ``history_ms_per_block`` of recording cost (vs the same without)."""
    block_runs = len(workload.blocks)
    metrics: dict[str, dict[str, float]] = {}
    for measurement in measurements_of(workload):
        if timings[measurement.key].skipped:
            continue
        median = timings[measurement.key].median
        metrics[measurement.key] = values = {"median": median}
        if measurement.versus is not None:
            baseline = timings[measurement.versus].median
            values["ratio"] = median / baseline
            if measurement.scope == IN_PROCESS and block_runs:
                values["ms_per_block"] = (median - baseline) / block_runs * 1000
        if measurement.history_over is not None:
            without = timings[measurement.history_over].median
            values["history_ms_per_block"] = (median - without) / block_runs * 1000
    return metrics


UNITS = {
    "median": " s",
    "ratio": "x",
    "ms_per_block": " ms/block",
    "history_ms_per_block": " ms/block",
}


def describe(target: Target) -> str:
    return f"{target.op} {target.limit:g}{UNITS[target.metric]}"


def check_targets(
    targets: tuple[Target, ...], metrics: dict[str, dict[str, float]]
) -> list[dict[str, object]]:
    """Each target with its value and whether it passed (``None``: not measured)."""
    checked = []
    for target in targets:
        value = metrics.get(target.measurement, {}).get(target.metric)
        checked.append(
            {
                "name": target.label,
                "measurement": target.measurement,
                "metric": target.metric,
                "target": describe(target),
                "value": value,
                "passed": None if value is None else target.passes(value),
            }
        )
    return checked
