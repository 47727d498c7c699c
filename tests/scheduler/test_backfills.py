"""Backfills: one run per slot (start and end included), each once; cancel; retry failed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from treadle.errors import UserInputError
from treadle.project import load_project
from treadle.scheduler import backfills
from treadle.scheduler.service import Scheduler

TREADLE = [sys.executable, "-m", "treadle.cli"]


def treadle(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREADLE, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def etl(project):
    project.block(
        "data_loaders",
        "load",
        """
        import time
        from treadle import data_loader

        @data_loader
        def load(*, execution_date, interval_end, variables):
            if execution_date.day == int(variables["fail_on_day"] or 0):
                raise ValueError(f"no data for {execution_date:%Y-%m-%d}")
            time.sleep(float(variables["sleep"] or 0))
            return {"day": execution_date.isoformat(), "end": interval_end.isoformat()}
        """,
    )
    project.pipeline(
        "etl",
        """
        variables: {fail_on_day: "", sleep: ""}
        blocks:
          - name: load
            type: data_loader
        """,
    )
    return project


def _runs(project, backfill_id: str) -> list[dict]:
    done = treadle("backfill", "show", backfill_id, "--project", str(project.root), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["run_list"]


def test_a_week_daily_is_eight_runs_with_their_dates(etl) -> None:
    done = treadle(
        "backfill", "etl", "--start", "2024-01-01", "--end", "2024-01-08", "--every", "1d",
        "--concurrency", "2", "--project", str(etl.root),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 runs" in done.stdout and "8 succeeded" in done.stdout
    backfill_id = done.stdout.split()[1]
    runs = _runs(etl, backfill_id)
    assert [r["execution_date"] for r in runs] == [f"2024-01-0{d}T00:00+00:00" for d in range(1, 9)]
    assert {r["status"] for r in runs} == {"succeeded"}
    again = treadle(
        "backfill", "etl", "--start", "2024-01-01", "--end", "2024-01-08",
        "--project", str(etl.root),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "found" in again.stdout and "0 queued now" in again.stdout
    assert len(_runs(etl, backfill_id)) == 8
    listed = treadle("runs", "list", "--project", str(etl.root), "--json", "--limit", "100")
    assert len(json.loads(listed.stdout)) == 8


def test_a_run_gets_its_slot_interval(etl) -> None:
    project = load_project(etl.root)
    plan = backfills.plan_backfill(project, "etl", "2024-01-01", "2024-01-02T12:00", "6h")
    assert plan.total == 7
    assert plan.slots[1] == datetime(2024, 1, 1, 6, tzinfo=UTC)
    with Scheduler(project) as scheduler:
        backfills.queue_backfill(scheduler.schedules, plan, 3)
        record = backfills.run_backfill(scheduler, plan.id)
        assert record.status == "succeeded" and record.runs == {"succeeded": 7}
        run_id = scheduler.schedules.backfill_runs(plan.id)[0][0]
        detail = scheduler.runs.get_run(run_id)
    assert detail.run.interval_end - detail.run.interval_start == 6 * 3600
    assert (detail.run.trigger, detail.run.triggered_by) == ("backfill", plan.id)


def test_different_variables_are_another_backfill(etl) -> None:
    project = load_project(etl.root)
    one = backfills.plan_backfill(project, "etl", "2024-01-01", "2024-01-02")
    two = backfills.plan_backfill(
        project, "etl", "2024-01-01", "2024-01-02", variables={"sleep": "0"}
    )
    assert one.id != two.id


def test_retry_failed_reruns_only_the_failed_runs(etl) -> None:
    args = ["backfill", "etl", "--start", "2024-01-01", "--end", "2024-01-04",
            "--var", "fail_on_day=3", "--project", str(etl.root)]  # fmt: skip
    done = treadle(*args)
    assert done.returncode == 1
    assert "1 failed" in done.stdout and "3 succeeded" in done.stdout
    backfill_id = done.stdout.split()[1]
    first = {r["run_id"]: r["status"] for r in _runs(etl, backfill_id)}
    load_file = etl.root / "data_loaders" / "load.py"
    load_file.write_text(load_file.read_text().replace("raise ValueError", "pass  #"))
    again = treadle(*args, "--retry-failed")
    assert again.returncode == 0, again.stdout + again.stderr
    after = {r["run_id"]: r["status"] for r in _runs(etl, backfill_id)}
    assert set(after) == set(first) and set(after.values()) == {"succeeded"}
    [failed] = [run for run, status in first.items() if status == "failed"]
    show = treadle("runs", "show", failed, "--project", str(etl.root), "--json")
    attempts = json.loads(show.stdout)["blocks"][0]["attempts"]
    assert attempts == 2  # it ran again; the others did not
    listing = treadle("backfill", "list", "--project", str(etl.root), "--json")
    assert json.loads(listing.stdout)[0]["status"] == "succeeded"


def test_cancel_from_another_terminal_stops_the_backfill(etl) -> None:
    proc = subprocess.Popen(
        [*TREADLE, "backfill", "etl", "--start", "2024-01-01", "--end", "2024-01-20",
         "--var", "sleep=0.3", "--project", str(etl.root)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        listed = treadle("backfill", "list", "--project", str(etl.root), "--json")
        records = json.loads(listed.stdout) if listed.returncode == 0 else []
        if records and records[0]["runs"].get("succeeded", 0) >= 1:
            break
        assert time.monotonic() < deadline, listed.stderr
        time.sleep(0.1)
    cancelled = treadle("backfill", "cancel", records[0]["id"][:8], "--project", str(etl.root))
    assert cancelled.returncode == 0, cancelled.stderr
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    runs = _runs(etl, records[0]["id"])
    statuses = [r["status"] for r in runs]
    assert "cancelled" in statuses and "queued" not in statuses and "running" not in statuses
    assert statuses.count("succeeded") < 20


def test_bad_ranges_are_clear_errors(etl) -> None:
    project = load_project(etl.root)
    with pytest.raises(UserInputError, match="before it starts"):
        backfills.plan_backfill(project, "etl", "2024-01-08", "2024-01-01")
    with pytest.raises(UserInputError, match="--every"):
        backfills.plan_backfill(project, "etl", "2024-01-01", "2024-01-08", "daily")
    with pytest.raises(UserInputError, match="runs"):
        backfills.plan_backfill(project, "etl", "2000-01-01", "2024-01-08", "1m")
    done = treadle("backfill", "nope", "--start", "2024-01-01", "--end", "2024-01-02",
                   "--project", str(etl.root))  # fmt: skip
    assert done.returncode == 2 and "nope" in done.stderr
    with Scheduler(project) as scheduler:
        assert scheduler.schedules.backfills() == []


def test_dry_run_shows_the_count_and_makes_nothing(etl) -> None:
    done = treadle("backfill", "etl", "--start", "2024-01-01", "--end", "2024-01-08",
                   "--dry-run", "--project", str(etl.root))  # fmt: skip
    assert done.returncode == 0 and "8 runs" in done.stdout
    assert treadle("backfill", "list", "--project", str(etl.root), "--json").stdout.strip() == "[]"


def test_sub_second_intervals_are_refused(etl) -> None:
    with pytest.raises(UserInputError, match="shorter than a second"):
        backfills.plan_backfill(load_project(etl.root), "etl", "2024-01-01", "2024-01-02", "500ms")


def test_the_same_range_is_another_backfill_in_another_project_and_1d_is_24h(etl) -> None:
    project = load_project(etl.root)
    day = backfills.plan_backfill(project, "etl", "2024-01-01", "2024-01-02", "1d")
    assert backfills.plan_backfill(project, "etl", "2024-01-01", "2024-01-02", "24h").id == day.id
    (etl.root / "treadle.yaml").write_text("name: another_project\n")
    other = backfills.plan_backfill(load_project(etl.root), "etl", "2024-01-01", "2024-01-02")
    assert other.id != day.id
