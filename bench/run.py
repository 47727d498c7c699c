"""Treadle's benchmarks: ``python bench/run.py [--quick] [--only NAME] [--keep]``.

For each workload (see ``workloads.py``) this writes a project and a plain-Python script
into a temporary folder, times both (see ``measure.py``), prints one table for all
workloads and writes ``bench/results/<workload>.json`` (``<workload>.quick.json`` with
``--quick``). Measurements on PostgreSQL use a database created for this run of the
harness and dropped at its end (``pg.py``). See ``bench/README.md`` for how to read the
numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from measure import (
    Measurement,
    Timing,
    baselines_of,
    check_targets,
    derive,
    measure_all,
    measurements_of,
)
from pg import Postgres, bench_database
from rich.console import Console
from rich.table import Table
from workloads import WORKLOADS, Workload, create_workspace

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
REPEAT = 3
QUICK_REPEAT = 1


@dataclass
class Outcome:
    workload: Workload
    timings: dict[str, Timing]
    metrics: dict[str, dict[str, float]]
    targets: list[dict[str, Any]]


def main() -> int:
    args = parse_args()
    stderr = Console(stderr=True)
    repeat = args.repeat or (QUICK_REPEAT if args.quick else REPEAT)
    machine = machine_info()
    os.environ.pop("TREADLE_DATABASE_URL", None)  # SQLite unless a measurement says otherwise
    outcomes = []
    with bench_database() as postgres:
        if postgres.url is None:
            stderr.print(f"[yellow]PostgreSQL measurements skipped: {postgres.unavailable}")
        for workload in selected(args.only):
            outcome = run_workload(workload, args.quick, repeat, args.keep, postgres, stderr)
            path = write_result(outcome, args.quick, repeat, machine)
            stderr.print(f"[dim]wrote {path.relative_to(BENCH.parent)}[/dim]")
            outcomes.append(outcome)
    print_table(outcomes, machine)
    return 0  # a benchmark reports; a missed target is a number to look at, not an error


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run Treadle's benchmarks.")
    parser.add_argument(
        "--quick", action="store_true", help="smaller data (rows2m: 200k rows), 1 sample each"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[w.name for w in WORKLOADS],
        help="run only this workload (repeatable)",
    )
    parser.add_argument("--repeat", type=int, help=f"samples per measurement (default {REPEAT})")
    parser.add_argument("--keep", action="store_true", help="keep the generated temp folders")
    return parser.parse_args()


def selected(only: list[str] | None) -> list[Workload]:
    return [w for w in WORKLOADS if not only or w.name in only]


def run_workload(
    workload: Workload, quick: bool, repeat: int, keep: bool, postgres: Postgres, log: Console
) -> Outcome:
    rows = workload.quick_rows if quick else workload.rows
    folder = Path(tempfile.mkdtemp(prefix=f"treadle-bench-{workload.name}-"))
    try:
        log.print(f"[bold]{workload.name}[/bold]: preparing {folder}")
        space = create_workspace(folder, workload, rows, postgres)
        with log.status(f"{workload.name}: warming up") as status:

            def on_round(index: int) -> None:
                status.update(f"{workload.name}: round {index + 1} of {repeat}")

            timings = measure_all(space, repeat, on_round)
        for measurement in measurements_of(workload):
            log.print(f"  {measurement.label:<44} {fmt_timing(timings[measurement.key])}")
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    metrics = derive(workload, timings)
    return Outcome(workload, timings, metrics, check_targets(workload.targets, metrics))


# -- results files -------------------------------------------------------------------------


def write_result(outcome: Outcome, quick: bool, repeat: int, machine: dict[str, Any]) -> Path:
    workload = outcome.workload
    data = {
        "workload": workload.name,
        "description": workload.description,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "repeat": repeat,
        "rows": workload.quick_rows if quick else workload.rows,
        "block_runs": len(workload.blocks),
        "machine": machine,
        "measurements": {
            m.key: {
                "label": m.label,
                "scope": m.scope,
                **({"database": m.database} if m.database else {}),
                "compared_with": m.versus,
                **({"history_over": m.history_over} if m.history_over else {}),
                **outcome.timings[m.key].to_dict(),
            }
            for m in measurements_of(workload)
        },
        **{
            name: {
                key: values[metric] for key, values in outcome.metrics.items() if metric in values
            }
            for name, metric in (
                ("ratios", "ratio"),
                ("ms_per_block", "ms_per_block"),
                ("history_ms_per_block", "history_ms_per_block"),
            )
        },
        "targets": outcome.targets,
        "references": {
            "note": "published figures from other tools on other machines, not measured here",
            **workload.references,
        },
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{workload.name}{'.quick' if quick else ''}.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: version(name) for name in ("treadle", "pandas", "pyarrow")},
        "git_commit": git_commit(),
    }


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    names = [line.partition(":")[2].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor()


def git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(BENCH.parent), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    return f"{commit}+dirty" if commit and git("status", "--porcelain") else commit


# -- the table -----------------------------------------------------------------------------


def print_table(outcomes: list[Outcome], machine: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(
        title="Treadle benchmarks (median of samples; ratios vs plain Python measured in this run)",
        caption=(
            f"{machine['cpu_count']} CPUs, {machine['cpu_model']}, Python {machine['python']}, "
            f"treadle {machine['git_commit']}.  Reference = published figures for other tools "
            "on other machines, NOT measured here."
        ),
    )
    for header in ("workload", "measure", "scope", "median", "samples"):
        table.add_column(header, justify="right" if header in ("median",) else "left")
    for header in ("vs python", "ms/block", "history ms/block", "target", "ok"):
        table.add_column(header, justify="right")
    table.add_column("reference (published, other machines)", style="dim")
    for outcome in outcomes:
        for index, measurement in enumerate(measurements_of(outcome.workload)):
            label = outcome.workload.name if index == 0 else ""
            table.add_row(label, *row_cells(outcome, measurement))
        table.add_section()
    console.print(table)


def row_cells(outcome: Outcome, measurement: Measurement) -> list[str]:
    timing = outcome.timings[measurement.key]
    metrics = outcome.metrics.get(measurement.key, {})
    scope = measurement.scope
    if measurement.reports_calls:
        scope += f"\n(calls in it: {fmt_seconds(statistics.median(timing.calls))})"
    targets = [t for t in outcome.targets if t["measurement"] == measurement.key]
    if measurement.key in baselines_of(outcome.workload):
        versus = "baseline"
    else:
        versus = fmt_ratio(metrics["ratio"]) if "ratio" in metrics else ""
    return [
        measurement.label,
        scope,
        "skipped" if timing.skipped else fmt_seconds(timing.median),
        timing.skipped or " ".join(fmt_seconds(s) for s in timing.samples),
        versus,
        fmt_ms(metrics.get("ms_per_block")),
        fmt_ms(metrics.get("history_ms_per_block")),
        "\n".join(str(t["target"]) for t in targets),
        "\n".join(pass_mark(t["passed"]) for t in targets),
        outcome.workload.references.get(measurement.key, ""),
    ]


def pass_mark(passed: bool | None) -> str:
    if passed is None:
        return "[yellow]n/a[/yellow]"
    return "[green]PASS[/green]" if passed else "[bold red]FAIL[/bold red]"


def fmt_timing(timing: Timing) -> str:
    return f"skipped: {timing.skipped}" if timing.skipped else fmt_seconds(timing.median)


def fmt_ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.2f}x"


def fmt_seconds(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
