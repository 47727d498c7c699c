"""The PostgreSQL export benchmark: ``python bench/postgres_export.py [--quick] [--repeat N]``.

For each size (1,000,000 and 10,000 rows; ``--quick``: 100,000 and 10,000), in one run of
this script, in a throw-away database (``pg.py``):

* the data: NYC green-taxi-shaped trips (``treadle.samples.write_csv``, month 2020-10,
  seed 0) written as CSV to a temporary folder, then read with pandas as the example
  pipeline's loader reads them (``dtype=PANDAS_DTYPES["green"]``,
  ``parse_dates=DATE_COLUMNS["green"]``): Int64, float64, string and datetime64 columns.
  Untimed.
* **Treadle replace**: ``Postgres(url).export(df, "trips", if_exists="replace")``, timed
  around that call alone on an already open connection. The table exists (a warm-up
  export made it), so every sample builds a new table and swaps it for the old one,
  which it drops, in one transaction.
* **Treadle append**: ``export(df, "empty", if_exists="append")`` into an empty table with
  the same columns (truncated before each sample, untimed): the same task as psql's.
* **psql \\copy** (the baseline, the physical limit): ``psql -c "\\copy base FROM
  'file.csv' CSV HEADER"`` of the same CSV file into a pre-created empty table with the
  same columns (``CREATE TABLE base (LIKE trips)``, truncated before each sample). Timed
  by psql's own ``\\timing`` (the COPY only, not psql's start or its connection); the
  wall time of the whole psql process is recorded beside it.

Every sample starts after a ``CHECKPOINT`` (untimed), so none pays for the dirty pages of
the one before. Samples are taken round-robin (replace, append, psql, per round): 3 per
measurement (``--repeat N``), five times as many for sizes under 100,000 rows (each takes
a few tens of milliseconds, where a noisy machine shows most); the numbers are medians. Ratio = Treadle / psql, same run;
target: replace within 1.25x. Prints a table and writes
``bench/results/postgres_export.json`` (``postgres_export.quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pg import bench_database
from rich.console import Console
from rich.table import Table
from run import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (1_000_000, 10_000)
QUICK_SIZES = (100_000, 10_000)
TARGET = 1.25
REFERENCES = {
    "note": "published for Mage's PostgreSQL exporter, on another machine: NOT measured here",
    "mage_new_table": 4.8,
    "mage_replace": 5.8,
}


@dataclass
class Measurement:
    key: str
    label: str
    samples: list[float] = field(default_factory=list)
    wall_samples: list[float] = field(default_factory=list)  # psql: the whole process

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label, "samples": self.samples}
        data["median"] = self.median
        if self.wall_samples:
            data["wall_samples"] = self.wall_samples
            data["wall_median"] = statistics.median(self.wall_samples)
        return data


@dataclass
class SizeResult:
    rows: int
    csv_bytes: int
    measurements: dict[str, Measurement]

    @property
    def samples(self) -> int:
        return len(self.measurements["psql"].samples)

    def ratio(self, key: str) -> float:
        return self.measurements[key].median / self.measurements["psql"].median

    def to_dict(self) -> dict[str, Any]:
        ratios = {key: self.ratio(key) for key in ("replace", "append")}
        return {
            "rows": self.rows,
            "csv_bytes": self.csv_bytes,
            "samples": self.samples,
            "measurements": {key: m.to_dict() for key, m in self.measurements.items()},
            "ratios": ratios,
            "target": {
                "measurement": "replace",
                "target": f"<= {TARGET}x psql \\copy",
                "value": ratios["replace"],
                "passed": ratios["replace"] <= TARGET,
            },
        }


def main() -> int:
    args = parse_args()
    sizes = QUICK_SIZES if args.quick else SIZES
    repeat = args.repeat or 3
    machine = machine_info()
    machine["versions"] |= {name: version(name) for name in ("psycopg", "numpy")}
    if shutil.which("psql") is None:
        return skipped("psql is not installed", args.quick, repeat, machine)
    with bench_database() as database, tempfile.TemporaryDirectory() as folder:
        if database.url is None:
            return skipped(database.unavailable, args.quick, repeat, machine)
        machine["server"] = server_version(database.url)
        results = [
            measure_size(database.url, rows, samples_for(rows, repeat), Path(folder))
            for rows in sizes
        ]
    path = write_results(results, args.quick, repeat, machine)
    print_table(results, machine)
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


def samples_for(rows: int, repeat: int) -> int:
    return repeat if rows >= 100_000 else repeat * 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 1 sample (10k: 5)")
    parser.add_argument("--repeat", type=int, help="samples per measurement (default 3)")
    args = parser.parse_args()
    if args.quick and args.repeat is None:
        args.repeat = 1
    return args


def measure_size(url: str, rows: int, repeat: int, folder: Path) -> SizeResult:
    """Time the three measurements on ``rows`` rows, ``repeat`` samples each."""
    import pandas as pd

    from treadle.io import Postgres
    from treadle.samples import DATE_COLUMNS, PANDAS_DTYPES, write_csv

    log(f"{rows:,} rows: writing the CSV and reading it with pandas")
    csv = write_csv("green", folder / f"green_{rows}.csv", rows=rows)
    df = pd.read_csv(csv, dtype=PANDAS_DTYPES["green"], parse_dates=DATE_COLUMNS["green"])
    measurements = {
        "replace": Measurement("replace", "Treadle export, if_exists='replace'"),
        "append": Measurement("append", "Treadle export, 'append' into an empty table"),
        "psql": Measurement("psql", "psql \\copy CSV into an empty table (baseline)"),
    }
    with Postgres(url) as pg:
        pg.export(df, "trips")  # warm-up, and the table each replace swaps out
        pg.execute("drop table if exists empty, base")
        pg.execute("create table empty (like trips); create table base (like trips)")

        def replace() -> float:
            pg.execute("checkpoint")
            return timed(lambda: pg.export(df, "trips", if_exists="replace"))

        def append() -> float:
            pg.execute("truncate empty")
            pg.execute("checkpoint")
            return timed(lambda: pg.export(df, "empty", if_exists="append"))

        def psql() -> float:
            pg.execute("truncate base")
            pg.execute("checkpoint")
            copy_time, wall = psql_copy(url, csv)
            measurements["psql"].wall_samples.append(wall)
            return copy_time

        steps: dict[str, Callable[[], float]] = {"replace": replace, "append": append}
        steps["psql"] = psql
        for round_number in range(1, repeat + 1):
            for key, step in steps.items():
                measurements[key].samples.append(step())
            log(f"{rows:,} rows: round {round_number}/{repeat} done")
        counts = pg.load(
            "select (select count(*) from trips) as a, (select count(*) from base) as b"
        )
        assert counts.iloc[0].tolist() == [rows, rows], counts
    return SizeResult(rows, csv.stat().st_size, measurements)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def psql_copy(url: str, csv: Path) -> tuple[float, float]:
    """psql's own timing of the ``\\copy`` (seconds), and the wall time of the process."""
    command = ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "\\timing on"]
    command += ["-c", f"\\copy base FROM '{csv}' CSV HEADER"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    match = re.search(r"Time: ([\d.]+) ms", done.stdout)
    if match is None:
        raise RuntimeError(f"psql printed no timing: {done.stdout!r} {done.stderr!r}")
    return float(match[1]) / 1000, wall


def server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as connection:
        return str(connection.execute("show server_version").fetchone()[0])


def write_results(
    results: list[SizeResult], quick: bool, repeat: int, machine: dict[str, Any]
) -> Path:
    data = {
        "workload": "postgres_export",
        "description": "NYC green-taxi DataFrame exported to PostgreSQL by Treadle vs psql \\copy"
        " of the same data as CSV (see bench/postgres_export.py)",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "quick": quick,
        "repeat": repeat,
        "machine": machine,
        "sizes": {str(result.rows): result.to_dict() for result in results},
        "references": REFERENCES,
    }
    return save(data, quick)


def skipped(reason: str, quick: bool, repeat: int, machine: dict[str, Any]) -> int:
    log(f"skipped: {reason}")
    data = {"workload": "postgres_export", "quick": quick, "repeat": repeat}
    save(data | {"machine": machine, "skipped": reason, "references": REFERENCES}, quick)
    return 0


def save(data: dict[str, Any], quick: bool) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"postgres_export{'.quick' if quick else ''}.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def print_table(results: list[SizeResult], machine: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(
        title=f"PostgreSQL export ({machine['cpu_count']} CPUs, {machine['cpu_model']},"
        f" PostgreSQL {machine['server']}, treadle {machine['git_commit']})"
    )
    for name in ("rows", "measure", "median", "rows/s", "samples", "vs psql", "target"):
        table.add_column(name, justify="left" if name in ("measure", "samples") else "right")
    for result in results:
        for key, measurement in result.measurements.items():
            ratio = "baseline" if key == "psql" else f"{result.ratio(key):.2f}x"
            target = ""
            if key == "replace":
                target = f"<= {TARGET}x " + ("ok" if result.ratio(key) <= TARGET else "MISSED")
            samples = " ".join(fmt_seconds(s) for s in measurement.samples)
            if measurement.wall_samples:
                walls = " ".join(fmt_seconds(s) for s in measurement.wall_samples)
                samples += f" (process: {walls})"
            table.add_row(
                f"{result.rows:,}",
                measurement.label,
                fmt_seconds(measurement.median),
                f"{result.rows / measurement.median:,.0f}",
                samples,
                ratio,
                target,
            )
    console.print(table)
    console.print(
        f"reference ({REFERENCES['note']}): {REFERENCES['mage_new_table']}x psql into a new"
        f" table, {REFERENCES['mage_replace']}x replacing one"
    )


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds >= 1 else f"{seconds * 1000:.1f} ms"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
