"""The `treadle` command as a user runs it: a real process, real files, exit codes."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest

TREADLE = [sys.executable, "-m", "treadle.cli"]


def treadle(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [*TREADLE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "demo"
    done = treadle("init", str(root))
    assert done.returncode == 0, done.stderr
    return root


def test_init_writes_a_whole_project(demo):
    for relative in (
        "treadle.yaml",
        "io_config.yaml",
        ".env.example",
        ".gitignore",
        "pipelines/example_pipeline/pipeline.yaml",
        "data_loaders/load_green_taxi.py",
        "transformers/clean_green_taxi.py",
        "data_exporters/export_green_taxi_duckdb.py",
        "data_exporters/export_green_taxi_parquet.py",
        "data/green_tripdata_2020-10.csv.gz",
    ):
        assert (demo / relative).is_file(), relative
    for folder in ("custom", "sensors"):
        assert (demo / folder).is_dir()
    assert ".treadle/" in (demo / ".gitignore").read_text()
    io_config = (demo / "io_config.yaml").read_text()
    assert "DUCKDB_DATABASE: .treadle/warehouse.duckdb" in io_config
    assert "# dev:" in io_config and "env_var('POSTGRES_HOST')" in io_config
    with gzip.open(demo / "data/green_tripdata_2020-10.csv.gz", "rt") as f:
        assert f.readline().startswith("VendorID,lpep_pickup_datetime,lpep_dropoff_datetime")


def test_init_refuses_a_folder_that_is_not_empty(demo):
    done = treadle("init", str(demo))
    assert done.returncode == 2
    assert "already exists and is not empty" in done.stderr
    assert "Traceback" not in done.stderr


def test_example_pipeline_runs_offline_and_writes_both_outputs(demo):
    done = treadle("run", str(demo), "example_pipeline")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout
    con = duckdb.connect(str(demo / ".treadle/warehouse.duckdb"), read_only=True)
    rows, zero_passengers = con.execute(
        "select count(*), count(*) filter (where passenger_count = 0) from green_taxi"
    ).fetchone()
    columns = [r[0] for r in con.execute("describe green_taxi").fetchall()]
    con.close()
    assert rows > 15_000 and zero_passengers == 0
    assert "vendor_id" in columns and "lpep_pickup_date" in columns and "VendorID" not in columns
    lake = demo / "data/lake/green_taxi"
    partitions = sorted(p.name for p in lake.iterdir() if p.is_dir())
    assert "lpep_pickup_date=2020-10-01" in partitions and len(partitions) >= 28
    assert ds.dataset(lake, format="parquet", partitioning="hive").count_rows() == rows


def test_run_one_block_and_downstream(demo):
    treadle("run", str(demo), "example_pipeline")
    done = treadle(
        "run", str(demo), "example_pipeline", "--block", "clean_green_taxi", "--downstream"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded        clean_green_taxi" in done.stdout
    assert "succeeded        load_green_taxi" not in done.stdout  # not run again …
    assert "reusing the output of load_green_taxi from run" in done.stdout  # … and said so


def test_failed_block_exits_1_with_traceback_in_user_code(project):
    project.block(
        "data_loaders",
        "load",
        "from treadle import data_loader\n\n@data_loader\ndef load():\n    return 1 / 0\n",
    )
    project.pipeline("p", "blocks:\n  - {name: load, type: data_loader}\n")
    done = treadle("run", str(project.root), "p", "--executor", "process")
    assert done.returncode == 1
    assert "ZeroDivisionError" in done.stdout and "data_loaders/load.py" in done.stdout
    assert "return 1 / 0" in done.stdout
    assert "treadle/engine" not in done.stdout


def test_invalid_project_exits_2_listing_every_problem(project):
    project.pipeline(
        "p", "blocks:\n  - {name: ghost, type: data_loader}\n  - {name: x, type: nope}\n"
    )
    done = treadle("run", str(project.root), "p")
    assert done.returncode == 2
    assert "pipelines/p/pipeline.yaml:2" in done.stderr and "ghost" in done.stderr
    assert (
        "pipelines/p/pipeline.yaml:3" in done.stderr and "unknown block type 'nope'" in done.stderr
    )
    assert "Traceback" not in done.stderr
    assert not (project.root / ".treadle").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--var", "novalue"], "is not NAME=VALUE"),
        (["--execution-date", "yesterday"], "not an ISO date"),
        (["--executor", "threads"], "unknown executor 'threads'"),
        (["--block", "nope"], "unknown block"),
        (["--downstream"], "--downstream needs --block"),
        (["--block", "c", "--block", "c"], "--block was given 2 times"),
    ],
)
def test_bad_arguments_exit_2(project, args, message):
    project.block("custom", "c", "from treadle import custom\n\n@custom\ndef c():\n    return 1\n")
    project.pipeline("p", "blocks:\n  - {name: c, type: custom}\n")
    done = treadle("run", str(project.root), "p", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_pipeline_and_not_a_project(project, tmp_path):
    done = treadle("run", str(project.root), "nope")
    assert done.returncode == 2 and "unknown pipeline 'nope'" in done.stderr
    done = treadle("run", str(tmp_path / "nowhere"), "p")
    assert done.returncode == 2 and "not a Treadle project" in done.stderr


def test_var_overrides_default(project):
    project.block(
        "custom",
        "c",
        "from treadle import custom\n\n@custom\ndef c(*, n):\n    assert n == 7, n\n",
    )
    project.pipeline("p", "variables: {n: 1}\nblocks:\n  - {name: c, type: custom}\n")
    assert treadle("run", str(project.root), "p", "--var", "n=7").returncode == 0
    assert treadle("run", str(project.root), "p").returncode == 1


def test_validate(project):
    project.block("custom", "c", "from treadle import custom\n\n@custom\ndef c():\n    return 1\n")
    project.pipeline("p", "blocks:\n  - {name: c, type: custom}\n")
    done = treadle("validate", str(project.root))
    assert done.returncode == 0 and "1 pipelines, 1 blocks" in done.stdout
    project.pipeline("q", "blocks: [\n")
    assert treadle("validate", str(project.root)).returncode == 2


def test_samples_command(tmp_path):
    out = tmp_path / "yellow.csv.gz"
    done = treadle("samples", "yellow", "--rows", "500", "--out", str(out), "--seed", "3")
    assert done.returncode == 0, done.stderr
    with gzip.open(out, "rt") as f:
        lines = f.read().splitlines()
    assert len(lines) == 501 and lines[0].startswith("VendorID,tpep_pickup_datetime")
    bad = treadle("samples", "purple", "--out", str(tmp_path / "x.csv"))
    assert bad.returncode == 2 and "unknown" in bad.stderr and not (tmp_path / "x.csv").exists()


def test_init_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    done = treadle("init", str(tmp_path / "afile" / "sub"))
    assert done.returncode == 2 and "cannot create a project" in done.stderr
    assert "Traceback" not in done.stderr


def test_version():
    done = treadle("--version")
    assert done.returncode == 0 and done.stdout.startswith("treadle ")


def test_example_pipeline_loads_postgres_when_the_dev_profile_is_set(demo, pg_databases):
    import psycopg

    url = pg_databases.create()
    dbname = url.rsplit("/", 1)[1]
    config = demo / "io_config.yaml"
    config.write_text(
        config.read_text() + f"dev:\n  POSTGRES_HOST: 127.0.0.1\n  POSTGRES_PORT: 5432\n"
        f"  POSTGRES_USER: postgres\n  POSTGRES_DBNAME: {dbname}\n"
    )
    done = treadle("run", str(demo), "example_pipeline")
    assert done.returncode == 0, done.stdout + done.stderr
    with psycopg.connect(url) as conn:
        rows = conn.execute("select count(*) from green_taxi").fetchone()[0]
        types = dict(
            conn.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_name = 'green_taxi'"
            ).fetchall()
        )
    assert rows > 15_000
    assert types["lpep_pickup_datetime"].startswith("timestamp")
    assert types["lpep_pickup_date"] == "date"
