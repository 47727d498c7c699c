"""Alerts on real runs: a failure, a success, a lost run, a late run — each sent once."""

from __future__ import annotations

import time

import treadle
from treadle.project import load_project
from treadle.scheduler.history import history, recover_lost_runs
from treadle.scheduler.notify import alert_late_runs
from treadle.store.scheduling import NewRun, ScheduleStore


def _pipeline(project, receiver, on: str, sla: str = "") -> None:
    project.block(
        "data_loaders",
        "load",
        """
        from treadle import data_loader

        @data_loader
        def load(*, variables):
            if variables.get("fail"):
                raise ValueError("negative fare in row 17")
            return {"rows": 3}
        """,
    )
    project.pipeline(
        "taxi",
        f"""
        variables: {{fail: ""}}
        {sla}
        alerts:
          - url: {receiver.url()}
            on: [{on}]
        blocks:
          - name: load
            type: data_loader
        """,
    )


def test_a_failed_run_alerts_once_naming_block_and_error(project, receiver) -> None:
    _pipeline(project, receiver, "failure, success")
    result = treadle.run_pipeline(project.root, "taxi", variables={"fail": "yes"})
    assert not result.ok
    [alert] = receiver.at("/hook")
    assert "taxi" in alert["title"] and "failed" in alert["title"]
    for text in (result.run_id, "load", "negative fare in row 17", f"/runs/{result.run_id}"):
        assert text in alert["message"]
    treadle.run_pipeline(project.root, "taxi")
    assert len(receiver.at("/hook")) == 2  # the success of the second run
    assert "succeeded" in receiver.at("/hook")[1]["title"]


def test_no_alert_for_an_event_not_subscribed(project, receiver) -> None:
    _pipeline(project, receiver, "failure")
    assert treadle.run_pipeline(project.root, "taxi").ok
    assert receiver.at("/hook") == []


def test_a_lost_run_alerts_stuck_once(project, receiver) -> None:
    _pipeline(project, receiver, "stuck")
    loaded = load_project(project.root)
    with history(loaded) as store:
        sched = ScheduleStore(store)
        sched.queue_run(NewRun("r-lost", "taxi", 1.0, 1.0, 1.0), 1.0)
        sched.claim_queued("me", 60.0)
        # a run marked running by a process that is gone
        assert sched.start_queued(
            "r-lost", "me", _no_limits(), host="h", pid=1, pid_started=None
        ).started
        store.db.execute("UPDATE pipeline_runs SET heartbeat_at = :t", {"t": store.db.ts(1.0)})
        assert recover_lost_runs(loaded, store, now=time.time()) == ["r-lost"]
        assert recover_lost_runs(loaded, store, now=time.time()) == []
    [alert] = receiver.at("/hook")
    assert "stuck" in alert["title"] and "r-lost" in alert["message"]


def test_a_run_past_its_sla_alerts_once(project, receiver) -> None:
    _pipeline(project, receiver, "sla_missed", sla="sla: 1h")
    loaded = load_project(project.root)
    with history(loaded) as store:
        sched = ScheduleStore(store)
        due = time.time() - 7200  # its slot was two hours ago
        run = NewRun("r-late", "taxi", due, due, due, trigger="schedule")
        sched.queue_run(run, due)
        on_time = NewRun("r-fine", "taxi", time.time(), 0, 0, trigger="schedule")
        sched.queue_run(on_time, time.time())
        assert alert_late_runs(loaded, store, time.time()) == []
        assert alert_late_runs(loaded, store, time.time()) == []  # the ledger: once
    [alert] = receiver.at("/hook")
    assert "r-late" in alert["message"] and "sla" in alert["message"]


def _no_limits():
    from treadle.store.scheduling import Limits

    return Limits()


def test_a_run_that_finishes_past_its_sla_alerts(project, receiver) -> None:
    project.block(
        "data_loaders",
        "slow",
        """
        import time
        from treadle import data_loader

        @data_loader
        def slow():
            time.sleep(1.3)
            return 1
        """,
    )
    project.pipeline(
        "taxi",
        f"""
        sla: 1s
        alerts:
          - url: {receiver.url()}
            on: [sla_missed]
        blocks:
          - name: slow
            type: data_loader
        """,
    )
    result = treadle.run_pipeline(project.root, "taxi")
    assert result.ok
    [alert] = receiver.at("/hook")
    assert "sla" in alert["title"].lower() or "sla" in alert["message"].lower()
