"""Exactly once with two scheduler processes on one PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import psycopg
import pytest

TICKER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from treadle.scheduler.service import Scheduler

    class Clock:
        def __init__(self): self.current = datetime(2024, 1, 1, tzinfo=UTC)
        def now(self): return self.current
        def wait(self, wake, seconds): return wake.is_set()

    clock = Clock()
    with Scheduler(sys.argv[1], clock=clock, workers=4) as scheduler:
        for minute in range(0, 241, 3):
            clock.current = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
            scheduler.tick(clock.current)
        scheduler.wait_idle(120)
        while scheduler.start_queued():  # what the other process left queued
            scheduler.wait_idle(120)
    """
)


def _project(project, url: str, trigger: str) -> None:
    project.write("treadle.yaml", f"name: twins\ndatabase_url: {url}\n")
    project.block(
        "data_loaders",
        "load",
        """
        import os
        from treadle import data_loader

        @data_loader
        def load(*, run_id):
            return {"pid": os.getpid(), "run": run_id}
        """,
    )
    project.pipeline("etl", "blocks:\n  - name: load\n    type: data_loader\n")
    project.write("pipelines/etl/triggers.yaml", trigger)


def _count(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_two_scheduler_processes_fire_each_slot_once(project, pg_databases) -> None:
    url = pg_databases.create()
    _project(
        project,
        url,
        "triggers:\n  - name: minutely\n    every: 1m\n    start: 2024-01-01\n    catchup: true\n",
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", TICKER, str(project.root)], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.wait(240) == 0, proc.stderr.read().decode()
    slots = _count(url, "SELECT slot FROM trigger_fires ORDER BY slot")
    assert len(slots) == 241  # 00:00 … 04:00, every minute, both included
    runs = _count(url, "SELECT status, COUNT(*) FROM pipeline_runs GROUP BY status")
    assert runs == [("succeeded", 241)]
    dates = _count(url, "SELECT COUNT(DISTINCT execution_date) FROM pipeline_runs")
    assert dates == [(241,)]
    attempts = _count(url, "SELECT run_id, COUNT(*) FROM block_runs GROUP BY run_id")
    assert len(attempts) == 241 and {n for _, n in attempts} == {1}
    pids = _count(url, "SELECT COUNT(DISTINCT pid) FROM pipeline_runs")
    assert pids[0][0] in (1, 2)  # both may have started runs; none twice


@pytest.mark.timeout(120)
def test_two_real_schedulers_on_the_real_clock(project, pg_databases) -> None:
    url = pg_databases.create()
    _project(project, url, "triggers:\n  - name: fast\n    every: 1s\n")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "treadle.cli", "scheduler", str(project.root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    time.sleep(6)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        assert proc.wait(60) == 0, proc.stdout.read().decode()
    runs = _count(url, "SELECT execution_date, status FROM pipeline_runs ORDER BY 1")
    dates = [r[0] for r in runs]
    assert len(dates) == len(set(dates)) >= 3
    assert {r[1] for r in runs} <= {"succeeded", "cancelled"}
    attempts = _count(url, "SELECT run_id, COUNT(*) FROM block_runs GROUP BY run_id")
    assert {n for _, n in attempts} == {1}
