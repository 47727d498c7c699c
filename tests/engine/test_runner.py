"""The engine's behaviour, the same for every executor (a contract suite)."""

from __future__ import annotations

import time

import pytest

from treadle.engine.api import run_pipeline
from treadle.engine.sink import MemorySink
from treadle.errors import ProjectInvalid
from treadle.events import (
    BlockRetrying,
    BlockStarted,
    BlockStatus,
    RunFinished,
    RunStarted,
    RunStatus,
)

EXECUTORS = ["inline", "process"]


@pytest.fixture(params=EXECUTORS)
def executor(request) -> str:
    return request.param


def block(project, folder, name, decorator, body, *, extra=""):
    project.block(
        folder,
        name,
        f"from treadle import {decorator}, test, condition, callback\n{extra}\n@{decorator}\n{body}",
    )


def statuses(result):
    return {name: r.status for name, r in result.blocks.items()}


def test_chain_passes_outputs_in_order(project, executor):
    block(project, "data_loaders", "a", "data_loader", "def a():\n    return [1, 2, 3]\n")
    block(project, "data_loaders", "b", "data_loader", "def b():\n    return 'b'\n")
    block(
        project,
        "transformers",
        "c",
        "transformer",
        "def c(first, second):\n    return (first, second)\n",
    )
    project.pipeline(
        "p",
        """
        blocks:
          - {name: a, type: data_loader}
          - {name: b, type: data_loader}
          - {name: c, type: transformer, upstream: [b, a]}
        """,
    )
    result = run_pipeline(project.root, "p", executor=executor)
    assert result.ok, statuses(result)
    assert result.output("c") == ("b", [1, 2, 3])  # a tuple is ONE output, kept as a tuple


def test_context_is_injected_by_name_and_kwargs_gets_everything(project, executor):
    block(
        project,
        "custom",
        "ctx",
        "custom",
        "def ctx(*, execution_date, run_id, block, variables, logger, **kwargs):\n"
        "    logger.info('hello from %s', block.name)\n"
        "    return {'date': execution_date.isoformat(), 'run': run_id, 'block': block.name,\n"
        "            'month': variables['month'], 'kw_month': kwargs['month'],\n"
        "            'kw_keys': sorted(k for k in kwargs if k != 'month')}\n",
    )
    project.pipeline("p", "variables: {month: '2020-10'}\nblocks:\n  - {name: ctx, type: custom}\n")
    result = run_pipeline(
        project.root, "p", executor=executor, execution_date="2021-01-02T03:04:05"
    )
    out = result.output("ctx")
    assert out["date"] == "2021-01-02T03:04:05+00:00"
    assert out["run"] == result.run_id and out["block"] == "ctx"
    assert out["month"] == out["kw_month"] == "2020-10"
    assert out["kw_keys"] == ["interval_end", "interval_start", "pipeline", "trigger"]
    log = (project.root / ".treadle" / "logs" / result.run_id / "ctx.log").read_text()
    assert "hello from ctx" in log and result.run_id in log


def test_variables_override_defaults_with_types(project, executor):
    block(
        project, "custom", "v", "custom", "def v(*, n, name, flag):\n    return [n, name, flag]\n"
    )
    project.pipeline(
        "p", "variables: {n: 1, name: x, flag: false}\nblocks:\n  - {name: v, type: custom}\n"
    )
    result = run_pipeline(
        project.root, "p", executor=executor, variables={"n": "5", "flag": "true"}
    )
    assert result.output("v") == [5, "x", True]


def test_failure_marks_downstream_and_independent_branch_finishes(project, executor):
    block(
        project,
        "data_loaders",
        "bad",
        "data_loader",
        "def bad():\n    raise ValueError('no data today')\n",
    )
    block(project, "transformers", "after_bad", "transformer", "def after_bad(x):\n    return x\n")
    block(
        project, "transformers", "after_after", "transformer", "def after_after(x):\n    return x\n"
    )
    block(project, "data_loaders", "good", "data_loader", "def good():\n    return 1\n")
    block(
        project,
        "transformers",
        "after_good",
        "transformer",
        "def after_good(x):\n    return x + 1\n",
    )
    project.pipeline(
        "p",
        """
        blocks:
          - {name: bad, type: data_loader}
          - {name: after_bad, type: transformer, upstream: [bad]}
          - {name: after_after, type: transformer, upstream: [after_bad]}
          - {name: good, type: data_loader}
          - {name: after_good, type: transformer, upstream: [good]}
        """,
    )
    result = run_pipeline(project.root, "p", executor=executor)
    assert result.status is RunStatus.FAILED
    assert statuses(result) == {
        "bad": BlockStatus.FAILED,
        "after_bad": BlockStatus.UPSTREAM_FAILED,
        "after_after": BlockStatus.UPSTREAM_FAILED,
        "good": BlockStatus.SUCCEEDED,
        "after_good": BlockStatus.SUCCEEDED,
    }
    error = result.blocks["bad"].error
    assert error.type == "ValueError" and error.message == "no data today"
    assert "data_loaders/bad.py" in error.traceback and "treadle/engine" not in error.traceback
    assert result.blocks["after_bad"].reason == "upstream 'bad' failed"
    assert result.output("after_good") == 2


def test_retries_with_backoff(project, executor):
    counter = project.root / "attempts.txt"
    block(
        project,
        "custom",
        "flaky",
        "custom",
        "def flaky():\n"
        f"    path = pathlib.Path({str(counter)!r})\n"
        "    n = int(path.read_text()) + 1 if path.exists() else 1\n"
        "    path.write_text(str(n))\n"
        "    if n < 3:\n"
        "        raise RuntimeError(f'attempt {n} failed')\n"
        "    return n\n",
        extra="import pathlib",
    )
    project.pipeline(
        "p",
        "retries: {count: 2, delay: 0.2s, backoff: 2}\nblocks:\n  - {name: flaky, type: custom}\n",
    )
    sink = MemorySink()
    started = time.monotonic()
    result = run_pipeline(project.root, "p", executor=executor, sinks=[sink])
    elapsed = time.monotonic() - started
    assert result.ok and result.output("flaky") == 3
    assert result.blocks["flaky"].attempts == 3
    retries = sink.of(BlockRetrying)
    assert [(r.attempt, r.delay) for r in retries] == [(2, 0.2), (3, 0.4)]
    assert retries[0].error["message"] == "attempt 1 failed"
    assert elapsed >= 0.6


def test_retries_run_out(project, executor):
    block(
        project,
        "custom",
        "always_fails",
        "custom",
        "def always_fails():\n    raise RuntimeError('nope')\n",
    )
    project.pipeline(
        "p",
        "blocks:\n  - name: always_fails\n    type: custom\n    retries: {count: 1, delay: 0s}\n",
    )
    result = run_pipeline(project.root, "p", executor=executor)
    assert result.blocks["always_fails"].status is BlockStatus.FAILED
    assert result.blocks["always_fails"].attempts == 2


def test_failed_test_fails_the_block_with_its_message(project, executor):
    block(
        project,
        "data_loaders",
        "load",
        "data_loader",
        "def load():\n    return [0, 1]\n\n@test\ndef no_zero(output):\n    assert 0 not in output, 'found a zero'\n",
    )
    block(project, "transformers", "next_one", "transformer", "def next_one(x):\n    return x\n")
    project.pipeline(
        "p",
        "blocks:\n  - {name: load, type: data_loader}\n  - {name: next_one, type: transformer, upstream: [load]}\n",
    )
    result = run_pipeline(project.root, "p", executor=executor)
    assert result.blocks["load"].status is BlockStatus.FAILED
    assert result.blocks["load"].error.message == "@test no_zero failed: found a zero"
    assert result.blocks["next_one"].status is BlockStatus.UPSTREAM_FAILED


def test_condition_false_skips_block_and_downstream(project, executor):
    block(
        project,
        "custom",
        "gated",
        "custom",
        "def gated():\n    raise AssertionError('must not run')\n\n"
        "@condition\ndef only_on_mondays(*, execution_date):\n    return execution_date.weekday() == 0\n",
    )
    block(
        project,
        "custom",
        "after",
        "custom",
        "def after(x):\n    raise AssertionError('must not run')\n",
    )
    block(project, "custom", "free", "custom", "def free():\n    return 'ran'\n")
    project.pipeline(
        "p",
        """
        blocks:
          - {name: gated, type: custom}
          - {name: after, type: custom, upstream: [gated]}
          - {name: free, type: custom}
        """,
    )
    result = run_pipeline(
        project.root, "p", executor=executor, execution_date="2024-01-02"
    )  # a Tuesday
    assert result.ok
    assert statuses(result) == {
        "gated": BlockStatus.CONDITION_FAILED,
        "after": BlockStatus.CONDITION_FAILED,
        "free": BlockStatus.SUCCEEDED,
    }


def test_callbacks_run_on_success_and_failure(project, executor):
    marker = project.root / "callbacks.txt"
    extra = f"import pathlib\nLOG = pathlib.Path({str(marker)!r})\n"
    callbacks = (
        "\n@callback('success')\ndef on_ok(*, block, status):\n"
        "    LOG.open('a').write(f'{block.name}:{status}\\n')\n"
        "\n@callback('failure')\ndef on_fail(*, block, error):\n"
        "    LOG.open('a').write(f'{block.name}:failed:{error.message}\\n')\n"
        "\n@callback\ndef always(**kwargs):\n"
        "    LOG.open('a').write(f\"{kwargs['block'].name}:always\\n\")\n"
    )
    block(project, "custom", "ok", "custom", "def ok():\n    return 1\n" + callbacks, extra=extra)
    block(
        project,
        "custom",
        "ko",
        "custom",
        "def ko():\n    raise KeyError('k')\n" + callbacks,
        extra=extra,
    )
    project.pipeline("p", "blocks:\n  - {name: ok, type: custom}\n  - {name: ko, type: custom}\n")
    run_pipeline(project.root, "p", executor=executor)
    lines = sorted(marker.read_text().splitlines())
    assert lines == ["ko:always", "ko:failed:'k'", "ok:always", "ok:success"]


def test_failing_callback_does_not_change_status(project, executor):
    block(
        project,
        "custom",
        "ok",
        "custom",
        "def ok():\n    return 1\n\n@callback\ndef boom():\n    raise RuntimeError('callback broke')\n",
    )
    project.pipeline("p", "blocks:\n  - {name: ok, type: custom}\n")
    result = run_pipeline(project.root, "p", executor=executor)
    assert result.ok
    log = (project.root / ".treadle" / "logs" / result.run_id / "ok.log").read_text()
    assert "@callback boom failed" in log


def test_dynamic_fan_out_and_reduce(project, executor):
    block(
        project,
        "data_loaders",
        "ids",
        "data_loader",
        "def ids():\n    return [1, 2, 3]\n",
        extra="",
    )
    block(project, "transformers", "square", "transformer", "def square(x):\n    return x * x\n")
    block(
        project, "transformers", "plus_one", "transformer", "def plus_one(x):\n    return x + 1\n"
    )
    block(
        project,
        "data_exporters",
        "total",
        "data_exporter",
        "def total(values):\n    return sum(values)\n",
    )
    project.pipeline(
        "p",
        """
        blocks:
          - {name: ids, type: data_loader, dynamic: true}
          - {name: square, type: transformer, upstream: [ids]}
          - {name: plus_one, type: transformer, upstream: [square], reduce: true}
          - {name: total, type: data_exporter, upstream: [plus_one]}
        """,
    )
    sink = MemorySink()
    result = run_pipeline(project.root, "p", executor=executor, sinks=[sink])
    assert result.ok, statuses(result)
    assert result.output("square") == [1, 4, 9]
    assert result.output("plus_one") == [2, 5, 10]
    assert result.output("total") == 17
    assert result.blocks["square"].items == 3
    item_events = [e.index for e in sink.of(BlockStarted) if e.block == "square"]
    assert sorted(item_events) == [0, 1, 2]


def test_two_dynamic_parents_are_matched_by_index(project, executor):
    block(
        project, "data_loaders", "letters", "data_loader", "def letters():\n    return ['a', 'b']\n"
    )
    block(project, "data_loaders", "numbers", "data_loader", "def numbers():\n    return [1, 2]\n")
    block(
        project,
        "transformers",
        "pair",
        "transformer",
        "def pair(letter, number):\n    return f'{letter}{number}'\n",
    )
    project.pipeline(
        "p",
        """
        blocks:
          - {name: letters, type: data_loader, dynamic: true}
          - {name: numbers, type: data_loader, dynamic: true}
          - {name: pair, type: transformer, upstream: [letters, numbers]}
        """,
    )
    result = run_pipeline(project.root, "p", executor=executor)
    assert result.output("pair") == ["a1", "b2"]  # zipped by index, not a cartesian product


def test_dynamic_parents_of_unequal_length_fail_clearly(project, executor):
    block(
        project,
        "data_loaders",
        "letters",
        "data_loader",
        "def letters():\n    return ['a', 'b', 'c']\n",
    )
    block(project, "data_loaders", "numbers", "data_loader", "def numbers():\n    return [1, 2]\n")
    block(
        project, "transformers", "pair", "transformer", "def pair(letter, number):\n    return 1\n"
    )
    project.pipeline(
        "p",
        """
        blocks:
          - {name: letters, type: data_loader, dynamic: true}
          - {name: numbers, type: data_loader, dynamic: true}
          - {name: pair, type: transformer, upstream: [letters, numbers]}
        """,
    )
    result = run_pipeline(project.root, "p", executor=executor)
    assert result.blocks["pair"].status is BlockStatus.FAILED
    message = result.blocks["pair"].error.message
    assert (
        "3 from 'letters'" in message and "2 from 'numbers'" in message and "same number" in message
    )


def test_dynamic_block_must_return_a_list(project, executor):
    block(project, "data_loaders", "ids", "data_loader", "def ids():\n    return 5\n")
    block(project, "transformers", "each", "transformer", "def each(x):\n    return x\n")
    project.pipeline(
        "p",
        "blocks:\n  - {name: ids, type: data_loader, dynamic: true}\n  - {name: each, type: transformer, upstream: [ids]}\n",
    )
    result = run_pipeline(project.root, "p", executor=executor)
    assert "must return a list" in result.blocks["ids"].error.message


def test_runaway_block_is_stopped_by_its_timeout(project, executor):
    block(project, "custom", "spin", "custom", "def spin():\n    while True:\n        pass\n")
    block(project, "custom", "quick", "custom", "def quick():\n    return 'done'\n")
    project.pipeline(
        "p",
        "blocks:\n  - {name: spin, type: custom, timeout: 0.5s}\n  - {name: quick, type: custom}\n",
    )
    started = time.monotonic()
    result = run_pipeline(project.root, "p", executor=executor)
    assert time.monotonic() - started < 10
    assert result.blocks["spin"].status is BlockStatus.FAILED
    assert result.blocks["spin"].error.type == "BlockTimeout"
    assert "timeout of 0.5s" in result.blocks["spin"].error.message
    assert result.output("quick") == "done"


def test_events_tell_the_whole_story(project, executor):
    block(project, "data_loaders", "a", "data_loader", "def a():\n    return 1\n")
    block(project, "transformers", "b", "transformer", "def b(x):\n    return x\n")
    project.pipeline(
        "p",
        "blocks:\n  - {name: a, type: data_loader}\n  - {name: b, type: transformer, upstream: [a]}\n",
    )
    sink = MemorySink()
    result = run_pipeline(project.root, "p", executor=executor, sinks=[sink])
    kinds = [
        (type(e).__name__, getattr(e, "block", None))
        for e in sink.events
        if e.kind != "output_saved"
    ]
    assert kinds == [
        ("RunStarted", None),
        ("BlockStarted", "a"),
        ("BlockFinished", "a"),
        ("BlockStarted", "b"),
        ("BlockFinished", "b"),
        ("RunFinished", None),
    ]
    assert all(e.run_id == result.run_id for e in sink.events)
    finished = sink.of(RunFinished)[0]
    assert finished.status is RunStatus.SUCCEEDED
    # every event survives a round trip through plain data
    from treadle.events import Event

    assert [Event.from_dict(e.to_dict()) for e in sink.events] == sink.events
    assert isinstance(sink.events[0], RunStarted) and sink.events[0].blocks == ("a", "b")


def test_invalid_project_runs_nothing(project, executor):
    block(project, "data_loaders", "a", "data_loader", "def a():\n    return 1\n")
    project.pipeline("p", "blocks:\n  - {name: a, type: data_loader}\n")
    project.pipeline("broken", "blocks:\n  - {name: a, type: data_loader, upstream: [a]}\n")
    with pytest.raises(ProjectInvalid):
        run_pipeline(project.root, "p", executor=executor)
    assert project.outputs() == []


def test_run_one_block_reuses_latest_upstream_outputs(project, executor):
    counter = project.root / "loads.txt"
    block(
        project,
        "data_loaders",
        "load",
        "data_loader",
        f"def load():\n    p = pathlib.Path({str(counter)!r})\n    p.write_text(p.read_text() + 'x' if p.exists() else 'x')\n    return 20\n",
        extra="import pathlib",
    )
    block(project, "transformers", "half", "transformer", "def half(x):\n    return x / 2\n")
    block(project, "transformers", "plus", "transformer", "def plus(x):\n    return x + 1\n")
    project.pipeline(
        "p",
        """
        blocks:
          - {name: load, type: data_loader}
          - {name: half, type: transformer, upstream: [load]}
          - {name: plus, type: transformer, upstream: [half]}
        """,
    )
    from treadle.errors import UserInputError

    with pytest.raises(UserInputError, match="no stored output"):
        run_pipeline(project.root, "p", executor=executor, block="half")
    first = run_pipeline(project.root, "p", executor=executor)
    assert first.ok and counter.read_text() == "x"
    only = run_pipeline(project.root, "p", executor=executor, block="half")
    assert list(only.blocks) == ["half"] and only.output("half") == 10
    down = run_pipeline(project.root, "p", executor=executor, block="half", downstream=True)
    assert list(down.blocks) == ["half", "plus"] and down.output("plus") == 11
    assert counter.read_text() == "x"  # the loader never ran again


def test_sensor_polls_until_true(project, executor):
    flag = project.root / "flag"
    block(
        project,
        "sensors",
        "wait_for_flag",
        "sensor",
        f"def wait_for_flag():\n    p = pathlib.Path({str(flag)!r})\n"
        "    n = int(p.read_text()) + 1 if p.exists() else 1\n    p.write_text(str(n))\n    return n >= 3\n",
        extra="import pathlib",
    )
    project.pipeline(
        "p", "blocks:\n  - {name: wait_for_flag, type: sensor, interval: 0.1s, timeout: 10s}\n"
    )
    result = run_pipeline(project.root, "p", executor=executor)
    assert result.ok and flag.read_text() == "3"


def test_sensor_gives_up_at_its_timeout(project, executor):
    block(project, "sensors", "never", "sensor", "def never():\n    return False\n")
    project.pipeline(
        "p", "blocks:\n  - {name: never, type: sensor, interval: 0.1s, timeout: 0.5s}\n"
    )
    result = run_pipeline(project.root, "p", executor=executor)
    assert result.blocks["never"].status is BlockStatus.FAILED
    assert result.blocks["never"].error.type == "BlockTimeout"


def test_execution_date_defaults_to_now_in_utc(project, executor):
    block(
        project,
        "custom",
        "when",
        "custom",
        "def when(*, execution_date):\n    return execution_date\n",
    )
    project.pipeline("p", "blocks:\n  - {name: when, type: custom}\n")
    import datetime as dt

    before = dt.datetime.now(dt.UTC)
    value = run_pipeline(project.root, "p", executor=executor).output("when")
    assert value.tzinfo is not None and before <= value <= dt.datetime.now(dt.UTC)


def test_settings_know_every_executor():
    from treadle.engine.executors import EXECUTORS
    from treadle.project.settings import EXECUTOR_NAMES

    assert set(EXECUTOR_NAMES) == set(EXECUTORS)


def test_one_block_never_reuses_outputs_made_with_other_variables(project, executor):
    from treadle.errors import UserInputError

    block(project, "data_loaders", "load", "data_loader", "def load(*, month):\n    return month\n")
    block(project, "transformers", "echo", "transformer", "def echo(x):\n    return x\n")
    project.pipeline(
        "p",
        "variables: {month: '2020-10'}\nblocks:\n  - {name: load, type: data_loader}\n"
        "  - {name: echo, type: transformer, upstream: [load]}\n",
    )
    first = run_pipeline(project.root, "p", executor=executor)
    same = run_pipeline(project.root, "p", executor=executor, block="echo")
    assert same.output("echo") == "2020-10"
    with pytest.raises(UserInputError, match=f"other variables.*{first.run_id}.*month=2020-10"):
        run_pipeline(
            project.root, "p", executor=executor, block="echo", variables={"month": "2020-11"}
        )


def test_variables_given_by_mistake_are_caught(project, executor):
    from treadle.errors import UserInputError

    block(project, "custom", "v", "custom", "def v(**kwargs):\n    return kwargs.get('extra')\n")
    project.pipeline("p", "variables: {month: '2020-10'}\nblocks:\n  - {name: v, type: custom}\n")
    with pytest.raises(UserInputError, match="unknown variable 'monthh'") as caught:
        run_pipeline(project.root, "p", executor=executor, variables={"monthh": "x"})
    assert "did you mean 'month'" in caught.value.hint
    with pytest.raises(UserInputError, match="not a Python name"):
        run_pipeline(project.root, "p", executor=executor, variables={"bad name": "x"})
    extra = run_pipeline(project.root, "p", executor=executor, variables={"extra": "kept"})
    assert extra.output("v") == "kept"  # an undeclared variable is passed on, as in Mage
