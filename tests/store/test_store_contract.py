"""The run-history contract, on SQLite and PostgreSQL alike: real event sequences in,
runs, blocks and attempts out (``treadle/store/base.py`` says what each method does)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from treadle.errors import UserInputError
from treadle.events import (
    BlockFinished,
    BlockQueued,
    BlockRetrying,
    BlockStarted,
    BlockStatus,
    OutputSaved,
    RunFinished,
    RunHeartbeat,
    RunStarted,
    RunStatus,
)
from treadle.store import ALL_PROJECTS, RunStore
from treadle.store.rows import iso

T0 = 1_795_500_000.0  # 2026-11-24T…Z
HOST = "worker-1"
PID = 4242
S = BlockStatus
ERROR = {"type": "ValueError", "message": "bad row 7", "traceback": "Traceback …\nValueError"}
# the documented --json keys (treadle/store/rows.py): scripts rely on them
SUMMARY_KEYS = {
    *("run_id", "project", "pipeline", "status", "trigger", "triggered_by", "reason"),
    *("execution_date", "interval_start", "interval_end", "executor", "host", "pid"),
    *("created_at", "started_at", "finished_at", "heartbeat_at", "duration", "resumes"),
    *("cancel_requested_at", "cancel_reason"),
}
DETAIL_KEYS = {
    *("variables", "pipeline_hash", "file_hashes", "trigger_id", "backfill_id"),
    *("blocks", "attempts"),
}
ATTEMPT_KEYS = {
    *("id", "block", "item", "attempt", "status", "started_at", "finished_at", "heartbeat_at"),
    *("duration", "cpu_time", "peak_memory", "rows", "bytes", "error"),
}


def run_started(run_id: str, blocks: list[str], *, at: float = T0, **kwargs: Any) -> RunStarted:
    values: dict[str, Any] = {
        "pipeline": "etl",
        "execution_date": "2026-11-24T00:00:00+00:00",
        "variables": {"month": "2020-10", "limit": 5},
        "blocks": tuple(blocks),
        "interval_start": "2026-11-24T00:00:00+00:00",
        "interval_end": "2026-11-25T00:00:00Z",
        "trigger": "cli",
        "triggered_by": "alice",
        "executor": "inline",
        "host": HOST,
        "pid": PID,
        "pipeline_hash": "p" * 64,
        "file_hashes": {"data_loaders/load.py": "a" * 64},
    }
    values.update(kwargs)
    return RunStarted(run_id, at, **values)


def ran(
    store: RunStore,
    run_id: str,
    block: str,
    at: float,
    *,
    status: BlockStatus = S.SUCCEEDED,
    attempt: int = 1,
    duration: float = 0.5,
    rows: int | None = None,
    **finished: Any,
) -> None:
    """One block that starts at ``at`` and finishes ``duration`` later."""
    store.emit(BlockStarted(run_id, at, block, attempt))
    store.emit(
        BlockFinished(
            run_id, at + duration, block, status, attempt, duration, rows=rows, **finished
        )
    )


def finished_run(
    store: RunStore,
    run_id: str,
    *,
    at: float = T0,
    pipeline: str = "etl",
    status: RunStatus = RunStatus.SUCCEEDED,
    blocks: tuple[str, ...] = ("load",),
) -> None:
    store.emit(run_started(run_id, list(blocks), at=at, pipeline=pipeline))
    for block in blocks:
        ran(store, run_id, block, at + 1)
    store.emit(RunFinished(run_id, at + 2, status, 2.0))


def attempts(store: RunStore, run_id: str, block: str, item: int | None = None) -> list[Any]:
    detail = store.get_run(run_id)
    assert detail is not None
    return detail.attempts_of(block, item)


# -- a run, event by event ----------------------------------------------------------------


def test_a_normal_run_is_recorded_with_every_block_and_attempt(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    waiting = {"clean": "waiting for load", "export": "waiting for clean"}
    store.emit(run_started(run, ["load", "clean", "export"], waiting=waiting))

    detail = store.get_run(run)
    assert detail.status is RunStatus.RUNNING
    assert [(b.block, b.status, b.why, b.attempts) for b in detail.blocks] == [
        ("load", S.QUEUED, "", 0),
        ("clean", S.QUEUED, "waiting for load", 0),
        ("export", S.QUEUED, "waiting for clean", 0),
    ]

    store.emit(BlockStarted(run, T0 + 1, "load", 1))
    detail = store.get_run(run)
    assert detail.block("load").status is S.RUNNING
    assert detail.block("load").started_at == pytest.approx(T0 + 1)
    [attempt] = detail.attempts_of("load")
    assert (attempt.status, attempt.attempt, attempt.item) == (S.RUNNING, 1, None)
    assert attempt.heartbeat_at == pytest.approx(T0 + 1)

    store.emit(
        BlockFinished(
            run, T0 + 2, "load", S.SUCCEEDED, 1, 1.0, rows=10, cpu_time=0.8, peak_memory=2**20
        )
    )
    store.emit(OutputSaved(run, T0 + 2.1, "load", "load", 10, 1234))
    ran(store, run, "clean", T0 + 3, rows=9, bytes=999)
    ran(store, run, "export", T0 + 4)
    store.emit(RunFinished(run, T0 + 5, RunStatus.SUCCEEDED, 5.0))

    detail = store.get_run(run)
    summary = detail.run
    assert summary.status is RunStatus.SUCCEEDED
    assert (summary.pipeline, summary.project, summary.trigger, summary.triggered_by) == (
        "etl",
        "demo",
        "cli",
        "alice",
    )
    assert (summary.host, summary.pid, summary.executor) == (HOST, PID, "inline")
    assert summary.created_at == pytest.approx(T0)
    assert summary.started_at == pytest.approx(T0)
    assert summary.finished_at == pytest.approx(T0 + 5)
    assert summary.duration == pytest.approx(5.0)
    assert summary.execution_date == pytest.approx(1795478400.0)  # 2026-11-24T00:00:00Z
    assert summary.interval_end == pytest.approx(1795478400.0 + 86400)
    assert summary.resumes == 0 and summary.reason == ""
    assert detail.variables == {"month": "2020-10", "limit": 5}
    assert detail.file_hashes == {"data_loaders/load.py": "a" * 64}
    assert detail.pipeline_hash == "p" * 64

    assert [(b.block, b.status, b.why, b.attempts) for b in detail.blocks] == [
        ("load", S.SUCCEEDED, "", 1),
        ("clean", S.SUCCEEDED, "", 1),
        ("export", S.SUCCEEDED, "", 1),
    ]
    load = detail.block("load")
    assert (load.rows, load.bytes, load.duration) == (10, 1234, 1.0)
    assert load.finished_at == pytest.approx(T0 + 2)
    assert load.error is None
    [attempt] = detail.attempts_of("load")
    assert attempt.status is S.SUCCEEDED
    assert (attempt.rows, attempt.bytes, attempt.cpu_time, attempt.peak_memory) == (
        10,
        1234,
        0.8,
        2**20,
    )
    assert attempt.finished_at == pytest.approx(T0 + 2)
    assert [a.block for a in detail.attempts] == ["load", "clean", "export"]


def test_to_dict_is_json_with_iso_utc_times_and_stable_keys(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["load"]))
    ran(store, run, "load", T0 + 1.25, status=S.FAILED, error=ERROR, reason="it raised")
    store.emit(RunFinished(run, T0 + 2, RunStatus.FAILED, 2.0))

    data = json.loads(json.dumps(store.get_run(run).to_dict()))
    assert data["run_id"] == run and data["status"] == "failed"
    assert data["started_at"] == iso(T0) and data["started_at"].endswith("Z")
    assert data["execution_date"] == "2026-11-24T00:00:00.000Z"
    assert set(data) == SUMMARY_KEYS | DETAIL_KEYS
    [block] = data["blocks"]
    assert block == {
        "block": "load",
        "status": "failed",
        "why": "it raised",
        "attempts": 1,
        "items": None,
        "rows": None,
        "bytes": None,
        "duration": 0.5,
        "started_at": iso(T0 + 1.25),
        "finished_at": iso(T0 + 1.75),
        "error": ERROR,
    }
    [attempt] = data["attempts"]
    assert set(attempt) == ATTEMPT_KEYS
    assert attempt["error"] == ERROR and attempt["item"] is None
    assert set(store.list_runs()[0].to_dict()) == SUMMARY_KEYS


def test_retries_close_each_failed_attempt_and_say_when_the_next_one_runs(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["flaky"]))
    store.emit(BlockStarted(run, T0 + 1, "flaky", 1))
    store.emit(
        BlockRetrying(run, T0 + 2, "flaky", 2, 10.0, ERROR, None, 1.0, 0.25, 1000, retries=2)
    )

    detail = store.get_run(run)
    flaky = detail.block("flaky")
    assert flaky.status is S.QUEUED
    assert flaky.why == f"retry 2 of 3 at {iso(T0 + 12)[:19]}Z"
    [first] = detail.attempts_of("flaky")
    assert first.status is S.FAILED
    assert (first.duration, first.cpu_time, first.peak_memory) == (1.0, 0.25, 1000)
    assert first.error.to_dict() == ERROR
    assert first.finished_at == pytest.approx(T0 + 2)

    store.emit(BlockStarted(run, T0 + 12, "flaky", 2))
    assert store.get_run(run).block("flaky").why == ""
    assert store.get_run(run).block("flaky").status is S.RUNNING
    store.emit(BlockRetrying(run, T0 + 13, "flaky", 3, 20.0, ERROR, None, 1.0, retries=2))
    store.emit(BlockStarted(run, T0 + 33, "flaky", 3))
    store.emit(BlockFinished(run, T0 + 34, "flaky", S.SUCCEEDED, 3, 1.0, rows=3))
    store.emit(RunFinished(run, T0 + 35, RunStatus.SUCCEEDED))

    detail = store.get_run(run)
    assert detail.block("flaky").attempts == 3
    assert detail.block("flaky").status is S.SUCCEEDED
    assert [(a.attempt, a.status) for a in detail.attempts_of("flaky")] == [
        (1, S.FAILED),
        (2, S.FAILED),
        (3, S.SUCCEEDED),
    ]
    assert store.block_states(run)["flaky"].attempts == 3


def test_a_final_failure_keeps_the_error_on_block_and_attempt(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["load"]))
    store.emit(BlockStarted(run, T0 + 1, "load", 1))
    store.emit(BlockFinished(run, T0 + 2, "load", S.FAILED, 1, 1.0, error=ERROR))
    store.emit(RunFinished(run, T0 + 3, RunStatus.FAILED))
    detail = store.get_run(run)
    assert detail.block("load").error.to_dict() == ERROR
    assert detail.attempts_of("load")[0].error.to_dict() == ERROR
    assert detail.status is RunStatus.FAILED


def test_fan_out_items_get_their_own_attempts(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["list", "each"], waiting={"each": "waiting for list"}))
    ran(store, run, "list", T0 + 1)
    for i in range(3):
        store.emit(BlockStarted(run, T0 + 2, "each", 1, index=i))
    detail = store.get_run(run)
    assert detail.block("each").status is S.RUNNING
    assert detail.block("each").items == 3
    store.emit(BlockRetrying(run, T0 + 3, "each", 2, 0.0, ERROR, index=1, duration=0.5, retries=1))
    assert store.get_run(run).block("each").status is S.RUNNING  # other items still run
    store.emit(BlockStarted(run, T0 + 3, "each", 2, index=1))
    for i, attempt in [(0, 1), (1, 2), (2, 1)]:
        store.emit(OutputSaved(run, T0 + 4, "each", f"each.{i}", 10 + i, 100))
        store.emit(BlockFinished(run, T0 + 4, "each", S.SUCCEEDED, attempt, 0.5, index=i))
    store.emit(BlockFinished(run, T0 + 5, "each", S.SUCCEEDED, rows=33, bytes=300))
    store.emit(RunFinished(run, T0 + 6, RunStatus.SUCCEEDED))

    detail = store.get_run(run)
    each = detail.block("each")
    assert (each.status, each.items, each.rows, each.bytes, each.attempts) == (
        S.SUCCEEDED,
        3,
        33,
        300,
        2,
    )
    assert [
        (a.item, a.attempt, a.status, a.rows) for a in detail.attempts if a.block == "each"
    ] == [
        (0, 1, S.SUCCEEDED, 10),
        (1, 1, S.FAILED, None),
        (1, 2, S.SUCCEEDED, 11),
        (2, 1, S.SUCCEEDED, 12),
    ]
    assert detail.attempts_of("list") == [a for a in detail.attempts if a.block == "list"]
    assert [a.item for a in detail.attempts_of("each", 1)] == [1, 1]


def test_an_item_output_stored_after_its_block_settled_updates_the_block(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["each"]))
    for i in range(2):
        store.emit(BlockStarted(run, T0 + 1, "each", 1, index=i))
        store.emit(BlockFinished(run, T0 + 2, "each", S.SUCCEEDED, 1, 0.5, index=i))
    store.emit(BlockFinished(run, T0 + 3, "each", S.SUCCEEDED, rows=20))
    store.emit(OutputSaved(run, T0 + 4, "each", "each.0", 10, 500))
    store.emit(OutputSaved(run, T0 + 4, "each", "each.1", 10, 700))
    assert store.get_run(run).block("each").bytes == 1200


def test_blocks_settled_without_running_say_why_and_have_no_attempt(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["load", "check", "after_check", "export", "skipped"]))
    ran(store, run, "load", T0 + 1, status=S.FAILED, error=ERROR)
    ran(store, run, "check", T0 + 1, status=S.CONDITION_FAILED, reason="the condition is false")
    for block, status, reason in [
        ("after_check", S.CONDITION_FAILED, "upstream check: the condition failed"),
        ("export", S.UPSTREAM_FAILED, "upstream load failed"),
        ("skipped", S.SKIPPED, "skipped: reused the stored output"),
    ]:
        store.emit(BlockFinished(run, T0 + 2, block, status, reason=reason))
    store.emit(RunFinished(run, T0 + 3, RunStatus.FAILED))

    detail = store.get_run(run)
    assert [(b.block, b.status, b.why, b.attempts) for b in detail.blocks] == [
        ("load", S.FAILED, "", 1),
        ("check", S.CONDITION_FAILED, "the condition is false", 1),
        ("after_check", S.CONDITION_FAILED, "upstream check: the condition failed", 0),
        ("export", S.UPSTREAM_FAILED, "upstream load failed", 0),
        ("skipped", S.SKIPPED, "skipped: reused the stored output", 0),
    ]
    assert {a.block for a in detail.attempts} == {"load", "check"}
    assert detail.attempts_of("check")[0].status is S.CONDITION_FAILED
    assert detail.block("export").started_at is None


def test_block_queued_sets_why_and_item_events_are_ignored(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["a", "b"]))
    store.emit(BlockQueued(run, T0 + 1, "b", "concurrency limit 4 reached"))
    store.emit(BlockQueued(run, T0 + 1, "b", "item waits", index=3))
    assert store.get_run(run).block("b").why == "concurrency limit 4 reached"


def test_resume_keeps_the_run_id_and_adds_attempts(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["load", "clean", "export"]))
    ran(store, run, "load", T0 + 1, rows=5)
    ran(store, run, "clean", T0 + 2, status=S.FAILED, error=ERROR)
    store.emit(
        BlockFinished(run, T0 + 3, "export", S.UPSTREAM_FAILED, reason="upstream clean failed")
    )
    store.emit(RunFinished(run, T0 + 4, RunStatus.FAILED, reason=""))

    states = store.block_states(run)
    assert {k: (v.status, v.attempts) for k, v in states.items()} == {
        "load": (S.SUCCEEDED, 1),
        "clean": (S.FAILED, 1),
        "export": (S.UPSTREAM_FAILED, 0),
    }
    assert list(states) == ["load", "clean", "export"]

    resumed_at = T0 + 100
    store.emit(
        run_started(
            run,
            ["clean", "export"],
            at=resumed_at,
            waiting={"export": "waiting for clean"},
            resumed=True,
            host="worker-2",
            pid=777,
            pipeline_hash="q" * 64,
        )
    )
    detail = store.get_run(run)
    assert detail.status is RunStatus.RUNNING
    assert detail.run.resumes == 1
    assert detail.run.finished_at is None and detail.run.reason == ""
    assert (detail.run.host, detail.run.pid) == ("worker-2", 777)
    assert detail.run.started_at == pytest.approx(T0)  # when the run first started
    assert detail.run.heartbeat_at == pytest.approx(resumed_at)
    assert detail.pipeline_hash == "q" * 64
    assert [(b.block, b.status, b.why, b.attempts) for b in detail.blocks] == [
        ("load", S.SUCCEEDED, "", 1),
        ("clean", S.QUEUED, "", 1),
        ("export", S.QUEUED, "waiting for clean", 0),
    ]
    assert detail.block("clean").error is None

    ran(store, run, "clean", resumed_at + 1, attempt=2)
    ran(store, run, "export", resumed_at + 2)
    store.emit(RunFinished(run, resumed_at + 3, RunStatus.SUCCEEDED))

    detail = store.get_run(run)
    assert detail.status is RunStatus.SUCCEEDED
    assert [(a.attempt, a.status) for a in detail.attempts_of("clean")] == [
        (1, S.FAILED),
        (2, S.SUCCEEDED),
    ]
    assert len(detail.attempts_of("load")) == 1
    assert {k: (v.status, v.attempts) for k, v in store.block_states(run).items()} == {
        "load": (S.SUCCEEDED, 1),
        "clean": (S.SUCCEEDED, 2),
        "export": (S.SUCCEEDED, 1),
    }
    assert len(store.list_runs()) == 1


def test_heartbeat_updates_the_run_and_its_running_attempts(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["done", "slow"]))
    ran(store, run, "done", T0 + 1)
    store.emit(BlockStarted(run, T0 + 2, "slow", 1))
    store.emit(RunHeartbeat(run, T0 + 7))
    detail = store.get_run(run)
    assert detail.run.heartbeat_at == pytest.approx(T0 + 7)
    assert detail.attempts_of("slow")[0].heartbeat_at == pytest.approx(T0 + 7)
    assert detail.attempts_of("done")[0].heartbeat_at == pytest.approx(T0 + 1)


# -- lost runs ----------------------------------------------------------------------------


def _half_done_run(store: RunStore, run: str, *, at: float = T0, pid: int = PID) -> None:
    store.emit(run_started(run, ["load", "clean", "export"], at=at, pid=pid))
    ran(store, run, "load", at + 1)
    store.emit(BlockStarted(run, at + 2, "clean", 1))
    store.emit(RunHeartbeat(run, at + 5))


def test_a_run_whose_process_died_is_found_and_failed_with_the_reason(store: RunStore):
    dead, alive = "20261124T000000000-dead00", "20261124T000000000-a11ve0"
    _half_done_run(store, dead, pid=111)
    _half_done_run(store, alive, pid=222)

    def is_alive(host: str, pid: int, started: float | None) -> bool | None:
        assert host == HOST
        return pid != 111

    assert store.find_lost_runs(T0 + 6, 60.0, is_alive) == [dead]
    assert store.find_lost_runs(T0 + 6, 60.0, lambda h, p, s: None) == []

    assert store.mark_lost(dead) is True
    assert store.mark_lost(dead) is False  # another reaper already did
    detail = store.get_run(dead)
    assert detail.status is RunStatus.FAILED
    assert detail.run.reason == "worker lost"
    assert detail.run.finished_at is not None
    assert [(b.block, b.status, b.why) for b in detail.blocks] == [
        ("load", S.SUCCEEDED, ""),
        ("clean", S.FAILED, "worker lost"),
        ("export", S.CANCELLED, "run lost before it started"),
    ]
    [attempt] = detail.attempts_of("clean")
    assert attempt.status is S.FAILED
    assert attempt.error.message == "worker lost"
    assert attempt.duration == pytest.approx(3.0)  # from its start to its last heartbeat
    assert store.get_run(alive).status is RunStatus.RUNNING
    assert store.find_lost_runs(T0 + 6, 60.0, is_alive) == []


def test_a_run_with_a_stale_heartbeat_is_lost_even_when_liveness_is_unknown(
    store: RunStore, open_project_store
):
    stale, fresh = "20261124T000000000-a1d000", "20261124T000000000-fe5000"
    _half_done_run(store, stale, at=T0)
    _half_done_run(store, fresh, at=T0 + 100)
    other = open_project_store("other")
    _half_done_run(other, "20261124T000000000-07e000", at=T0)

    unknown = lambda host, pid, started: None  # noqa: E731 (another host: only the heartbeat tells)
    assert store.find_lost_runs(T0 + 100, 60.0, unknown) == [stale]
    assert store.find_lost_runs(T0 + 200, 60.0, unknown) == [stale, fresh]
    assert store.mark_lost(stale, "no heartbeat for 95 s", now=T0 + 100)
    detail = store.get_run(stale)
    assert detail.run.reason == "no heartbeat for 95 s"
    assert detail.run.finished_at == pytest.approx(T0 + 100)


def test_a_lost_run_waiting_for_a_retry_says_so(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["flaky"]))
    store.emit(BlockStarted(run, T0 + 1, "flaky", 1))
    store.emit(BlockRetrying(run, T0 + 2, "flaky", 2, 60.0, ERROR, retries=1))
    assert store.mark_lost(run)
    assert store.get_run(run).block("flaky").why == "run lost while waiting to retry"


def test_run_finished_closes_whatever_was_left_running(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["a", "b"]))
    store.emit(BlockStarted(run, T0 + 1, "a", 1))
    store.emit(RunFinished(run, T0 + 3, RunStatus.FAILED, reason="internal error"))
    detail = store.get_run(run)
    assert detail.run.reason == "internal error"
    assert detail.block("a").status is S.FAILED
    assert detail.block("b").status is S.CANCELLED
    assert detail.block("b").why == "the run ended (failed) before it started"
    [attempt] = detail.attempts_of("a")
    assert attempt.status is S.FAILED
    assert attempt.duration == pytest.approx(2.0)
    assert "while it was running" in attempt.error.message


def test_an_output_that_could_not_be_stored_is_the_runs_reason(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["load"]))
    ran(store, run, "load", T0 + 1)
    disk_full = {"type": "OSError", "message": "No space left on device", "traceback": ""}
    store.emit(OutputSaved(run, T0 + 3, "load", "load", None, 0, disk_full))
    store.emit(RunFinished(run, T0 + 4, RunStatus.FAILED))
    reason = store.get_run(run).run.reason
    assert reason == "the output of 'load' could not be stored: OSError: No space left on device"


# -- cancelling ---------------------------------------------------------------------------


def test_cancel_request_is_seen_by_the_run_and_its_running_block_is_cancelled(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    store.emit(run_started(run, ["slow", "after"]))
    store.emit(BlockStarted(run, T0 + 1, "slow", 1))
    assert store.cancel_requested(run) is None

    summary = store.request_cancel(run[:-2], "stop: wrong month")  # a prefix works too
    assert summary.run_id == run
    assert summary.cancel_reason == "stop: wrong month"
    assert summary.cancel_requested_at is not None
    assert summary.status is RunStatus.RUNNING
    assert store.cancel_requested(run) == "stop: wrong month"

    for block in ("slow", "after"):
        store.emit(BlockFinished(run, T0 + 4, block, S.CANCELLED, reason="stop: wrong month"))
    store.emit(RunFinished(run, T0 + 4, RunStatus.CANCELLED, reason="stop: wrong month"))
    detail = store.get_run(run)
    assert detail.status is RunStatus.CANCELLED
    assert detail.block("slow").status is S.CANCELLED
    [attempt] = detail.attempts_of("slow")
    assert attempt.status is S.CANCELLED
    assert attempt.duration == pytest.approx(3.0)

    with pytest.raises(UserInputError, match="already finished .cancelled"):
        store.request_cancel(run, "again")
    with pytest.raises(UserInputError, match="no run 'nope'"):
        store.request_cancel("nope", "x")
    assert store.cancel_requested("nope") is None


def test_mark_cancelled_stops_a_run_whose_process_is_gone(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    _half_done_run(store, run)
    summary = store.mark_cancelled(run, "cancelled by bob", now=T0 + 10)
    assert summary.status is RunStatus.CANCELLED
    assert summary.finished_at == pytest.approx(T0 + 10)
    detail = store.get_run(run)
    assert [(b.block, b.status) for b in detail.blocks] == [
        ("load", S.SUCCEEDED),
        ("clean", S.CANCELLED),
        ("export", S.CANCELLED),
    ]
    assert detail.attempts_of("clean")[0].status is S.CANCELLED
    assert detail.attempts_of("clean")[0].duration == pytest.approx(8.0)
    with pytest.raises(UserInputError, match="already finished"):
        store.mark_cancelled(run, "again")


# -- reading ------------------------------------------------------------------------------


def test_list_runs_newest_first_with_filters_and_limit(store: RunStore, open_project_store):
    plan = [
        ("20261124T000001000-aaaaaa", "etl", RunStatus.SUCCEEDED),
        ("20261124T000002000-bbbbbb", "report", RunStatus.FAILED),
        ("20261124T000003000-cccccc", "etl", RunStatus.FAILED),
        ("20261124T000004000-dddddd", "etl", RunStatus.CANCELLED),
    ]
    for i, (run, pipeline, status) in enumerate(plan):
        finished_run(store, run, at=T0 + i * 10, pipeline=pipeline, status=status)
    store.emit(run_started("20261124T000005000-eeeeee", ["load"], at=T0 + 50))
    other = open_project_store("other")
    finished_run(other, "20261124T000006000-ffffff", at=T0 + 60)

    ids = [r.run_id[-6:] for r in store.list_runs()]
    assert ids == ["eeeeee", "dddddd", "cccccc", "bbbbbb", "aaaaaa"]
    assert [r.run_id[-6:] for r in store.list_runs(limit=2)] == ["eeeeee", "dddddd"]
    assert [r.run_id[-6:] for r in store.list_runs(pipeline="etl", status="failed")] == ["cccccc"]
    assert [r.run_id[-6:] for r in store.list_runs(status=RunStatus.RUNNING)] == ["eeeeee"]
    assert [r.run_id[-6:] for r in store.list_runs(pipeline="report")] == ["bbbbbb"]
    assert store.list_runs(pipeline="nope") == []
    assert [r.run_id[-6:] for r in store.list_runs(project="other")] == ["ffffff"]
    everything = store.list_runs(project=ALL_PROJECTS)
    assert [r.run_id[-6:] for r in everything][:2] == ["ffffff", "eeeeee"]
    assert {r.project for r in everything} == {"demo", "other"}
    with pytest.raises(UserInputError, match="unknown run status 'done'"):
        store.list_runs(status="done")
    with pytest.raises(UserInputError, match="limit"):
        store.list_runs(limit=0)


def test_a_unique_prefix_finds_a_run_and_an_ambiguous_one_lists_the_matches(store: RunStore):
    for suffix in ("aaa111", "aaa222", "bbb333"):
        store.emit(run_started(f"20261124T000000000-{suffix}", ["load"]))
    assert store.get_run("20261124T000000000-b").run_id == "20261124T000000000-bbb333"
    assert store.get_run("20261124T000000000-aaa2").run_id.endswith("aaa222")
    with pytest.raises(UserInputError) as raised:
        store.get_run("20261124T000000000-aaa")
    assert "aaa111" in str(raised.value) and "aaa222" in str(raised.value)
    assert store.get_run("20261124T000000000-zzz") is None
    assert store.get_run("nope") is None
    assert store.get_run("20261124T000000000-A") is None  # ids are case-sensitive
    with pytest.raises(UserInputError, match="give a run id"):
        store.get_run("")
    with pytest.raises(UserInputError, match="no run"):
        store.block_states("nope")


# -- retention ----------------------------------------------------------------------------


def test_delete_runs_removes_old_finished_runs_with_their_blocks(store: RunStore):
    old, recent = "20261124T000000000-01d000", "20261124T000000000-4ece47"
    running = "20261124T000000000-404404"
    finished_run(store, old, at=T0)
    finished_run(store, recent, at=T0 + 1000)
    store.emit(run_started(running, ["load"], at=T0 - 5000))
    store.db.execute(
        "INSERT INTO triggers (project, pipeline, name, created_at) "
        "VALUES ('demo', 'etl', 'daily', :at)",
        {"at": store.db.ts(T0)},
    )
    store.db.execute(
        "INSERT INTO trigger_fires (trigger_id, slot, run_id, fired_at) "
        "VALUES (1, :slot, :run_id, :at)",
        {"slot": store.db.ts(T0), "run_id": old, "at": store.db.ts(T0)},
    )

    assert store.delete_runs(T0 + 500, dry_run=True) == [old]
    assert store.get_run(old) is not None
    assert store.delete_runs(T0 + 500, project="nobody") == []
    assert store.delete_runs(T0 + 500) == [old]
    assert store.get_run(old) is None
    assert store.get_run(recent) is not None and store.get_run(running) is not None
    with store.db.transaction(write=False) as tx:
        for table in ("run_blocks", "block_runs"):
            assert tx.one(f"SELECT COUNT(*) FROM {table} WHERE run_id = :r", {"r": old})[0] == 0
        fire = tx.one("SELECT run_id FROM trigger_fires WHERE trigger_id = 1")
    assert fire == (None,)  # the slot stays fired, without its deleted run
    assert store.delete_runs(T0 + 5000, project=ALL_PROJECTS) == [recent]
    assert store.delete_runs(T0 + 9000) == []  # a running run is never deleted


# -- concurrency and failures -------------------------------------------------------------


def test_two_threads_emitting_at_once_lose_nothing(store: RunStore):
    run = "20261124T000000000-aaaaaa"
    blocks = [f"b{i}" for i in range(40)]
    store.emit(run_started(run, blocks))
    stop = threading.Event()
    errors: list[BaseException] = []

    def heartbeats() -> None:
        try:
            n = 0
            while not stop.is_set():
                n += 1
                store.emit(RunHeartbeat(run, T0 + n / 1000))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def blocks_in(names: list[str]) -> None:
        try:
            for name in names:
                ran(store, run, name, T0 + 1)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [
        threading.Thread(target=heartbeats),
        threading.Thread(target=blocks_in, args=(blocks[:20],)),
        threading.Thread(target=blocks_in, args=(blocks[20:],)),
    ]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert errors == []
    detail = store.get_run(run)
    assert all(b.status is S.SUCCEEDED for b in detail.blocks)
    assert len(detail.attempts) == 40
    assert store.emit_failures == 0


def test_emit_never_raises_when_the_database_is_gone(open_project_store, caplog):
    store = open_project_store()
    store.close()
    store.emit(RunHeartbeat("20261124T000000000-aaaaaa", T0))
    assert store.emit_failures == 1
    assert "run_heartbeat of run 20261124T000000000-aaaaaa" in store.last_emit_error
    assert "could not record" in caplog.text


def test_a_live_process_with_a_quiet_heartbeat_is_not_lost(store: RunStore):
    """A long block, a slow database: while the process is seen alive, the run is alive."""
    run = "20261124T000000000-a11ve1"
    _half_done_run(store, run)
    assert store.find_lost_runs(T0 + 10_000, 60.0, lambda h, p, s: True) == []
    assert store.find_lost_runs(T0 + 10_000, 60.0, lambda h, p, s: None) == [run]
