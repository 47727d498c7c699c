"""``treadle runs list`` answers in well under 50 ms with 100,000 runs in the store."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from treadle.store import ALL_PROJECTS, RunStore

RUNS = 100_000
T0 = 1_795_500_000.0
PIPELINES = ("etl", "report", "backfill_taxi", "export")
STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "cancelled")
INSERT = """
INSERT INTO pipeline_runs (id, project, pipeline, status, variables, "trigger", file_hashes,
                           created_at, started_at, finished_at)
VALUES (:id, :project, :pipeline, :status, '{}', 'schedule', '{}',
        :created_at, :created_at, :finished_at)
"""


def fill(store: RunStore, count: int) -> None:
    ts = store.db.ts
    rows = []
    for i in range(count):
        at = T0 + i * 60.0
        running = i % 5000 == 1
        rows.append(
            {
                "id": f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(at))}000-{i:06x}",
                "project": "demo" if i % 10 else "other",
                "pipeline": PIPELINES[i % len(PIPELINES)],
                "status": "running" if running else STATUSES[i % len(STATUSES)],
                "created_at": ts(at),
                "finished_at": None if running else ts(at + 30),
            }
        )
    store.db.executemany(INSERT, rows)
    if store.db.dialect == "postgres":  # what autovacuum does soon after a bulk load
        store.db.execute("ANALYZE pipeline_runs")


def fastest(call: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def test_list_runs_with_100k_runs_is_fast(store: RunStore):
    started = time.perf_counter()
    fill(store, RUNS)
    fill_seconds = time.perf_counter() - started

    newest = store.list_runs()
    assert len(newest) == 50
    assert newest[0].created_at == pytest.approx(T0 + (RUNS - 1) * 60.0)
    assert [r.created_at for r in newest] == sorted((r.created_at for r in newest), reverse=True)
    assert {r.project for r in newest} == {"demo"}

    queries: dict[str, Callable[[], object]] = {
        "newest": lambda: store.list_runs(),
        "pipeline": lambda: store.list_runs(pipeline="report"),
        "status": lambda: store.list_runs(status="failed"),
        "running (rare)": lambda: store.list_runs(status="running"),
        "pipeline+status": lambda: store.list_runs(pipeline="etl", status="succeeded"),
        "all projects": lambda: store.list_runs(project=ALL_PROJECTS, limit=200),
        "prefix": lambda: store.get_run(newest[3].run_id[:-3]),
        "lost runs": lambda: store.find_lost_runs(T0, 60.0, lambda host, pid, started: None),
    }
    seconds = {name: fastest(query) for name, query in queries.items()}
    slow = {name: f"{s * 1000:.1f} ms" for name, s in seconds.items() if s > 0.05}
    assert not slow, f"slower than 50 ms with {RUNS} runs: {slow} (filled in {fill_seconds:.1f} s)"
    assert len(store.list_runs(status="running")) == 20
