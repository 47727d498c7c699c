"""The data-lake export benchmark: ``python bench/lake_export.py [--rows N] [--repeat N]``.

In one run of this script: NYC green-taxi-shaped trips (``treadle.samples``, read with
the example pipeline's dtypes and dates, plus the ``lpep_pickup_date`` column the example
adds), 1,000,000 rows by default, written as a Hive-partitioned Parquet dataset by pickup
date (~31 partitions):

* **Treadle**: ``Files(root).export(df, "lake/trips", partition_by=["lpep_pickup_date"])``
  — pandas → Arrow, the dataset written into a temporary folder, then swapped in
  atomically (``replace``);
* **pyarrow** (the baseline): ``pa.Table.from_pandas`` then
  ``pyarrow.dataset.write_dataset`` of the same DataFrame into a new folder, with the same
  partitioning — the direct code the course drops down to (no temporary folder, no swap).

Samples round-robin, median of ``--repeat`` (default 5); ratio = Treadle / pyarrow, target
≤ 1.1×. Writes ``bench/results/lake_export.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from treadle.io.files import Files
from treadle.samples import DATE_COLUMNS, PANDAS_DTYPES, write_csv

RESULTS = Path(__file__).parent / "results"


def make_trips(folder: Path, rows: int) -> pd.DataFrame:
    csv = folder / "green.csv"
    write_csv("green", csv, rows=rows, month="2020-10", seed=0)
    df = pd.read_csv(csv, dtype=PANDAS_DTYPES["green"], parse_dates=DATE_COLUMNS["green"])
    df["lpep_pickup_date"] = df["lpep_pickup_datetime"].dt.date
    return df


def time_treadle(df: pd.DataFrame, root: Path) -> float:
    started = time.perf_counter()
    Files(root).export(df, "lake/trips", partition_by=["lpep_pickup_date"])
    return time.perf_counter() - started


def time_pyarrow(df: pd.DataFrame, root: Path, n: int) -> float:
    target = root / f"raw_{n}"
    started = time.perf_counter()
    table = pa.Table.from_pandas(df, preserve_index=False)  # what the user's code does too
    ds.write_dataset(
        table, target, format="parquet", partitioning=["lpep_pickup_date"],
        partitioning_flavor="hive", max_partitions=100_000,
    )  # fmt: skip
    took = time.perf_counter() - started
    shutil.rmtree(target)
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="treadle-bench-lake-") as temp:
        folder = Path(temp)
        df = make_trips(folder, args.rows)
        time_treadle(df, folder)  # warm-up, untimed
        time_pyarrow(df, folder, -1)
        treadle, raw = [], []
        for n in range(args.repeat):
            treadle.append(time_treadle(df, folder))
            raw.append(time_pyarrow(df, folder, n))
        partitions = sum(1 for p in (folder / "lake/trips").iterdir() if p.is_dir())
    result = {
        "rows": args.rows,
        "partitions": partitions,
        "treadle_s": statistics.median(treadle),
        "pyarrow_s": statistics.median(raw),
        "treadle_samples": treadle,
        "pyarrow_samples": raw,
    }
    result["ratio"] = result["treadle_s"] / result["pyarrow_s"]
    print(
        f"{args.rows:,} rows, {partitions} partitions: Treadle {result['treadle_s']:.3f} s, "
        f"pyarrow.dataset.write_dataset {result['pyarrow_s']:.3f} s, "
        f"ratio {result['ratio']:.2f}x (target <= 1.1x)"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lake_export.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
