"""The scheduler on a fake clock: years of slots in milliseconds, files as the source of
truth, catchup, clock jumps, limits, event triggers; and a few seconds on the real clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from treadle.scheduler.service import Scheduler

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def wait(self, wake: threading.Event, seconds: float) -> bool:
        return wake.is_set()


def _one_block(project, name: str = "etl", extra: str = "") -> None:
    project.block(
        "data_loaders",
        "load",
        """
        from treadle import data_loader

        @data_loader
        def load(*, execution_date, interval_end, variables):
            return {"day": execution_date.isoformat(), "end": interval_end.isoformat(),
                    "tag": variables.get("tag")}
        """,
    )
    project.pipeline(
        name,
        f"""
        variables: {{tag: ""}}
        {extra}
        blocks:
          - name: load
            type: data_loader
        """,
    )


def _triggers(project, pipeline: str, text: str) -> None:
    project.write(f"pipelines/{pipeline}/triggers.yaml", text)


def _runs(scheduler: Scheduler, **filters) -> list:
    return sorted(
        scheduler.runs.list_runs(limit=100_000, **filters), key=lambda r: r.execution_date or 0
    )


def _dates(runs) -> list[datetime]:
    return [datetime.fromtimestamp(r.execution_date, UTC) for r in runs]


@pytest.fixture
def scheduler_for(project):
    opened: list[Scheduler] = []

    def make(now: datetime = T0, **kwargs) -> Scheduler:
        scheduler = Scheduler(project.root, clock=FakeClock(now), **kwargs)
        opened.append(scheduler)
        return scheduler

    yield make
    for scheduler in opened:
        scheduler.close()


def test_a_year_of_daily_slots_fires_each_once_in_milliseconds(project, scheduler_for) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: daily
            schedule: "@daily"
            start: 2023-01-01
            catchup: true
            variables: {tag: nightly}
        """,
    )
    scheduler = scheduler_for(T0)
    started = time.perf_counter()
    for _ in range(3):  # ticking again fires nothing new
        scheduler.tick(T0, start_runs=False)
    elapsed = time.perf_counter() - started
    runs = _runs(scheduler)
    days = _dates(runs)
    assert len(runs) == 366  # 2023-01-01 … 2024-01-01, both included
    assert days[0] == datetime(2023, 1, 1, tzinfo=UTC) and days[-1] == T0
    assert all(b - a == timedelta(days=1) for a, b in zip(days, days[1:], strict=False))
    assert {r.status.value for r in runs} == {"queued"}
    assert {(r.trigger, r.triggered_by) for r in runs} == {("schedule", "daily")}
    first = runs[0]
    assert first.interval_start == first.execution_date
    assert first.interval_end == first.execution_date + 86400
    assert scheduler.runs.get_run(first.run_id).variables == {"tag": "nightly"}
    assert elapsed < 10


def test_the_slots_due_run_with_their_dates_and_variables(project, scheduler_for) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 * * * *"
            start: 2024-01-01 00:00
            catchup: true
            variables: {tag: from-trigger}
        """,
    )
    scheduler = scheduler_for()
    scheduler.tick(T0 + timedelta(hours=2, minutes=5))
    assert scheduler.wait_idle(60)
    runs = _runs(scheduler)
    assert [r.status.value for r in runs] == ["succeeded"] * 3
    assert _dates(runs) == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    detail = scheduler.runs.get_run(runs[1].run_id)
    assert detail.variables == {"tag": "from-trigger"}
    assert detail.run.interval_end == runs[1].execution_date + 3600


def test_catchup_false_runs_only_the_latest_missed_slot(project, scheduler_for) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 * * * *"
            catchup: false
        """,
    )
    scheduler = scheduler_for()
    scheduler.tick(T0, start_runs=False)  # first seen at 00:00: fires the 00:00 slot
    scheduler.tick(T0 + timedelta(minutes=30), start_runs=False)
    assert _dates(_runs(scheduler)) == [T0]
    scheduler.tick(T0 + timedelta(hours=5, minutes=10), start_runs=False)  # after an outage
    assert _dates(_runs(scheduler)) == [T0, T0 + timedelta(hours=5)]


def test_catchup_true_runs_every_missed_slot_in_order(project, scheduler_for) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 * * * *"
            catchup: true
        """,
    )
    scheduler = scheduler_for()
    scheduler.tick(T0, start_runs=False)
    scheduler.tick(T0 + timedelta(hours=5, minutes=10), start_runs=False)
    assert _dates(_runs(scheduler)) == [T0 + timedelta(hours=h) for h in range(6)]


def test_a_clock_jump_makes_no_duplicate_or_phantom_runs(project, scheduler_for) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 * * * *"
        """,
    )
    scheduler = scheduler_for()
    scheduler.tick(T0 + timedelta(hours=3), start_runs=False)
    before = _dates(_runs(scheduler))
    scheduler.tick(T0 + timedelta(hours=1), start_runs=False)  # the clock goes back
    scheduler.tick(T0 + timedelta(hours=3, minutes=30), start_runs=False)
    assert _dates(_runs(scheduler)) == before
    scheduler.tick(T0 + timedelta(days=2, minutes=1), start_runs=False)  # and far forward
    assert _dates(_runs(scheduler)) == [*before, T0 + timedelta(days=2)]


def test_the_file_is_the_source_of_truth_both_ways(project, scheduler_for) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 * * * *"
          - name: webhook
            type: api
        """,
    )
    scheduler = scheduler_for()
    report = scheduler.reload(T0, force=True)
    assert sorted(report.added) == ["etl.hourly", "etl.webhook"]
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "30 * * * *"
        """,
    )
    report = scheduler.reload(T0, force=True)
    assert (report.changed, report.removed) == (["etl.hourly"], ["etl.webhook"])
    assert [t.name for t in scheduler.schedules.triggers()] == ["hourly"]
    (project.root / "pipelines/etl/triggers.yaml").unlink()
    scheduler.reload(T0, force=True)
    assert scheduler.schedules.triggers() == []


def test_an_invalid_file_keeps_the_running_triggers(project, scheduler_for) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 * * * *"
        """,
    )
    scheduler = scheduler_for()
    scheduler.reload(T0, force=True)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 25 * * *"
        """,
    )
    report = scheduler.reload(T0, force=True)
    assert report.removed == [] and report.changed == []
    [problem] = scheduler.problems
    assert problem.path.endswith("triggers.yaml") and problem.line == 3
    scheduler.tick(T0 + timedelta(hours=1), start_runs=False)
    assert _dates(_runs(scheduler)) == [T0 + timedelta(hours=1)]  # still firing as before


def test_a_changed_file_is_noticed_without_being_told(project, scheduler_for) -> None:
    _one_block(project)
    scheduler = scheduler_for()
    scheduler.tick(T0, start_runs=False)
    assert scheduler.schedules.triggers() == []
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 * * * *"
        """,
    )
    scheduler.tick(T0 + timedelta(seconds=1), start_runs=False)
    assert [t.name for t in scheduler.schedules.triggers()] == ["hourly"]


def test_max_active_runs_makes_runs_wait_and_say_why(project, scheduler_for) -> None:
    project.block(
        "data_loaders",
        "slow",
        """
        import time
        from treadle import data_loader

        @data_loader
        def slow():
            time.sleep(0.5)
            return 1
        """,
    )
    project.pipeline(
        "etl",
        """
        max_active_runs: 1
        blocks:
          - name: slow
            type: data_loader
        """,
    )
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 * * * *"
            catchup: true
            start: 2024-01-01
        """,
    )
    scheduler = scheduler_for()
    scheduler.tick(T0 + timedelta(hours=1, minutes=1))
    runs = _runs(scheduler)
    assert [r.status.value for r in runs] == ["running", "queued"]
    assert runs[1].reason == "waiting: 1 run of pipeline etl running (max_active_runs: 1)"
    deadline = time.monotonic() + 30
    while any(r.status.value != "succeeded" for r in _runs(scheduler)):
        assert time.monotonic() < deadline
        scheduler.tick(T0 + timedelta(hours=1, minutes=1))
        scheduler.wait_for_wake(0.1)
    assert scheduler.wait_idle()


def test_skip_if_running_skips_the_slot(project, scheduler_for) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 * * * *"
            skip_if_running: true
        """,
    )
    scheduler = scheduler_for()
    scheduler.tick(T0, start_runs=False)  # queued, not started: it counts as active
    scheduler.tick(T0 + timedelta(hours=1), start_runs=False)
    assert _dates(_runs(scheduler)) == [T0]
    assert (
        scheduler.schedules.trigger("etl", "hourly").last_slot
        == (T0 + timedelta(hours=1)).timestamp()
    )


def test_an_event_trigger_runs_after_each_success_once(project, scheduler_for) -> None:
    _one_block(project, "load_taxi")
    _one_block(project, "report")
    _triggers(
        project,
        "report",
        """
        triggers:
          - name: after_load
            after: load_taxi
        """,
    )
    import treadle

    scheduler = scheduler_for()
    scheduler.reload(T0, force=True)
    upstream = treadle.run_pipeline(project.root, "load_taxi", execution_date="2024-01-05")
    assert upstream.ok
    scheduler.tick(T0)
    scheduler.tick(T0)
    assert scheduler.wait_idle()
    [run] = _runs(scheduler, pipeline="report")
    assert run.status.value == "succeeded" and run.trigger == "event"
    assert _dates([run]) == [datetime(2024, 1, 5, tzinfo=UTC)]


def test_disabled_triggers_do_not_fire(project, scheduler_for) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: hourly
            schedule: "0 * * * *"
            enabled: false
        """,
    )
    scheduler = scheduler_for()
    scheduler.tick(T0 + timedelta(hours=3), start_runs=False)
    assert _runs(scheduler) == []


def test_on_the_real_clock_an_every_second_trigger_runs_each_second(project) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: fast
            every: 1s
        """,
    )
    stop = threading.Event()
    with Scheduler(project.root) as scheduler:
        thread = threading.Thread(target=scheduler.serve, args=(stop,))
        thread.start()
        time.sleep(3.5)
        stop.set()
        thread.join(10)
        assert scheduler.wait_idle()
        runs = _runs(scheduler)
    assert 3 <= len(runs) <= 5
    assert {r.status.value for r in runs} == {"succeeded"}
    gaps = [b - a for a, b in zip(_dates(runs), _dates(runs)[1:], strict=False)]
    assert all(gap == timedelta(seconds=1) for gap in gaps)
    started = [r.started_at - r.execution_date for r in runs]
    assert max(started) < 0.5  # each run started within half a second of its slot


def test_a_backlog_held_by_a_limit_does_not_hold_other_pipelines(project, scheduler_for) -> None:
    _one_block(project, "etl", extra="max_active_runs: 1")
    _one_block(project, "report")
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: minutely
            every: 1m
            start: 2024-01-01
            catchup: true
        """,
    )
    scheduler = scheduler_for(workers=2)
    scheduler.tick(T0 + timedelta(minutes=59), start_runs=False)  # 60 queued etl runs
    from treadle.store.scheduling import NewRun

    later = (T0 + timedelta(hours=1)).timestamp()
    scheduler.schedules.queue_run(
        NewRun("report-1", "report", later, later, later, trigger="api"), later
    )
    scheduler.start_queued()
    assert scheduler.runs.get_run("report-1").run.status.value in ("running", "succeeded")
    assert scheduler.wait_idle()
    waiting = _runs(scheduler, pipeline="etl", status="queued")
    assert len(waiting) == 59
    assert {r.reason for r in waiting} == {
        "waiting: 1 run of pipeline etl running (max_active_runs: 1)"
    }


def test_a_running_scheduler_keeps_to_a_backfill_concurrency(project, scheduler_for) -> None:
    _one_block(project)
    from treadle.scheduler import backfills

    scheduler = scheduler_for(workers=4)
    plan = backfills.plan_backfill(scheduler.project, "etl", "2024-01-01", "2024-01-06")
    backfills.queue_backfill(scheduler.schedules, plan, concurrency=1)
    scheduler.start_queued()
    running = _runs(scheduler, status="running")
    assert len(running) <= 1
    assert scheduler.wait_idle()


def test_the_scheduler_notices_a_run_whose_process_died(project, scheduler_for) -> None:
    _one_block(project, extra="max_active_runs: 1")
    from treadle.store.scheduling import Limits, NewRun

    scheduler = scheduler_for()
    scheduler.schedules.queue_run(NewRun("dead", "etl", 1.0, 1.0, 1.0, trigger="api"), 1.0)
    scheduler.schedules.claim_queued("gone-scheduler", 60.0)
    dead_pid = _a_dead_pid()
    assert scheduler.schedules.start_queued(
        "dead", "gone-scheduler", Limits(), host=_host(), pid=dead_pid, pid_started=None
    ).started
    scheduler.tick(T0, start_runs=False)
    run = scheduler.runs.get_run("dead").run
    assert run.status.value == "failed" and "worker lost" in run.reason


def _host() -> str:
    from treadle.processes import this_host

    return this_host()


def _a_dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_cancel_stops_a_waiting_sensor_and_spares_the_scheduler(project) -> None:
    project.block(
        "sensors",
        "never",
        """
        from treadle import sensor

        @sensor
        def never():
            return False
        """,
    )
    project.pipeline(
        "etl",
        """
        blocks:
          - name: never
            type: sensor
            interval: 0.2s
            timeout: 1h
        """,
    )
    _triggers(project, "etl", "triggers:\n  - name: hook\n    type: api\n")
    from treadle.scheduler.launch import cancel_run

    stop = threading.Event()
    with Scheduler(project.root) as scheduler:
        thread = threading.Thread(target=scheduler.serve, args=(stop,))
        thread.start()
        record = scheduler.api_trigger("etl", "hook")
        run_id = scheduler.queue_api_run(record)
        deadline = time.monotonic() + 30
        while scheduler.runs.get_run(run_id).run.status.value != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # the sensor is waiting between polls
        outcome = cancel_run(project.root, run_id)  # must not signal this process
        assert outcome.status == "cancelled"
        assert thread.is_alive()
        stop.set()
        thread.join(10)


def test_a_new_trigger_with_a_past_start_and_no_catchup_runs_the_latest_slot(
    project, scheduler_for
) -> None:
    _one_block(project)
    _triggers(
        project,
        "etl",
        """
        triggers:
          - name: daily
            schedule: "0 5 * * *"
            start: 2023-06-01
            catchup: false
        """,
    )
    scheduler = scheduler_for(T0 + timedelta(hours=7))
    scheduler.tick(T0 + timedelta(hours=7), start_runs=False)
    assert _dates(_runs(scheduler)) == [T0 + timedelta(hours=5)]


def test_queued_runs_of_a_disabled_trigger_wait_until_it_is_enabled(project, scheduler_for) -> None:
    _one_block(project)
    text = 'triggers:\n  - name: hourly\n    schedule: "0 * * * *"\n    enabled: {}\n'
    _triggers(project, "etl", text.format("true"))
    scheduler = scheduler_for()
    scheduler.tick(T0, start_runs=False)  # queued
    _triggers(project, "etl", text.format("false"))
    scheduler.reload(T0, force=True)
    scheduler.start_queued()
    [run] = _runs(scheduler)
    assert (run.status.value, run.reason) == ("queued", "waiting: its trigger hourly is disabled")
    _triggers(project, "etl", text.format("true"))
    scheduler.reload(T0, force=True)
    scheduler.start_queued()
    assert scheduler.wait_idle()
    assert _runs(scheduler)[0].status.value == "succeeded"
