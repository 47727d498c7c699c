"""NYC TLC-shaped taxi trip data, made up but realistic, deterministic by seed.

``make_table`` builds a green or yellow trip table with the real column names, order and
types, and the quirks real monthly files have (zero and missing passenger counts, zero
distances, rows with no vendor, a few pickups just outside the month). ``write_csv`` writes
it the way the TLC published it: plain CSV, naive ``YYYY-MM-DD HH:MM:SS`` timestamps, empty
fields for missing values, gzip-compressed when the name ends in ``.gz``.

Read one back with pandas::

    pd.read_csv(path, dtype=PANDAS_DTYPES["green"], parse_dates=DATE_COLUMNS["green"])

numpy and pyarrow are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from treadle.errors import UserInputError, unknown_name_error

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

KINDS = ("green", "yellow")

#: The real TLC column names, in file order.
COLUMNS: dict[str, list[str]] = {
    "green": [
        "VendorID",
        "lpep_pickup_datetime",
        "lpep_dropoff_datetime",
        "store_and_fwd_flag",
        "RatecodeID",
        "PULocationID",
        "DOLocationID",
        "passenger_count",
        "trip_distance",
        "fare_amount",
        "extra",
        "mta_tax",
        "tip_amount",
        "tolls_amount",
        "ehail_fee",
        "improvement_surcharge",
        "total_amount",
        "payment_type",
        "trip_type",
        "congestion_surcharge",
    ],
    "yellow": [
        "VendorID",
        "tpep_pickup_datetime",
        "tpep_dropoff_datetime",
        "passenger_count",
        "trip_distance",
        "RatecodeID",
        "store_and_fwd_flag",
        "PULocationID",
        "DOLocationID",
        "payment_type",
        "fare_amount",
        "extra",
        "mta_tax",
        "tip_amount",
        "tolls_amount",
        "improvement_surcharge",
        "total_amount",
        "congestion_surcharge",
    ],
}

#: The pickup and dropoff columns of each kind (for ``parse_dates``).
DATE_COLUMNS: dict[str, list[str]] = {
    kind: [name for name in names if name.endswith("_datetime")] for kind, names in COLUMNS.items()
}

_INT_COLUMNS = frozenset(
    {
        "VendorID",
        "RatecodeID",
        "PULocationID",
        "DOLocationID",
        "passenger_count",
        "payment_type",
        "trip_type",
    }
)
_STRING_COLUMNS = frozenset({"store_and_fwd_flag"})


def _pandas_dtype(name: str) -> str:
    if name in _INT_COLUMNS:
        return "Int64"
    if name in _STRING_COLUMNS:
        return "string"
    return "float64"


#: pandas dtypes for ``pd.read_csv(..., dtype=...)``; the date columns go to ``parse_dates``.
PANDAS_DTYPES: dict[str, dict[str, str]] = {
    kind: {name: _pandas_dtype(name) for name in names if name not in DATE_COLUMNS[kind]}
    for kind, names in COLUMNS.items()
}

_MONTH = re.compile(r"(\d{4})-(\d{2})")

# Shares of the quirky rows (real monthly files have about these).
_NO_VENDOR = 0.03  # VendorID and the dispatch fields missing
_ZERO_PASSENGERS = 0.02
_ZERO_DISTANCE = 0.02
_OUTSIDE_MONTH = 0.001  # pickup on the day before or the day after the month

_GZIP_LEVEL = 1
_GZIP_SLICE_ROWS = 65_536

# Pickups per hour of the day, relative (quiet at night, peaks in the evening).
_HOURLY = (
    2.0, 1.4, 1.0, 0.7, 0.6, 0.8, 1.6, 3.0, 4.2, 4.4, 4.3, 4.5,
    4.8, 4.9, 5.2, 5.5, 5.6, 6.0, 6.4, 6.0, 5.2, 4.8, 4.0, 3.0,
)  # fmt: skip


def _check(kind: str, month: str, rows: int, seed: int) -> None:
    """Raise ``UserInputError`` for a bad argument."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise unknown_name_error("sample kind", str(kind), KINDS)
    match = _MONTH.fullmatch(month) if isinstance(month, str) else None
    if match is None or not 1 <= int(match[2]) <= 12 or not 1900 <= int(match[1]) <= 2199:
        raise UserInputError(
            f"month must be 'YYYY-MM', got {month!r}",
            hint="a month from 1900-01 to 2199-12, for example '2020-10'",
        )
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise UserInputError(f"rows must be a whole number, 0 or more, got {rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserInputError(f"seed must be a whole number, 0 or more, got {seed!r}")


def make_table(kind: str, *, month: str = "2020-10", rows: int = 10_000, seed: int = 0) -> pa.Table:
    """A ``kind`` ("green" or "yellow") trip table of ``rows`` trips picked up in ``month``."""
    _check(kind, month, rows, seed)

    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([seed, KINDS.index(kind)])  # green and yellow differ
    n = rows

    # -- when: a day of the month, an hour weighted by demand, any minute and second.
    first = np.datetime64(month, "M")
    start = first.astype("datetime64[s]")
    days = ((first + 1).astype("datetime64[D]") - first.astype("datetime64[D]")).astype(int)
    hourly = np.asarray(_HOURLY) / sum(_HOURLY)
    offset = (
        rng.integers(0, days, n) * 86_400
        + rng.choice(24, n, p=hourly) * 3_600
        + rng.integers(0, 3_600, n)
    )
    outside = rng.random(n) < _OUTSIDE_MONTH
    before = rng.random(n) < 0.5
    offset = np.where(
        outside,
        np.where(before, -86_400, days * 86_400) + offset % 86_400,
        offset,
    )
    pickup = start + offset.astype("timedelta64[s]")
    hour = (offset % 86_400) // 3_600

    # -- who and where.
    no_vendor = rng.random(n) < _NO_VENDOR
    vendor = rng.choice(np.array([1, 2]), n, p=[0.3, 0.7] if kind == "yellow" else [0.15, 0.85])
    ratecode = rng.choice(np.arange(1, 7), n, p=[0.94, 0.025, 0.005, 0.01, 0.015, 0.005])
    pu_location = rng.integers(1, 266, n)
    do_location = rng.integers(1, 266, n)
    passengers = rng.choice(
        np.arange(0, 7), n, p=[_ZERO_PASSENGERS, 0.74, 0.12, 0.035, 0.02, 0.04, 0.025]
    )
    store_and_fwd = (rng.random(n) < 0.005).astype(np.int8)  # index into ["N", "Y"]
    payment = rng.choice(np.arange(1, 6), n, p=[0.6, 0.36, 0.02, 0.015, 0.005])
    trip_type = np.where(ratecode == 5, 2, 1)

    # -- how far and how long: miles with a long tail; dropoff 1 to 90 minutes later.
    mean_miles = 3.0 if kind == "yellow" else 2.6
    distance = np.round(rng.exponential(mean_miles, n) + 0.1, 2)
    distance[rng.random(n) < _ZERO_DISTANCE] = 0.0
    mph = rng.uniform(6.0, 22.0, n)
    seconds = distance / mph * 3_600 + rng.uniform(60, 300, n)
    seconds = np.clip(seconds, 60, 5_400).astype(np.int64)
    dropoff = pickup + seconds.astype("timedelta64[s]")

    # -- money, in whole cents so the total is exactly the sum of its parts.
    metered = 250 + np.round(250 * distance + 35 * seconds / 60)
    metered = np.round(metered / 50) * 50  # meters tick in 50-cent steps
    flat = np.select([ratecode == 2, ratecode == 3], [5_200, 1_750 + metered], metered)
    fare = flat.astype(np.int64)
    extra = np.select([(hour >= 16) & (hour < 20), (hour >= 20) | (hour < 6)], [100, 50], 0)
    mta_tax = np.where(ratecode == 5, 0, 50)
    tip_share = rng.choice(np.array([0.0, 0.15, 0.2, 0.25, 0.3]), n, p=[0.2, 0.2, 0.35, 0.15, 0.1])
    tips = np.where((payment == 1) & ~no_vendor, np.round(fare * tip_share), 0).astype(np.int64)
    tolls = np.where(rng.random(n) < 0.05, 612, 0)
    improvement = np.full(n, 30)
    congestion = np.where(rng.random(n) < (0.8 if kind == "yellow" else 0.15), 275, 0)
    total = fare + extra + mta_tax + tips + tolls + improvement + congestion

    def ints(values: np.ndarray, *, missing: np.ndarray | None = None) -> pa.Array:
        return pa.array(values.astype(np.int64), type=pa.int64(), mask=missing)

    def dollars(cents: np.ndarray) -> pa.Array:
        return pa.array(cents / 100.0, type=pa.float64())

    flags = pa.array(store_and_fwd, type=pa.int8(), mask=no_vendor)
    columns = {
        "VendorID": ints(vendor, missing=no_vendor),
        "pickup": pa.array(pickup, type=pa.timestamp("s")),
        "dropoff": pa.array(dropoff, type=pa.timestamp("s")),
        "store_and_fwd_flag": pa.array(["N", "Y"], type=pa.string()).take(flags),
        "RatecodeID": ints(ratecode, missing=no_vendor),
        "PULocationID": ints(pu_location),
        "DOLocationID": ints(do_location),
        "passenger_count": ints(passengers, missing=no_vendor),
        "trip_distance": pa.array(distance, type=pa.float64()),
        "fare_amount": dollars(fare),
        "extra": dollars(extra),
        "mta_tax": dollars(mta_tax),
        "tip_amount": dollars(tips),
        "tolls_amount": dollars(tolls),
        "ehail_fee": pa.nulls(n, type=pa.float64()),
        "improvement_surcharge": dollars(improvement),
        "total_amount": dollars(total),
        "payment_type": ints(payment, missing=no_vendor),
        "trip_type": ints(trip_type, missing=no_vendor),
        "congestion_surcharge": dollars(congestion),
    }
    prefix = "lpep" if kind == "green" else "tpep"
    columns[f"{prefix}_pickup_datetime"] = columns.pop("pickup")
    columns[f"{prefix}_dropoff_datetime"] = columns.pop("dropoff")
    names = COLUMNS[kind]
    return pa.table([columns[name] for name in names], names=names)


def write_csv(
    kind: str,
    out: str | Path,
    *,
    month: str = "2020-10",
    rows: int = 10_000,
    seed: int = 0,
) -> Path:
    """Write ``make_table(kind, ...)`` to ``out`` as CSV (gzip when it ends in ``.gz``).

    The file appears whole or not at all: it is written beside ``out`` and renamed into place.
    Returns the path written.
    """
    _check(kind, month, rows, seed)
    out = Path(out)
    if out.is_dir():
        raise UserInputError("the output path is a folder, not a file", path=str(out))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(
            f"cannot create the output folder: {exc.strerror or exc}", path=str(out.parent)
        ) from exc

    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = make_table(kind, month=month, rows=rows, seed=seed)
    header = (",".join(table.column_names) + "\n").encode()
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")

    temp = out.with_name(f".{out.name}.{os.urandom(4).hex()}.tmp")
    os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        with pa.OSFile(str(temp), "wb") as raw:
            if out.name.endswith(".gz"):
                _write_gzip(table, raw, header, options)
            else:
                raw.write(header)
                pacsv.write_csv(table, raw, options)
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return out


def _write_gzip(
    table: pa.Table, raw: pa.NativeFile, header: bytes, options: pacsv.WriteOptions
) -> None:
    """Write ``table`` as gzip-compressed CSV, a slice at a time.

    zlib at level 1 rather than pyarrow's gzip stream: that one compresses at level 9,
    about twenty times slower for a file only a quarter smaller.
    """
    import zlib

    import pyarrow as pa
    import pyarrow.csv as pacsv

    # wbits 31: a gzip wrapper with no name and a zero mtime, so equal input gives equal bytes.
    deflate = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)
    raw.write(deflate.compress(header))
    for start in range(0, table.num_rows, _GZIP_SLICE_ROWS):
        buffer = pa.BufferOutputStream()
        pacsv.write_csv(table.slice(start, _GZIP_SLICE_ROWS), buffer, options)
        raw.write(deflate.compress(buffer.getvalue()))
    raw.write(deflate.flush())
