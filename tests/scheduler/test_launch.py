"""Runs started with history: heartbeats while they run, and cancel requests from elsewhere."""

from __future__ import annotations

import threading
import time

from treadle.engine.sink import MemorySink
from treadle.events import RunHeartbeat, RunStatus
from treadle.scheduler.launch import run_pipeline
from treadle.store import open_store

SLEEPER = (
    "import time\nfrom treadle import custom\n\n@custom\ndef nap():\n    time.sleep({seconds})\n"
)


def test_a_running_run_heartbeats(project):
    project.write("treadle.yaml", "name: hb\nheartbeat_every: 0.2s\nlost_after: 1s\n")
    project.block("custom", "nap", SLEEPER.format(seconds=1.0))
    project.pipeline("p", "blocks:\n  - {name: nap, type: custom}\n")
    sink = MemorySink()
    result = run_pipeline(project.root, "p", sinks=[sink])
    assert result.ok
    beats = sink.of(RunHeartbeat)
    assert 3 <= len(beats) <= 7, len(beats)
    with open_store(project.root, project="hb") as store:
        run = store.get_run(result.run_id).run
    assert run.heartbeat_at >= beats[-1].at - 0.01


def test_a_cancel_request_from_another_process_stops_the_run(project):
    """The request goes through the store, as from another machine: no signal is sent."""
    project.write("treadle.yaml", "name: cancel_me\n")
    project.block("custom", "nap", SLEEPER.format(seconds=30))
    project.pipeline("p", "blocks:\n  - {name: nap, type: custom}\n")
    results = []
    runner = threading.Thread(
        target=lambda: results.append(run_pipeline(project.root, "p", executor="process"))
    )
    runner.start()
    with open_store(project.root, project="cancel_me") as store:
        deadline = time.monotonic() + 20
        while not store.list_runs(status="running"):
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        run_id = store.list_runs(status="running")[0].run_id
        asked = time.monotonic()
        store.request_cancel(run_id, "no longer needed")
        runner.join(timeout=20)
        assert time.monotonic() - asked < 5
        detail = store.get_run(run_id)
    assert results[0].status is RunStatus.CANCELLED
    assert detail.status is RunStatus.CANCELLED
    assert (
        detail.block("nap").status.value == "cancelled"
        and detail.block("nap").why == "no longer needed"
    )
