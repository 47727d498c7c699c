"""Run history end to end, as a user meets it: real processes, real kills, the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TREADLE = [sys.executable, "-m", "treadle.cli"]


def treadle(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREADLE, *args], capture_output=True, text=True, timeout=timeout)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*TREADLE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def runs(project) -> list[dict]:
    done = treadle("runs", "list", "--project", str(project.root), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def show(project, run_id: str) -> dict:
    done = treadle("runs", "show", run_id, "--project", str(project.root), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def blocks_of(detail: dict) -> dict[str, dict]:
    return {b["block"]: b for b in detail["blocks"]}


@pytest.fixture(autouse=True, params=["sqlite", "postgres"])
def history_database(request, monkeypatch) -> str:
    """Every test here runs twice: history in SQLite, then in a fresh PostgreSQL database."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_databases").create()
        monkeypatch.setenv("TREADLE_DATABASE_URL", url)
    else:
        monkeypatch.delenv("TREADLE_DATABASE_URL", raising=False)
    return request.param


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


COUNTING_LOADER = """
import pathlib
from treadle import data_loader

@data_loader
def load():
    counter = pathlib.Path({counter!r})
    counter.write_text(counter.read_text() + "x" if counter.exists() else "x")
    return {{"rows": [1, 2, 3]}}
"""

SLOW_ONCE = """
import pathlib, time
from treadle import transformer

@transformer
def slow(data):
    started = pathlib.Path({started!r})
    first_time = not started.exists()
    started.write_text("started")
    if first_time:
        time.sleep(60)  # killed or cancelled long before this ends
    return sum(data["rows"])
"""


@pytest.fixture
def two_step(project):
    """load (counts its runs) → slow (sleeps the first time it runs)."""
    project.block(
        "data_loaders", "load", COUNTING_LOADER.format(counter=str(project.root / "loads"))
    )
    project.block("transformers", "slow", SLOW_ONCE.format(started=str(project.root / "started")))
    project.pipeline(
        "p",
        "blocks:\n  - {name: load, type: data_loader}\n  - {name: slow, type: transformer, upstream: [load]}\n",
    )
    return project


def test_a_run_is_recorded_with_its_audit_trail(project):
    project.block(
        "custom", "c", "from treadle import custom\n\n@custom\ndef c():\n    return [1, 2]\n"
    )
    project.pipeline("p", "variables: {month: '2020-10'}\nblocks:\n  - {name: c, type: custom}\n")
    done = treadle(
        "run", str(project.root), "p", "--var", "month=2021-01", "--execution-date", "2021-01-01"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (listed,) = runs(project)
    assert (
        listed["status"] == "succeeded" and listed["pipeline"] == "p" and listed["trigger"] == "cli"
    )
    assert listed["execution_date"].startswith("2021-01-01T00:00:00")
    detail = show(project, listed["run_id"][:12])  # a unique prefix is enough
    assert detail["variables"] == {"month": "2021-01"}
    block = blocks_of(detail)["c"]
    assert block["status"] == "succeeded" and block["attempts"] == 1 and block["rows"] == 2
    pipeline_yaml = (project.root / "pipelines/p/pipeline.yaml").read_bytes()
    assert detail["pipeline_hash"] == hashlib.sha256(pipeline_yaml).hexdigest()
    block_file = (project.root / "custom/c.py").read_bytes()
    assert detail["file_hashes"] == {"custom/c.py": hashlib.sha256(block_file).hexdigest()}
    (attempt,) = detail["attempts"]
    assert attempt["cpu_time"] >= 0 and attempt["peak_memory"] > 1_000_000


def test_killed_run_is_found_lost_and_resume_completes_it(two_step):
    project = two_step
    process = start("run", str(project.root), "p")
    wait_for(project.root / "started")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    (lost,) = runs(project)  # any treadle command notices the dead process
    assert lost["status"] == "failed" and "worker lost" in lost["reason"]
    detail = show(project, lost["run_id"])
    assert blocks_of(detail)["load"]["status"] == "succeeded"
    assert blocks_of(detail)["slow"]["status"] == "failed"
    assert "worker lost" in blocks_of(detail)["slow"]["why"]

    done = treadle("resume", lost["run_id"], "--project", str(project.root))
    assert done.returncode == 0, done.stdout + done.stderr
    resumed = show(project, lost["run_id"])
    assert resumed["status"] == "succeeded" and resumed["resumes"] == 1
    assert blocks_of(resumed)["slow"]["attempts"] == 2  # attempts add up under one run id
    assert [a["attempt"] for a in resumed["attempts"] if a["block"] == "slow"] == [1, 2]
    assert (project.root / "loads").read_text() == "x"  # the loader never ran again
    assert len(runs(project)) == 1


def test_resume_on_crash_resumes_by_itself(two_step):
    project = two_step
    yaml_file = project.root / "pipelines/p/pipeline.yaml"
    yaml_file.write_text("resume_on_crash: true\n" + yaml_file.read_text())
    process = start("run", str(project.root), "p")
    wait_for(project.root / "started")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    runs(project)  # noticing the loss starts the resume in the background
    deadline = time.monotonic() + 60
    while (run := runs(project)[0])["status"] != "succeeded":
        assert time.monotonic() < deadline, run
        time.sleep(0.3)
    assert run["resumes"] == 1


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_cancel_really_stops_a_running_block(two_step, executor):
    project = two_step
    process = start("run", str(project.root), "p", "--executor", executor)
    wait_for(project.root / "started")
    run_id = runs(project)[0]["run_id"]
    started = time.monotonic()
    done = treadle("cancel", run_id, "--project", str(project.root))
    assert done.returncode == 0, done.stdout + done.stderr
    process.wait(timeout=20)
    assert time.monotonic() - started < 15
    detail = show(project, run_id)
    assert detail["status"] == "cancelled"
    assert blocks_of(detail)["slow"]["status"] == "cancelled"
    assert blocks_of(detail)["slow"]["duration"] > 0.05  # it ran until it was stopped
    assert not [a for a in detail["attempts"] if a["status"] == "running"]
    again = treadle("cancel", run_id, "--project", str(project.root))
    assert again.returncode == 2 and "already" in again.stderr


def test_retries_are_recorded_attempt_by_attempt(project):
    counter = project.root / "tries"
    project.block(
        "custom",
        "flaky",
        "import pathlib\nfrom treadle import custom\n\n@custom\ndef flaky():\n"
        f"    p = pathlib.Path({str(counter)!r})\n    n = len(p.read_text()) + 1 if p.exists() else 1\n"
        "    p.write_text('x' * n)\n    if n < 3:\n        raise RuntimeError(f'try {n}')\n    return n\n",
    )
    project.pipeline(
        "p",
        "retries: {count: 3, delay: 0.3s, backoff: 2}\nblocks:\n  - {name: flaky, type: custom}\n",
    )
    assert treadle("run", str(project.root), "p").returncode == 0
    detail = show(project, runs(project)[0]["run_id"])
    attempts = [a for a in detail["attempts"] if a["block"] == "flaky"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    assert attempts[0]["error"]["message"] == "try 1"
    from datetime import datetime

    def at(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    gap1 = at(attempts[1]["started_at"]) - at(attempts[0]["finished_at"])
    gap2 = at(attempts[2]["started_at"]) - at(attempts[1]["finished_at"])
    assert 0.25 <= gap1 < 1.5 and 0.55 <= gap2 < 2.0  # 0.3 s, then 0.6 s


def test_why_for_blocks_that_did_not_run(project):
    project.block(
        "custom",
        "bad",
        "from treadle import custom\n\n@custom\ndef bad():\n    raise ValueError('no')\n",
    )
    project.block(
        "custom", "after", "from treadle import custom\n\n@custom\ndef after(x):\n    return x\n"
    )
    project.block(
        "custom",
        "gated",
        "from treadle import custom, condition\n\n@custom\ndef gated():\n    return 1\n\n@condition\ndef no():\n    return False\n",
    )
    project.pipeline(
        "p",
        "blocks:\n  - {name: bad, type: custom}\n  - {name: after, type: custom, upstream: [bad]}\n"
        "  - {name: gated, type: custom}\n",
    )
    assert treadle("run", str(project.root), "p").returncode == 1
    blocks = blocks_of(show(project, runs(project)[0]["run_id"]))
    assert blocks["bad"]["status"] == "failed" and blocks["bad"]["error"]["message"] == "no"
    assert (
        blocks["after"]["status"] == "upstream_failed"
        and blocks["after"]["why"] == "upstream 'bad' failed"
    )
    assert blocks["gated"]["status"] == "condition_failed"
    shown = treadle("runs", "show", runs(project)[0]["run_id"], "--project", str(project.root))
    assert "upstream 'bad' failed" in shown.stdout and "ValueError: no" in shown.stdout


def test_retry_from_a_block_reruns_it_and_its_downstream(project):
    counter = project.root / "loads"
    project.block("data_loaders", "load", COUNTING_LOADER.format(counter=str(counter)))
    project.block(
        "transformers",
        "total",
        "from treadle import transformer\n\n@transformer\ndef total(d):\n    return sum(d['rows'])\n",
    )
    project.block(
        "data_exporters",
        "save",
        "from treadle import data_exporter\n\n@data_exporter\ndef save(n):\n    return n * 2\n",
    )
    project.pipeline(
        "p",
        "blocks:\n  - {name: load, type: data_loader}\n  - {name: total, type: transformer, upstream: [load]}\n"
        "  - {name: save, type: data_exporter, upstream: [total]}\n",
    )
    assert treadle("run", str(project.root), "p").returncode == 0
    run_id = runs(project)[0]["run_id"]
    done = treadle("retry", run_id, "--from", "total", "--project", str(project.root))
    assert done.returncode == 0, done.stdout + done.stderr
    blocks = blocks_of(show(project, run_id))
    assert (
        blocks["load"]["attempts"] == 1
        and blocks["total"]["attempts"] == 2
        and blocks["save"]["attempts"] == 2
    )
    assert counter.read_text() == "x"


def test_logs_command_and_follow(project):
    project.block(
        "custom",
        "talk",
        "import time\nfrom treadle import custom\n\n@custom\ndef talk(*, logger):\n"
        "    for i in range(3):\n        print('line', i, flush=True)\n        time.sleep(0.3)\n    logger.warning('done talking')\n",
    )
    project.block(
        "custom",
        "quiet",
        "from treadle import custom\n\n@custom\ndef quiet():\n    print('hush')\n",
    )
    project.pipeline(
        "p", "blocks:\n  - {name: talk, type: custom}\n  - {name: quiet, type: custom}\n"
    )
    process = start("run", str(project.root), "p")
    deadline = time.monotonic() + 30
    while not (listed := runs(project)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    run_id = listed[0]["run_id"]
    followed = treadle("logs", run_id, "--follow", "--project", str(project.root))
    process.wait(timeout=30)
    assert followed.returncode == 0
    for expected in ("line 0", "line 2", "done talking", "hush", run_id):
        assert expected in followed.stdout
    one = treadle("logs", run_id, "--block", "quiet", "--project", str(project.root))
    assert "hush" in one.stdout and "line 0" not in one.stdout
    bad = treadle("logs", run_id, "--block", "quite", "--project", str(project.root))
    assert bad.returncode == 2 and "did you mean 'quiet'" in bad.stderr


def test_clean_removes_what_retention_says(project):
    project.write("treadle.yaml", "retention: {outputs: 1s, logs: 1s, runs: 1s}\n")
    project.block(
        "custom",
        "c",
        "from treadle import custom\n\n@custom\ndef c():\n    print('x')\n    return [1]\n",
    )
    project.pipeline("p", "blocks:\n  - {name: c, type: custom}\n")
    assert treadle("run", str(project.root), "p").returncode == 0
    run_id = runs(project)[0]["run_id"]
    time.sleep(1.2)
    dry = treadle("clean", "--dry-run", "--json", "--project", str(project.root))
    report = json.loads(dry.stdout)
    assert report["runs"] == [run_id] and report["dry_run"] is True
    assert (project.root / ".treadle/outputs" / run_id).exists()
    assert treadle("clean", "--project", str(project.root)).returncode == 0
    assert runs(project) == []
    assert not (project.root / ".treadle/outputs" / run_id).exists()
    assert not (project.root / ".treadle/logs" / run_id).exists()


def test_bad_retention_setting_is_reported(project):
    project.write("treadle.yaml", "retention: {outputs: forever, log: 3d}\n")
    done = treadle("validate", str(project.root))
    assert done.returncode == 2
    assert "outputs" in done.stderr and "did you mean 'logs'" in done.stderr


def test_unknown_run_is_a_clear_error(project):
    project.pipeline("p", "blocks: []\n")
    for args in (
        ["runs", "show", "nope"],
        ["resume", "nope"],
        ["cancel", "nope"],
        ["logs", "nope"],
    ):
        done = treadle(*args, "--project", str(project.root))
        assert done.returncode == 2, (args, done.stderr)
        assert "nope" in done.stderr and "Traceback" not in done.stderr


def test_two_resumes_at_once_run_the_run_once(two_step):
    project = two_step
    process = start("run", str(project.root), "p")
    wait_for(project.root / "started")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    run_id = runs(project)[0]["run_id"]
    resumes = [start("resume", run_id, "--project", str(project.root)) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in resumes]
    codes = sorted(p.returncode for p in resumes)
    assert codes == [0, 2], outputs
    detail = show(project, run_id)
    assert detail["status"] == "succeeded" and blocks_of(detail)["slow"]["attempts"] == 2


def test_secret_variables_are_recorded_masked(project):
    project.block(
        "custom",
        "c",
        "from treadle import custom\n\n@custom\ndef c(*, db_password):\n    return len(db_password)\n",
    )
    project.pipeline("p", "blocks:\n  - {name: c, type: custom}\n")
    done = treadle(
        "run", str(project.root), "p", "--var", "db_password=hunter2-pass", "--var", "month=10"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = runs(project)[0]["run_id"]
    assert show(project, run_id)["variables"] == {"db_password": "***", "month": "10"}
    manifest = (project.root / ".treadle/outputs" / run_id / "run.json").read_text()
    assert "hunter2" not in manifest


def test_heartbeat_settings_must_leave_room(project):
    project.write("treadle.yaml", "heartbeat_every: 10s\nlost_after: 20s\n")
    done = treadle("validate", str(project.root))
    assert done.returncode == 2 and "at least 3 × heartbeat_every" in done.stderr


def test_a_waiting_sensor_says_since_when(project):
    flag = project.root / "arrived"
    project.block(
        "sensors",
        "wait_for_file",
        "import pathlib\nfrom treadle import sensor\n\n@sensor\ndef wait_for_file():\n"
        f"    return pathlib.Path({str(flag)!r}).exists()\n",
    )
    project.pipeline(
        "p", "blocks:\n  - {name: wait_for_file, type: sensor, interval: 0.2s, timeout: 60s}\n"
    )
    process = start("run", str(project.root), "p")
    deadline = time.monotonic() + 30
    while not (listed := runs(project)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    while (block := blocks_of(show(project, listed[0]["run_id"]))["wait_for_file"])[
        "status"
    ] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert block["why"].startswith("sensor waiting since 20")
    flag.write_text("here")
    assert process.wait(timeout=30) == 0
    assert blocks_of(show(project, listed[0]["run_id"]))["wait_for_file"]["status"] == "succeeded"


def test_workers_die_with_a_killed_run(two_step):
    project = two_step
    process = start("run", str(project.root), "p", "--executor", "process")
    wait_for(project.root / "started")
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
    workers = [int(pid) for pid in children.split()]
    assert workers
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    deadline = time.monotonic() + 10
    from treadle.processes import pid_alive, this_host

    while any(pid_alive(this_host(), w) for w in workers):
        assert time.monotonic() < deadline, "a worker outlived its killed run"
        time.sleep(0.1)


def test_clean_removes_half_written_outputs_of_killed_processes(project):
    project.pipeline("p", "blocks: []\n")
    run_dir = project.root / ".treadle/outputs" / "20990101T000000000-keep00"
    run_dir.mkdir(parents=True)
    (run_dir / "c.meta.json").write_text("{}")
    stale = run_dir / ".c.arrow.4242.tmp"  # from a process killed long ago
    fresh = run_dir / ".d.arrow.4243.tmp"  # maybe being written right now
    for leftover in (stale, fresh):
        leftover.write_bytes(b"half")
    long_ago = time.time() - 7200
    os.utime(stale, (long_ago, long_ago))
    assert treadle("clean", "--project", str(project.root)).returncode == 0
    assert not stale.exists() and fresh.exists() and (run_dir / "c.meta.json").exists()
