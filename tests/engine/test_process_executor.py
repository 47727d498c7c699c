"""What only the process executor does: real parallelism, and surviving dead workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from treadle.engine.api import run_pipeline
from treadle.events import BlockStatus, RunStatus

SLEEPER = "import time\nfrom treadle import custom\n\n@custom\ndef {name}():\n    time.sleep(1)\n    return '{name}'\n"


def test_independent_blocks_run_at_the_same_time(project):
    for name in ("s1", "s2"):
        project.block("custom", name, SLEEPER.format(name=name))
    project.write("treadle.yaml", "concurrency: 2\n")
    project.pipeline("p", "blocks:\n  - {name: s1, type: custom}\n  - {name: s2, type: custom}\n")
    started = time.monotonic()
    result = run_pipeline(project.root, "p", executor="process")
    elapsed = time.monotonic() - started
    assert result.ok and result.output("s2") == "s2"
    assert elapsed < 1.8, f"two 1 s blocks took {elapsed:.2f}s: they did not overlap"


def test_pipeline_concurrency_limit_is_respected(project):
    for name in ("s1", "s2"):
        project.block("custom", name, SLEEPER.format(name=name))
    project.write("treadle.yaml", "concurrency: 4\n")
    project.pipeline(
        "p", "concurrency: 1\nblocks:\n  - {name: s1, type: custom}\n  - {name: s2, type: custom}\n"
    )
    started = time.monotonic()
    assert run_pipeline(project.root, "p", executor="process").ok
    assert time.monotonic() - started >= 2.0


def test_a_worker_that_dies_fails_its_block_with_the_reason(project):
    project.block(
        "custom",
        "dies",
        "import os\nfrom treadle import custom\n\n@custom\ndef dies():\n    os._exit(3)\n",
    )
    project.block(
        "custom", "fine", "from treadle import custom\n\n@custom\ndef fine():\n    return 1\n"
    )
    project.pipeline(
        "p", "blocks:\n  - {name: dies, type: custom}\n  - {name: fine, type: custom}\n"
    )
    result = run_pipeline(project.root, "p", executor="process")
    assert result.status is RunStatus.FAILED
    error = result.blocks["dies"].error
    assert error.type == "WorkerLost" and "exit code 3" in error.message
    assert result.blocks["fine"].status is BlockStatus.SUCCEEDED


def test_ctrl_c_cancels_the_run_and_stops_its_workers(project):
    project.block(
        "custom",
        "slow",
        "import os, time\nfrom treadle import custom\n\n@custom\ndef slow():\n"
        f"    open({str(project.root / 'pid')!r}, 'w').write(str(os.getpid()))\n    time.sleep(60)\n",
    )
    project.pipeline("p", "blocks:\n  - {name: slow, type: custom}\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "treadle.cli",
            "run",
            str(project.root),
            "p",
            "--executor",
            "process",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = project.root / "pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the block never started"
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert "interrupted" in err
    time.sleep(0.2)
    assert not _alive(worker), "the worker running the block was left behind"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_block_waiting_for_room_says_so_and_starts_when_there_is(project):
    from treadle.engine.sink import MemorySink
    from treadle.events import BlockFinished, BlockQueued, BlockStarted

    for name in ("s1", "s2"):
        project.block(
            "custom", name, SLEEPER.format(name=name).replace("time.sleep(1)", "time.sleep(0.3)")
        )
    project.pipeline(
        "p", "concurrency: 1\nblocks:\n  - {name: s1, type: custom}\n  - {name: s2, type: custom}\n"
    )
    sink = MemorySink()
    assert run_pipeline(project.root, "p", executor="process", sinks=[sink]).ok
    (queued,) = sink.of(BlockQueued)
    assert queued.block == "s2" and queued.why == "concurrency limit 1 reached"
    order = [
        (type(e).__name__, e.block)
        for e in sink.events
        if isinstance(e, BlockStarted | BlockFinished)
    ]
    assert order == [
        ("BlockStarted", "s1"),
        ("BlockFinished", "s1"),
        ("BlockStarted", "s2"),
        ("BlockFinished", "s2"),
    ]
