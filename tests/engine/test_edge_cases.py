"""Corners where an orchestrator usually goes wrong: each found in review, each pinned here."""

from __future__ import annotations

import sys
import threading
from collections import Counter

import pytest

from treadle.engine.api import run_pipeline
from treadle.engine.sink import MemorySink
from treadle.errors import ProjectInvalid
from treadle.events import BlockFinished, BlockStatus
from treadle.project import load_project

EXECUTORS = ["inline", "process"]


@pytest.fixture(params=EXECUTORS)
def executor(request) -> str:
    return request.param


def one_final_event_per_block(sink: MemorySink) -> Counter:
    counts = Counter(e.block for e in sink.of(BlockFinished) if e.index is None)
    assert set(counts.values()) == {1}, counts
    return counts


def test_condition_skipping_one_item_skips_only_that_item(project, executor):
    project.block(
        "data_loaders",
        "ids",
        "from treadle import data_loader\n\n@data_loader\ndef ids():\n    return [1, 2, 3]\n",
    )
    project.block(
        "transformers",
        "each",
        "from treadle import transformer, condition\n\n@transformer\ndef each(x):\n    return x * 10\n\n"
        "@condition\ndef not_two(x):\n    return x != 2\n",
    )
    project.block(
        "transformers",
        "after",
        "from treadle import transformer\n\n@transformer\ndef after(x):\n    return x + 1\n",
    )
    project.block(
        "data_exporters",
        "total",
        "from treadle import data_exporter\n\n@data_exporter\ndef total(xs):\n    return sum(xs)\n",
    )
    project.pipeline(
        "p",
        """
        blocks:
          - {name: ids, type: data_loader, dynamic: true}
          - {name: each, type: transformer, upstream: [ids]}
          - {name: after, type: transformer, upstream: [each], reduce: true}
          - {name: total, type: data_exporter, upstream: [after]}
        """,
    )
    sink = MemorySink()
    result = run_pipeline(project.root, "p", executor=executor, sinks=[sink])
    assert result.ok, {n: (r.status, r.error) for n, r in result.blocks.items()}
    items = {(e.block, e.index): e.status for e in sink.of(BlockFinished) if e.index is not None}
    assert items[("each", 1)] is BlockStatus.CONDITION_FAILED
    assert items[("after", 1)] is BlockStatus.CONDITION_FAILED
    assert result.output("total") == 11 + 31  # the reduce collects the items that ran
    one_final_event_per_block(sink)


def test_unstorable_output_fails_the_block_once_and_stops_downstream(project, executor):
    project.block(
        "data_loaders",
        "gen",
        "from treadle import data_loader\n\n@data_loader\ndef gen():\n    return (i for i in range(3))\n",
    )
    project.block(
        "transformers",
        "use",
        "from treadle import transformer\n\n@transformer\ndef use(g):\n    return list(g)\n",
    )
    project.pipeline(
        "p",
        "blocks:\n  - {name: gen, type: data_loader}\n  - {name: use, type: transformer, upstream: [gen]}\n",
    )
    sink = MemorySink()
    result = run_pipeline(project.root, "p", executor=executor, sinks=[sink])
    assert result.blocks["gen"].status is BlockStatus.FAILED
    assert "pickle" in result.blocks["gen"].error.message
    assert result.blocks["use"].status is BlockStatus.UPSTREAM_FAILED
    one_final_event_per_block(sink)


def test_objects_of_a_class_defined_in_a_block_cross_processes(project, executor):
    project.block(
        "data_loaders",
        "parts",
        "from dataclasses import dataclass\nfrom treadle import data_loader\n\n"
        "@dataclass\nclass Part:\n    n: int\n\n@data_loader\ndef parts():\n    return [Part(1), Part(2)]\n",
    )
    project.block(
        "transformers",
        "each",
        "from treadle import transformer\n\n@transformer\ndef each(p):\n    return p.n\n",
    )
    project.pipeline(
        "p",
        "blocks:\n  - {name: parts, type: data_loader, dynamic: true}\n  - {name: each, type: transformer, upstream: [parts]}\n",
    )
    result = run_pipeline(project.root, "p", executor=executor)
    assert result.ok, result.blocks["each"].error
    assert result.output("each") == [1, 2]


def test_concurrent_runs_in_threads_keep_their_own_logs(project):
    for name in ("a", "b"):
        project.block(
            "custom",
            name,
            f"import time\nfrom treadle import custom\n\n@custom\ndef {name}():\n"
            f"    for i in range(5):\n        print('{name}', i)\n        time.sleep(0.02)\n",
        )
        project.pipeline(f"p{name}", f"blocks:\n  - {{name: {name}, type: custom}}\n")
    original = sys.stdout
    results = {}
    threads = [
        threading.Thread(
            target=lambda n=n: results.__setitem__(n, run_pipeline(project.root, f"p{n}"))
        )
        for n in "ab"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in "ab":
        log = (project.root / ".treadle/logs" / results[name].run_id / f"{name}.log").read_text()
        other = "b" if name == "a" else "a"
        assert log.count(f"] {name} ") == 5 and f"] {other} " not in log
    print("still printing")  # the real stdout works after both runs
    assert getattr(sys.stdout, "_original", sys.stdout) is original


def test_idle_worker_killed_is_replaced(project):
    from treadle.engine.executors.process import ProcessExecutor
    from treadle.engine.inputs import InputResolver
    from treadle.engine.outputs import OutputStore

    project.block("custom", "c", "from treadle import custom\n\n@custom\ndef c():\n    return 5\n")
    project.pipeline("p", "blocks:\n  - {name: c, type: custom}\n")
    loaded = load_project(project.root)
    from treadle.engine.api import execute, prepare_run

    killed = []
    original_init = ProcessExecutor.__init__

    def init_then_kill_idle_workers(
        self, resolver: InputResolver, concurrency: int, store: OutputStore
    ) -> None:
        original_init(self, resolver, concurrency, store)
        for worker in self._idle:
            worker.process.kill()
            worker.process.join()
            killed.append(worker.process.pid)

    ProcessExecutor.__init__ = init_then_kill_idle_workers  # the OOM killer, in effect
    try:
        result = execute(prepare_run(loaded, "p"), executor="process")
    finally:
        ProcessExecutor.__init__ = original_init
    assert killed and result.ok and result.output("c") == 5


def test_missing_reused_dynamic_output_fails_clearly(project, executor):
    project.block(
        "data_loaders",
        "ids",
        "from treadle import data_loader\n\n@data_loader\ndef ids():\n    return [1, 2]\n",
    )
    project.block(
        "transformers",
        "each",
        "from treadle import transformer\n\n@transformer\ndef each(x):\n    return x\n",
    )
    project.pipeline(
        "p",
        "blocks:\n  - {name: ids, type: data_loader, dynamic: true}\n  - {name: each, type: transformer, upstream: [ids]}\n",
    )
    first = run_pipeline(project.root, "p", executor=executor)
    (project.root / ".treadle/outputs" / first.run_id / "ids.meta.json").unlink()
    from treadle.errors import UserInputError

    with pytest.raises(UserInputError, match="'ids' has no stored output to reuse"):
        run_pipeline(project.root, "p", executor=executor, block="each")


def test_callbacks_skip_condition_failures_and_retried_attempts(project, executor):
    log = project.root / "callbacks.txt"
    project.block(
        "custom",
        "flaky",
        "import pathlib\nfrom treadle import custom, callback\n"
        f"LOG = pathlib.Path({str(log)!r})\n\n@custom\ndef flaky(*, block):\n"
        "    raise RuntimeError(f'attempt {block.attempt}')\n\n"
        "@callback('failure')\ndef alert(*, block):\n    LOG.open('a').write(f'failure {block.attempt}\\n')\n",
    )
    project.block(
        "custom",
        "skipped",
        "import pathlib\nfrom treadle import custom, callback, condition\n"
        f"LOG = pathlib.Path({str(log)!r})\n\n@custom\ndef skipped():\n    return 1\n\n"
        "@condition\ndef never():\n    return False\n\n"
        "@callback\ndef any_status(*, status):\n    LOG.open('a').write(f'skipped {status}\\n')\n",
    )
    project.pipeline(
        "p",
        "blocks:\n  - {name: flaky, type: custom, retries: {count: 2, delay: 0s}}\n  - {name: skipped, type: custom}\n",
    )
    run_pipeline(project.root, "p", executor=executor)
    assert log.read_text().splitlines() == ["failure 3"]


def test_inline_timeout_off_the_main_thread_is_reported_in_the_log(project):
    project.block(
        "custom",
        "slowish",
        "import time\nfrom treadle import custom\n\n@custom\ndef slowish():\n    time.sleep(0.3)\n",
    )
    project.pipeline("p", "blocks:\n  - {name: slowish, type: custom, timeout: 0.1s}\n")
    results = []
    thread = threading.Thread(target=lambda: results.append(run_pipeline(project.root, "p")))
    thread.start()
    thread.join()
    log = (project.root / ".treadle/logs" / results[0].run_id / "slowish.log").read_text()
    assert "timeout 0.1s not enforced" in log and "`executor: process`" in log


@pytest.mark.parametrize(
    ("variables", "message", "line"),
    [
        ("variables:\n  day: 2020-13-45\n", "cannot read '2020-13-45'", 2),
        ("variables:\n  cmd: !!python/name:os.system\n", "cannot read", 2),
    ],
)
def test_yaml_values_that_cannot_be_built(project, variables, message, line):
    project.pipeline("p", variables + "blocks: []\n")
    with pytest.raises(ProjectInvalid) as caught:
        load_project(project.root)
    (problem,) = caught.value.problems
    assert message in problem.message and problem.line == line


def test_pipeline_yaml_that_is_a_folder(project):
    (project.root / "pipelines/p/pipeline.yaml").mkdir(parents=True)
    with pytest.raises(ProjectInvalid) as caught:
        load_project(project.root)
    assert "cannot read it" in caught.value.problems[0].message


def test_shared_file_is_checked_for_each_type_it_is_used_as(project):
    project.block(
        "transformers",
        "t",
        "from treadle import transformer\n\n@transformer\ndef t(x):\n    return x\n",
    )
    project.pipeline("p", "blocks:\n  - {name: t, type: transformer}\n")
    project.pipeline("q", "blocks:\n  - {name: t, type: data_loader, file: transformers/t.py}\n")
    with pytest.raises(ProjectInvalid) as caught:
        load_project(project.root)
    (problem,) = caught.value.problems
    assert "no @data_loader function" in problem.message


def test_async_block_function_is_refused(project):
    project.block(
        "custom", "c", "from treadle import custom\n\n@custom\nasync def c():\n    return 1\n"
    )
    project.pipeline("p", "blocks:\n  - {name: c, type: custom}\n")
    with pytest.raises(ProjectInvalid) as caught:
        load_project(project.root)
    assert "is async" in caught.value.problems[0].message


def test_secrets_never_reach_the_logs(project, monkeypatch):
    monkeypatch.setenv("TREADLE_TEST_PG_PASSWORD", "hunter2-very-secret")
    project.write(".env", "API_TOKEN=tok-123456\nPLAIN=visible-value\n")
    project.write(
        "io_config.yaml",
        """
        version: 0.1.1
        dev:
          POSTGRES_PASSWORD: "{{ env_var('TREADLE_TEST_PG_PASSWORD') }}"
        """,
    )
    project.block(
        "custom",
        "leaky",
        "import logging\nfrom treadle import custom\n\n@custom\ndef leaky(*, logger):\n"
        "    print('connecting with hunter2-very-secret')\n"
        "    logger.info('token is tok-123456, plain is visible-value')\n"
        "    raise RuntimeError('auth failed for hunter2-very-secret')\n",
    )
    project.pipeline("p", "blocks:\n  - {name: leaky, type: custom}\n")
    result = run_pipeline(project.root, "p")
    log = (project.root / ".treadle/logs" / result.run_id / "leaky.log").read_text()
    assert "hunter2" not in log and "tok-123456" not in log
    assert "connecting with ***" in log and "token is ***" in log and "visible-value" in log
    error = result.blocks["leaky"].error
    assert error.message == "auth failed for ***" and "hunter2" not in error.traceback


def test_a_runaway_log_is_cut_not_left_to_fill_the_disk(project, monkeypatch):
    import treadle.engine.block_logs as block_logs

    monkeypatch.setattr(block_logs, "MAX_LOG_BYTES", 10_000)
    project.block(
        "custom",
        "chatty",
        "from treadle import custom\n\n@custom\ndef chatty():\n    for i in range(10_000):\n"
        "        print('x' * 100)\n    return 'finished'\n",
    )
    project.pipeline("p", "blocks:\n  - {name: chatty, type: custom}\n")
    result = run_pipeline(project.root, "p")
    assert result.ok and result.output("chatty") == "finished"
    log = (project.root / ".treadle/logs" / result.run_id / "chatty.log").read_text()
    assert len(log) < 11_000 and log.rstrip().endswith("log cut: over 10,000 bytes")


def test_a_full_disk_while_storing_an_output_fails_the_run_clearly(project):
    """The file-size limit makes the output write fail as a full disk would."""
    import json
    import subprocess
    import sys

    project.block(
        "data_loaders",
        "big",
        "import pyarrow as pa\nfrom treadle import data_loader\n\n@data_loader\ndef big():\n"
        "    return pa.table({'x': list(range(2_000_000))})\n",
    )
    project.block(
        "custom",
        "after",
        "from treadle import custom\n\n@custom\ndef after(t):\n    return t.num_rows\n",
    )
    project.pipeline(
        "p",
        "blocks:\n  - {name: big, type: data_loader}\n  - {name: after, type: custom, upstream: [big]}\n",
    )
    script = (
        "import resource, signal, json, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))\n"
        "from treadle.engine.api import run_pipeline\n"
        f"r = run_pipeline({str(project.root)!r}, 'p')\n"
        "print(json.dumps({'status': r.status.value, 'problem': r.problem, 'after': r.blocks['after'].status.value}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "failed"
    assert "could not be stored" in outcome["problem"] and "'big'" in outcome["problem"]
    assert outcome["after"] == "succeeded"  # it had the value in memory; the run still fails
    leftovers = [p.name for p in (project.root / ".treadle/outputs").rglob(".*.tmp")]
    assert leftovers == [], leftovers


def test_a_profile_missing_a_value_masks_the_others_and_runs(project, monkeypatch):
    monkeypatch.setenv("TREADLE_TEST_DEV_PASSWORD", "dev-pw-secret-1")
    monkeypatch.delenv("TREADLE_TEST_PROD_PASSWORD", raising=False)
    project.write(
        "io_config.yaml",
        """
        dev:
          POSTGRES_PASSWORD: "{{ env_var('TREADLE_TEST_DEV_PASSWORD') }}"
        prod:
          POSTGRES_PASSWORD: "{{ env_var('TREADLE_TEST_PROD_PASSWORD') }}"
        """,
    )
    project.block(
        "custom",
        "talk",
        "from treadle import custom\n\n@custom\ndef talk():\n    print('pw dev-pw-secret-1')\n",
    )
    project.pipeline("p", "blocks:\n  - {name: talk, type: custom}\n")
    result = run_pipeline(project.root, "p")
    assert result.ok
    log = (project.root / ".treadle/logs" / result.run_id / "talk.log").read_text()
    assert "dev-pw-secret-1" not in log and "pw ***" in log
