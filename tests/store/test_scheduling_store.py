"""The scheduler's store (``treadle.store.scheduling``), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from treadle.store import RunStore
from treadle.store.scheduling import (
    BackfillRecord,
    Held,
    Limits,
    NewRun,
    ScheduleStore,
    hash_token,
)


def _spec(name: str, fingerprint: str = "f1", enabled: bool = True) -> dict:
    return {
        "name": name,
        "type": "schedule",
        "spec": {"name": name, "schedule": "@daily"},
        "fingerprint": fingerprint,
        "enabled": enabled,
    }


def _run(run_id: str, trigger_id: int | None = None, pipeline: str = "etl") -> NewRun:
    return NewRun(
        run_id=run_id,
        pipeline=pipeline,
        execution_date=1000.0,
        interval_start=1000.0,
        interval_end=2000.0,
        variables={"k": "v"},
        trigger_id=trigger_id,
        triggered_by="daily",
    )


def test_sync_adds_changes_and_removes_exactly(store: RunStore) -> None:
    sched = ScheduleStore(store)
    assert sched.sync_triggers("etl", [_spec("a"), _spec("b")], 10.0) == (["a", "b"], [], [])
    first_id = sched.trigger("etl", "a").id
    assert sched.sync_triggers("etl", [_spec("a", "f2"), _spec("c")], 20.0) == (
        ["c"],
        ["a"],
        ["b"],
    )
    a = sched.trigger("etl", "a")
    assert (a.id, a.fingerprint, a.created_at) == (first_id, "f2", 10.0)  # same trigger
    assert sched.sync_triggers("etl", [_spec("a", "f2", enabled=False)], 30.0) == (
        [],
        ["a"],
        ["c"],
    )
    assert [t.name for t in sched.triggers()] == ["a"]
    assert sched.trigger("etl", "a").enabled is False
    assert sched.remove_triggers_except(["other"]) == ["etl.a"]
    assert sched.triggers() == []


def test_a_slot_fires_once_with_its_run(store: RunStore) -> None:
    sched = ScheduleStore(store)
    sched.sync_triggers("etl", [_spec("daily")], 1.0)
    trigger = sched.trigger("etl", "daily")
    assert sched.fire(trigger.id, 1000.0, _run("r1", trigger.id), 5.0)
    assert not sched.fire(trigger.id, 1000.0, _run("r2", trigger.id), 6.0)
    assert [r.run_id for r in store.list_runs()] == ["r1"]
    run = store.get_run("r1")
    assert run.run.status.value == "queued" and run.variables == {"k": "v"}
    assert sched.trigger("etl", "daily").last_slot == 1000.0


def test_two_stores_racing_for_a_slot_make_one_run(
    open_project_store: Callable[..., RunStore],
) -> None:
    stores = [ScheduleStore(open_project_store()) for _ in range(4)]
    stores[0].sync_triggers("etl", [_spec("daily")], 1.0)
    trigger_id = stores[0].trigger("etl", "daily").id
    results: list[bool] = []
    barrier = threading.Barrier(len(stores))

    def fire(i: int) -> None:
        barrier.wait()
        for slot in range(20):
            results.append(stores[i].fire(trigger_id, float(slot), _run(f"r{i}-{slot}"), 5.0))

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 20
    assert len(stores[0].runs.list_runs(limit=1000)) == 20


def test_queued_runs_are_leased_to_one_scheduler(store: RunStore) -> None:
    sched = ScheduleStore(store)
    for i in range(3):
        assert sched.queue_run(_run(f"r{i}"), float(i))
    assert not sched.queue_run(_run("r0"), 9.0)  # the same id twice
    a = sched.claim_queued("A", 60.0, limit=2)
    assert [q.run_id for q in a] == ["r0", "r1"]
    assert [q.run_id for q in sched.claim_queued("B", 60.0)] == ["r2"]
    assert sched.claim_queued("C", 60.0) == []
    assert [q.run_id for q in sched.claim_queued("A", 60.0)] == ["r0", "r1"]  # renewed
    sched.release("A")
    assert [q.run_id for q in sched.claim_queued("C", 0.0)] == ["r0", "r1"]
    time.sleep(0.01)  # C's zero-second lease has expired
    assert [q.run_id for q in sched.claim_queued("D", 60.0)] == ["r0", "r1"]


WHERE = {"host": "h", "pid": 1, "pid_started": None}


def test_a_run_starts_once_and_within_limits(store: RunStore) -> None:
    sched = ScheduleStore(store)
    for i in range(3):
        sched.queue_run(_run(f"r{i}"), float(i))
    claimed = {q.run_id: q for q in sched.claim_queued("A", 60.0)}
    assert sched.start_queued("r0", "B", Limits(), **WHERE).gone  # not B's
    assert sched.start_queued("r0", "A", Limits(pipeline=1), **WHERE).started
    assert store.get_run("r0").run.status.value == "running"
    assert sched.start_queued("r0", "A", Limits(), **WHERE).gone  # started already
    held = sched.start_queued("r1", "A", Limits(pipeline=1), **WHERE)
    assert (held.why, held.held_by) == (
        "waiting: 1 run of pipeline etl running (max_active_runs: 1)",
        "pipeline",
    )
    sched.hold(claimed["r1"], "A", held.why, held.held_by)
    assert store.get_run("r1").run.reason == held.why
    assert store.get_run("r2").run.reason == held.why  # held by the same limit: says so
    assert [q.run_id for q in sched.claim_queued("B", 60.0)] == ["r1"]  # r1 freed; r2 is A's


def test_a_run_cancelled_while_queued_is_never_started(store: RunStore) -> None:
    sched = ScheduleStore(store)
    sched.queue_run(_run("r0"), 0.0)
    sched.claim_queued("A", 60.0)
    store.request_cancel("r0", "not today")
    assert sched.start_queued("r0", "A", Limits(), **WHERE).gone
    run = store.get_run("r0").run
    assert (run.status.value, run.reason) == ("cancelled", "not today")


def test_held_runs_do_not_hide_the_others(store: RunStore) -> None:
    sched = ScheduleStore(store)
    for i in range(3):
        sched.queue_run(_run(f"etl{i}"), float(i))
    sched.queue_run(_run("report", pipeline="report"), 9.0)
    skip = Held(pipelines={"etl"})
    assert [q.run_id for q in sched.claim_queued("A", 60.0, limit=1, skip=skip)] == ["report"]


def test_project_limit_counts_every_pipeline(store: RunStore) -> None:
    sched = ScheduleStore(store)
    sched.queue_run(_run("a", pipeline="one"), 1.0)
    sched.queue_run(_run("b", pipeline="two"), 2.0)
    sched.claim_queued("A", 60.0)
    assert sched.start_queued("a", "A", Limits(project=1), **WHERE).started
    held = sched.start_queued("b", "A", Limits(project=1), **WHERE)
    assert (held.why, held.held_by) == (
        "waiting: 1 run in the project running (max_active_runs: 1)",
        "project",
    )


def test_a_removed_trigger_added_back_keeps_its_fires(store: RunStore) -> None:
    sched = ScheduleStore(store)
    sched.sync_triggers("etl", [_spec("daily")], 1.0)
    trigger_id = sched.trigger("etl", "daily").id
    assert sched.fire(trigger_id, 1000.0, _run("r1", trigger_id), 5.0)
    sched.sync_triggers("etl", [], 6.0)
    assert sched.triggers() == []
    assert sched.sync_triggers("etl", [_spec("daily")], 7.0) == (["daily"], [], [])
    back = sched.trigger("etl", "daily")
    assert (back.id, back.last_slot) == (trigger_id, 1000.0)
    assert not sched.fire(trigger_id, 1000.0, _run("r2", trigger_id), 8.0)


def test_a_slot_fired_in_the_future_does_not_hide_earlier_ones(store: RunStore) -> None:
    sched = ScheduleStore(store)
    sched.sync_triggers("etl", [_spec("hourly")], 1.0)
    trigger_id = sched.trigger("etl", "hourly").id
    sched.fire(trigger_id, 90_000.0, None, 5.0)  # by a clock a day ahead
    assert sched.trigger("etl", "hourly").last_slot == 90_000.0
    assert sched.triggers(now=4000.0)[0].last_slot is None


def test_backfills_queue_each_run_once(store: RunStore) -> None:
    sched = ScheduleStore(store)
    record = BackfillRecord(
        id="bf-1", pipeline="etl", status="running", created_at=1.0, start=0.0, end=86400.0,
        every="1d", variables={}, concurrency=2, total=2, reason="",
    )  # fmt: skip
    runs = [
        NewRun(f"bf-1-{i}", "etl", i * 86400.0, i * 86400.0, (i + 1) * 86400.0, backfill_id="bf-1")
        for i in range(2)
    ]
    assert sched.create_backfill(record, runs, 1.0) == (True, 2)
    assert sched.create_backfill(record, runs, 2.0) == (False, 0)
    [found] = sched.backfills("bf")
    assert (found.total, found.runs, found.every) == (2, {"queued": 2}, "1d")
    assert [r[0] for r in sched.backfill_runs("bf-1")] == ["bf-1-0", "bf-1-1"]
    sched.set_backfill_status("bf-1", "cancelled", "because")
    assert (sched.backfills()[0].status, sched.backfills()[0].reason) == ("cancelled", "because")


def test_tokens_are_stored_hashed_and_checked(store: RunStore) -> None:
    sched = ScheduleStore(store)
    sched.sync_triggers("etl", [_spec("hook")], 1.0)
    trigger = sched.trigger("etl", "hook")
    assert not trigger.has_token and not sched.token_matches(trigger.id, "anything")
    sched.set_token(trigger.id, hash_token("s3cret-token"), 2.0)
    assert sched.trigger("etl", "hook").has_token
    assert sched.token_matches(trigger.id, "s3cret-token")
    assert not sched.token_matches(trigger.id, "s3cret-tokeN")
    stored = store.db.execute  # the raw value is not in the database
    with store.db.transaction(write=False) as tx:
        assert tx.one("SELECT token_hash FROM triggers")[0] != "s3cret-token"
    assert stored


def test_an_alert_is_recorded_once_per_run_and_event(store: RunStore) -> None:
    sched = ScheduleStore(store)
    assert sched.first_alert("r1", "failure")
    assert not sched.first_alert("r1", "failure")
    assert sched.first_alert("r1", "stuck")
