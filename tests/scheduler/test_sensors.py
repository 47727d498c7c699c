"""Sensor helpers, in real projects run with their history recorded, and the block templates."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import treadle
from treadle.errors import MissingExtra, UnknownName, UserInputError
from treadle.events import BlockStatus
from treadle.project.active import activated
from treadle.scheduler.sensors import file_exists, pipeline_succeeded, query_returns_rows

TEMPLATES = Path(treadle.__file__).parent / "project" / "templates" / "blocks"
DAY = "2024-01-05"


@pytest.fixture(autouse=True)
def sqlite_history(monkeypatch) -> None:
    monkeypatch.delenv("TREADLE_DATABASE_URL", raising=False)


def sensor_pipeline(project, name: str, body: str, *, timeout: str = "10s") -> None:
    """Pipeline ``name`` with one sensor block ``wait`` whose function returns ``body``."""
    project.block(
        "sensors",
        f"wait_{name}",
        "from treadle import sensor\n"
        "from treadle.scheduler.sensors import file_exists, pipeline_succeeded, "
        "query_returns_rows\n\n\n"
        f"@sensor\ndef wait(*, execution_date):\n    return {body}\n",
    )
    project.pipeline(
        name,
        f"blocks:\n  - {{name: wait_{name}, type: sensor, interval: 0.1s, timeout: {timeout}}}\n",
    )


def sensor_result(result, name: str):
    return result.blocks[f"wait_{name}"]


# -- file_exists -----------------------------------------------------------------------------


def test_file_sensor_succeeds_once_the_file_appears(project):
    sensor_pipeline(project, "files", "file_exists('data/raw/*.csv')")
    target = project.root / "data" / "raw" / "trips.csv"

    def deliver() -> None:
        time.sleep(0.3)
        target.parent.mkdir(parents=True)
        target.write_text("a\n1\n")

    started = time.monotonic()
    delivery = threading.Thread(target=deliver)
    delivery.start()
    result = treadle.run_pipeline(project.root, "files")
    delivery.join()
    assert result.ok, sensor_result(result, "files").error
    assert result.output("wait_files") is True
    assert time.monotonic() - started >= 0.3


def test_file_sensor_times_out_when_the_file_never_appears(project):
    sensor_pipeline(project, "files", "file_exists('data/raw/never.csv')", timeout="0.5s")
    started = time.monotonic()
    result = treadle.run_pipeline(project.root, "files")
    block = sensor_result(result, "files")
    assert not result.ok and block.status is BlockStatus.FAILED
    assert block.error.type == "BlockTimeout"
    assert "still waiting at its timeout" in block.error.message
    assert time.monotonic() - started < 5


def test_file_sensor_refuses_a_path_outside_the_project(project):
    (project.root.parent / "outside.csv").write_text("x")
    sensor_pipeline(project, "escape", "file_exists('../outside.csv')")
    result = treadle.run_pipeline(project.root, "escape")
    error = sensor_result(result, "escape").error
    assert error.type == "UserInputError"
    assert "is not inside the project folder" in error.message


@pytest.mark.parametrize("path", ["../outside.csv", "data/../../outside.csv", "/etc/passwd", "."])
def test_paths_outside_the_project_are_refused(project, path):
    with activated(project.root), pytest.raises(UserInputError, match="not inside the project"):
        file_exists(path)


def test_file_exists_matches_files_globs_and_sizes(project):
    project.write("data/raw/2024-01-05.csv", "a,b\n1,2\n")
    project.write("data/raw/empty.csv", "")
    project.write("data/lake/day=1/part-0.parquet", "x")
    project.write("data/tmp/.partial.csv", "half a row")
    with activated(project.root):
        assert file_exists("data/raw/2024-01-05.csv")
        assert file_exists(project.root / "data" / "raw" / "2024-01-05.csv")  # absolute, inside
        assert file_exists(Path("data/raw/2024-01-05.csv"), min_size=8)
        assert not file_exists("data/raw/2024-01-05.csv", min_size=9)
        assert not file_exists("data/raw/2024-01-06.csv")
        assert file_exists("data/raw/*.csv", min_size=1)
        assert not file_exists("data/raw/e*.csv", min_size=1)
        assert file_exists("data/**/part-*.parquet")
        assert not file_exists("data/raw")  # a folder is not a file
        assert not file_exists("data/tmp/*.csv")  # hidden files are being written
        assert file_exists(f"file://{project.root}/data/raw/*.csv")
    with pytest.raises(UserInputError, match="min_size"), activated(project.root):
        file_exists("data/raw/*.csv", min_size=-1)


def test_a_url_without_fsspec_names_what_to_install(project, monkeypatch):
    for name in [m for m in sys.modules if m == "fsspec" or m.startswith(("fsspec.", "gcsfs"))]:
        monkeypatch.delitem(sys.modules, name)  # loaded by other tests: forget them
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec fails, as if missing
    with activated(project.root), pytest.raises(MissingExtra) as caught:
        file_exists("gs://bucket/raw/*.csv")
    assert "fsspec" in caught.value.message
    assert caught.value.hint == "pip install fsspec gcsfs"


def test_a_url_goes_through_fsspec(project):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    memory.pipe("/sensors-test/raw/2024-01-05.csv", b"a\n1\n")
    try:
        with activated(project.root):
            assert file_exists("memory://sensors-test/raw/2024-01-05.csv", min_size=4)
            assert not file_exists("memory://sensors-test/raw/2024-01-05.csv", min_size=5)
            assert file_exists("memory://sensors-test/raw/*.csv")
            assert not file_exists("memory://sensors-test/raw/*.json")
            assert not file_exists("memory://sensors-test/raw")  # a folder
    finally:
        memory.rm("/sensors-test", recursive=True)


# -- query_returns_rows ----------------------------------------------------------------------


def warehouse(project) -> Path:
    project.write(
        "io_config.yaml", "version: 0.1.1\ndefault:\n  DUCKDB_DATABASE: warehouse.duckdb\n"
    )
    return project.root / "warehouse.duckdb"


def make_trips_table(database: Path) -> None:
    import duckdb

    with duckdb.connect(str(database)) as con:
        con.execute("create table trips as select * from (values (date '2024-01-05', 3)) t(day, n)")


def test_query_sensor_succeeds_when_the_query_returns_rows(project):
    make_trips_table(warehouse(project))
    sensor_pipeline(
        project, "rows", "query_returns_rows('default', 'select * from trips where n > 0')"
    )
    result = treadle.run_pipeline(project.root, "rows")
    assert result.ok, sensor_result(result, "rows").error


def test_query_sensor_times_out_while_the_query_returns_nothing(project):
    make_trips_table(warehouse(project))
    sensor_pipeline(
        project,
        "rows",
        "query_returns_rows('default', 'select * from trips where n > 10')",
        timeout="0.5s",
    )
    result = treadle.run_pipeline(project.root, "rows")
    assert sensor_result(result, "rows").error.type == "BlockTimeout"


def test_query_returns_rows_answers_true_and_false(project):
    make_trips_table(warehouse(project))
    with activated(project.root):
        assert query_returns_rows("default", "select * from trips")
        assert query_returns_rows(
            "default", "select 1 from trips where day = ?", params=[date(2024, 1, 5)]
        )
        assert not query_returns_rows(
            "default", "select 1 from trips where day = ?", params=[date(2024, 1, 6)]
        )
        assert query_returns_rows("default", "select * from range(1000000000)")  # one row read
        assert not query_returns_rows("default", "select * from trips limit 0")


def test_query_errors_are_the_databases_own(project):
    import duckdb

    warehouse(project)
    with activated(project.root), pytest.raises(duckdb.CatalogException):
        query_returns_rows("default", "select * from no_such_table")


def test_a_database_locked_by_another_process_reads_as_not_yet(project):
    database = warehouse(project)
    make_trips_table(database)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys\ncon = duckdb.connect(sys.argv[1])\nprint('locked', flush=True)\n"
            "sys.stdin.read()\n",
            str(database),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with activated(project.root):
            assert not query_returns_rows("default", "select * from trips")
    finally:
        holder.communicate("", timeout=30)
    with activated(project.root):
        assert query_returns_rows("default", "select * from trips")


def test_query_returns_rows_needs_a_known_duckdb_profile(project):
    import treadle.io

    project.write(
        "io_config.yaml",
        "version: 0.1.1\ndefault:\n  DUCKDB_DATABASE: w.duckdb\npg:\n  POSTGRES_HOST: localhost\n",
    )
    with activated(project.root):
        with pytest.raises(UnknownName, match="unknown profile 'defualt'"):
            query_returns_rows("defualt", "select 1")
        if "Postgres" not in treadle.io.CONNECTORS:
            with pytest.raises(UserInputError, match="supports DuckDB profiles"):
                query_returns_rows("pg", "select 1")


# -- pipeline_succeeded ----------------------------------------------------------------------


def with_pipelines(project) -> None:
    """``load`` succeeds, ``broken`` fails."""
    project.block(
        "custom", "one", "from treadle import custom\n\n@custom\ndef one():\n    return 1\n"
    )
    project.block(
        "custom",
        "boom",
        "from treadle import custom\n\n@custom\ndef boom():\n    raise RuntimeError('boom')\n",
    )
    project.pipeline("load", "blocks:\n  - {name: one, type: custom}\n")
    project.pipeline("broken", "blocks:\n  - {name: boom, type: custom}\n")


def test_pipeline_sensor_waits_for_a_successful_run_for_its_date(project):
    with_pipelines(project)
    sensor_pipeline(project, "report", "pipeline_succeeded('load', execution_date)", timeout="0.5s")
    assert treadle.run_pipeline(project.root, "load", execution_date=DAY).ok
    same_day = treadle.run_pipeline(project.root, "report", execution_date=DAY)
    assert same_day.ok, sensor_result(same_day, "report").error
    next_day = treadle.run_pipeline(project.root, "report", execution_date="2024-01-06")
    assert sensor_result(next_day, "report").error.type == "BlockTimeout"


def test_pipeline_succeeded_ignores_failed_runs(project):
    with_pipelines(project)
    assert not treadle.run_pipeline(project.root, "broken", execution_date=DAY).ok
    with activated(project.root):
        assert not pipeline_succeeded("broken", DAY)
        assert not pipeline_succeeded("broken")


def test_pipeline_succeeded_matches_an_instant_or_a_whole_day(project):
    with_pipelines(project)
    assert treadle.run_pipeline(project.root, "load", execution_date=f"{DAY}T06:00:00Z").ok
    with activated(project.root):
        assert pipeline_succeeded("load", datetime(2024, 1, 5, 6, tzinfo=UTC))
        assert pipeline_succeeded("load", datetime(2024, 1, 5, 6))  # naive is UTC
        assert pipeline_succeeded("load", "2024-01-05T07:00:00+01:00")
        assert not pipeline_succeeded("load", datetime(2024, 1, 5, tzinfo=UTC))
        assert not pipeline_succeeded("load", "2024-01-05T06:00:01Z")
        assert pipeline_succeeded("load", DAY)  # a date: any time that day, in UTC
        assert pipeline_succeeded("load", date(2024, 1, 5))
        assert not pipeline_succeeded("load", "2024-01-04")
        assert not pipeline_succeeded("load", "2024-01-06")
        assert pipeline_succeeded("load")
        with pytest.raises(UserInputError, match="not an ISO date"):
            pipeline_succeeded("load", "yesterday")


def test_pipeline_succeeded_within_a_recent_window(project):
    with_pipelines(project)
    assert treadle.run_pipeline(project.root, "load").ok
    with activated(project.root):
        assert pipeline_succeeded("load", within=3600)
        assert pipeline_succeeded("load", within="1h")
        time.sleep(0.3)
        assert not pipeline_succeeded("load", within=0.2)
        with pytest.raises(UserInputError, match="within"):
            pipeline_succeeded("load", within="soon")


def test_pipeline_succeeded_reads_past_the_first_page_of_history(project):
    with_pipelines(project)
    assert treadle.run_pipeline(project.root, "load", execution_date="2020-01-01").ok
    from treadle.scheduler import sensors

    with activated(project.root):
        original = sensors._FIRST_PAGE
        sensors._FIRST_PAGE = 1
        try:
            for day in ("2024-01-01", "2024-01-02"):
                assert treadle.run_pipeline(project.root, "load", execution_date=day).ok
            assert pipeline_succeeded("load", "2020-01-01")
        finally:
            sensors._FIRST_PAGE = original


def test_an_unknown_pipeline_is_an_error_that_suggests_the_right_one(project):
    with_pipelines(project)
    with activated(project.root), pytest.raises(UnknownName) as caught:
        pipeline_succeeded("laod", DAY)
    assert caught.value.hint == "did you mean 'load'?"


# -- templates -------------------------------------------------------------------------------


def use_template(project, name: str) -> None:
    target = project.root / "sensors" / f"{name}.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(TEMPLATES / f"{name}.py", target)
    project.pipeline(
        name, f"blocks:\n  - {{name: {name}, type: sensor, interval: 0.1s, timeout: 10s}}\n"
    )


def test_the_file_template_hands_the_path_on(project):
    use_template(project, "sensor_file")
    project.write(f"data/raw/{DAY}.csv", "a\n1\n")
    result = treadle.run_pipeline(project.root, "sensor_file", execution_date=DAY)
    assert result.ok, result.blocks["sensor_file"].error
    assert result.output("sensor_file") == f"data/raw/{DAY}.csv"


def test_the_sql_template_sees_the_days_rows(project):
    import duckdb

    use_template(project, "sensor_sql")
    with duckdb.connect(str(warehouse(project))) as con:
        con.execute("create table green_taxi (lpep_pickup_datetime timestamp)")
        con.execute("insert into green_taxi values (timestamp '2024-01-05 08:30:00')")
    result = treadle.run_pipeline(project.root, "sensor_sql", execution_date=DAY)
    assert result.ok, result.blocks["sensor_sql"].error


def test_the_pipeline_template_sees_load_taxi_succeed(project):
    project.block(
        "custom", "one", "from treadle import custom\n\n@custom\ndef one():\n    return 1\n"
    )
    project.pipeline("load_taxi", "blocks:\n  - {name: one, type: custom}\n")
    use_template(project, "sensor_pipeline")
    assert treadle.run_pipeline(project.root, "load_taxi", execution_date=DAY).ok
    result = treadle.run_pipeline(project.root, "sensor_pipeline", execution_date=DAY)
    assert result.ok, result.blocks["sensor_pipeline"].error


def test_the_templates_pass_ruff():
    for args in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args, str(TEMPLATES)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_importing_the_helpers_loads_no_data_library():
    code = (
        "import json, sys, treadle.scheduler.sensors\n"
        "print(json.dumps([m for m in ('duckdb', 'pyarrow', 'pandas', 'sqlalchemy', 'fsspec')"
        " if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
