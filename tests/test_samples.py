"""treadle.samples: TLC-shaped taxi trips, written as real TLC CSVs, deterministic by seed."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from treadle import samples
from treadle.errors import UserInputError

GREEN = [
    "VendorID", "lpep_pickup_datetime", "lpep_dropoff_datetime", "store_and_fwd_flag",
    "RatecodeID", "PULocationID", "DOLocationID", "passenger_count", "trip_distance",
    "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount", "ehail_fee",
    "improvement_surcharge", "total_amount", "payment_type", "trip_type", "congestion_surcharge",
]  # fmt: skip
YELLOW = [
    "VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "passenger_count",
    "trip_distance", "RatecodeID", "store_and_fwd_flag", "PULocationID", "DOLocationID",
    "payment_type", "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount",
    "improvement_surcharge", "total_amount", "congestion_surcharge",
]  # fmt: skip
PARTS = ["fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount", "improvement_surcharge"]


@pytest.fixture(scope="module", params=["green", "yellow"])
def sample(request: pytest.FixtureRequest) -> tuple[str, pa.Table]:
    kind = request.param
    return kind, samples.make_table(kind, month="2020-10", rows=20_000, seed=7)


def _pickup(kind: str) -> str:
    return samples.DATE_COLUMNS[kind][0]


def _dropoff(kind: str) -> str:
    return samples.DATE_COLUMNS[kind][1]


def test_columns_are_the_real_tlc_names_in_order(sample: tuple[str, pa.Table]) -> None:
    kind, table = sample
    expected = GREEN if kind == "green" else YELLOW
    assert samples.COLUMNS[kind] == expected
    assert table.column_names == expected
    assert samples.DATE_COLUMNS[kind] == [expected[1], expected[2]]
    assert set(samples.PANDAS_DTYPES[kind]) == set(expected) - set(samples.DATE_COLUMNS[kind])


def test_types_are_nullable_ints_naive_timestamps_and_strings(
    sample: tuple[str, pa.Table],
) -> None:
    kind, table = sample
    schema = table.schema
    for name in ["VendorID", "passenger_count", "RatecodeID", "payment_type", "PULocationID"]:
        assert schema.field(name).type == pa.int64()
    assert table["VendorID"].null_count > 0
    assert schema.field(_pickup(kind)).type == pa.timestamp("s")  # naive: no time zone
    assert schema.field("store_and_fwd_flag").type == pa.string()
    assert set(pc.unique(table["store_and_fwd_flag"]).drop_null().to_pylist()) == {"N", "Y"}
    assert schema.field("trip_distance").type == pa.float64()


def test_values_are_in_realistic_ranges(sample: tuple[str, pa.Table]) -> None:
    kind, table = sample
    df = table.to_pandas()
    assert set(df.VendorID.dropna()) == {1, 2}
    assert set(df.RatecodeID.dropna()) <= set(range(1, 7))
    assert df.PULocationID.between(1, 265).all() and df.DOLocationID.between(1, 265).all()
    assert set(df.passenger_count.dropna()) <= set(range(0, 7))
    assert df.passenger_count.mode()[0] == 1
    assert set(df.payment_type.dropna()) <= set(range(1, 6))
    assert set(df.congestion_surcharge) == {0.0, 2.75}
    assert df.trip_distance.min() >= 0 and df.trip_distance.median() < df.trip_distance.mean()
    if kind == "green":
        assert set(df.trip_type.dropna()) == {1, 2}
        assert df.ehail_fee.isna().all()


def test_quirks_of_real_files_are_present(sample: tuple[str, pa.Table]) -> None:
    kind, table = sample
    df = table.to_pandas()
    n = len(df)
    assert 0.005 < (df.passenger_count == 0).sum() / n < 0.05
    assert 0.005 < df.passenger_count.isna().sum() / n < 0.06
    assert 0.005 < (df.trip_distance == 0).sum() / n < 0.05
    no_vendor = df.VendorID.isna()
    assert 0.005 < no_vendor.sum() / n < 0.06
    # As in real files, the rows with no vendor miss the dispatch fields too.
    nullable = ["RatecodeID", "payment_type", "store_and_fwd_flag", "passenger_count"]
    if kind == "green":
        nullable.append("trip_type")
    for name in nullable:
        assert (df[name].isna() == no_vendor).all(), name

    pickup = df[_pickup(kind)]
    start, end = pd.Timestamp("2020-10-01"), pd.Timestamp("2020-11-01")
    outside = (pickup < start) | (pickup >= end)
    assert 0 < outside.sum() < n * 0.01
    assert pickup.min() >= start - pd.Timedelta(days=2)
    assert pickup.max() < end + pd.Timedelta(days=2)


def test_dropoff_is_1_to_90_minutes_after_pickup(sample: tuple[str, pa.Table]) -> None:
    kind, table = sample
    minutes = pc.divide(
        pc.seconds_between(table[_pickup(kind)], table[_dropoff(kind)]), 60
    ).to_numpy()
    assert minutes.min() >= 1
    assert minutes.max() <= 90


def test_total_is_the_sum_of_its_parts(sample: tuple[str, pa.Table]) -> None:
    _, table = sample
    df = table.to_pandas()
    parts = df[PARTS + ["congestion_surcharge"]].sum(axis=1)
    np.testing.assert_allclose(df.total_amount, parts, atol=0.005)
    assert (df.fare_amount > 0).all()
    for name in PARTS + ["total_amount"]:  # whole cents
        cents = df[name] * 100
        np.testing.assert_allclose(cents, cents.round(), atol=1e-6)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = samples.write_csv("green", tmp_path / "a.csv.gz", rows=2_000, seed=3)
    b = samples.write_csv("green", tmp_path / "b.csv.gz", rows=2_000, seed=3)
    c = samples.write_csv("green", tmp_path / "c.csv.gz", rows=2_000, seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    plain = samples.write_csv("green", tmp_path / "a.csv", rows=2_000, seed=3)
    assert gzip.decompress(a.read_bytes()) == plain.read_bytes()
    assert samples.make_table("yellow", rows=500, seed=1).equals(
        samples.make_table("yellow", rows=500, seed=1)
    )


def test_csv_text_looks_like_a_tlc_file(tmp_path: Path) -> None:
    path = samples.write_csv("green", tmp_path / "green.csv", rows=3_000, seed=0)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(GREEN)  # no quotes, like the TLC's headers
    assert len(lines) == 3_001
    first = lines[1].split(",")
    assert len(first) == len(GREEN)
    pd.Timestamp(first[1])
    assert len(first[1]) == len("2020-10-01 00:00:00") and first[1][10] == " "
    assert first[14] == ""  # ehail_fee: empty
    assert any(line.startswith(",") for line in lines[1:])  # a missing VendorID is empty
    assert '"' not in path.read_text()


@pytest.mark.parametrize("kind", ["green", "yellow"])
def test_gz_round_trips_through_pandas_with_the_dtype_map(tmp_path: Path, kind: str) -> None:
    path = samples.write_csv(kind, tmp_path / "nested" / f"{kind}.csv.gz", rows=5_000, seed=11)
    assert path == tmp_path / "nested" / f"{kind}.csv.gz"
    df = pd.read_csv(
        path, dtype=samples.PANDAS_DTYPES[kind], parse_dates=samples.DATE_COLUMNS[kind]
    )
    assert list(df.columns) == samples.COLUMNS[kind]
    for name, dtype in samples.PANDAS_DTYPES[kind].items():
        assert df[name].dtype == pd.api.types.pandas_dtype(dtype), name
    for name in samples.DATE_COLUMNS[kind]:
        assert pd.api.types.is_datetime64_dtype(df[name]), name

    expected = samples.make_table(kind, rows=5_000, seed=11).to_pandas(
        types_mapper={pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype()}.get
    )
    for name in samples.DATE_COLUMNS[kind]:
        expected[name] = expected[name].astype(df[name].dtype)
    expected = expected.astype(samples.PANDAS_DTYPES[kind])
    pd.testing.assert_frame_equal(df, expected)


def test_zero_rows_writes_just_the_header(tmp_path: Path) -> None:
    path = samples.write_csv("yellow", tmp_path / "empty.csv", rows=0)
    assert path.read_text() == ",".join(YELLOW) + "\n"


def test_other_months_keep_their_pickups_in_the_month() -> None:
    table = samples.make_table("yellow", month="2021-02", rows=5_000, seed=2)
    pickup = table["tpep_pickup_datetime"].to_pandas()
    inside = pickup.between(pd.Timestamp("2021-02-01"), pd.Timestamp("2021-02-28 23:59:59"))
    assert inside.mean() > 0.99
    assert pickup.min() >= pd.Timestamp("2021-01-31")
    assert pickup.max() < pd.Timestamp("2021-03-02")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "blue"}, "unknown sample kind 'blue'"),
        ({"month": "2020-13"}, "month must be 'YYYY-MM'"),
        ({"month": "2020-1"}, "month must be 'YYYY-MM'"),
        ({"month": "October"}, "month must be 'YYYY-MM'"),
        ({"rows": -1}, "rows must be"),
        ({"seed": -5}, "seed must be"),
    ],
)
def test_bad_input_is_a_user_error_and_writes_nothing(
    tmp_path: Path, kwargs: dict[str, object], match: str
) -> None:
    call = {"kind": "green", "month": "2020-10", "rows": 10, "seed": 0} | kwargs
    kind = call.pop("kind")
    with pytest.raises(UserInputError, match=match):
        samples.make_table(kind, **call)
    out = tmp_path / "sub" / "trips.csv.gz"
    with pytest.raises(UserInputError, match=match):
        samples.write_csv(kind, out, **call)
    assert list(tmp_path.iterdir()) == []


def test_unknown_kind_hint_names_the_kinds() -> None:
    with pytest.raises(UserInputError) as info:
        samples.make_table("taxi")
    assert "green" in info.value.hint and "yellow" in info.value.hint
    with pytest.raises(UserInputError) as info:
        samples.make_table("gren")
    assert "green" in info.value.hint


@pytest.mark.parametrize("name", ["trips.csv", "trips.csv.gz"])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    out.write_text("old\n")
    with pytest.raises(UserInputError):
        samples.write_csv("green", out, month="2020-00")
    # A real failure half way through: the file-size limit (EFBIG) in a child process.
    code = f"""
import resource, signal
from treadle import samples
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
try:
    samples.write_csv("green", {str(out)!r}, rows=50_000)
except OSError as exc:
    print("failed:", exc)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("failed:")
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_output_folder_that_is_a_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="folder"):
        samples.write_csv("green", tmp_path, rows=10)


def test_importing_samples_does_not_import_numpy_or_pyarrow() -> None:
    code = (
        "import sys, treadle.samples; "
        "print(any(m in sys.modules for m in ('numpy', 'pyarrow', 'pandas')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
