"""Run one attempt of one block: the single error boundary around user code.

Shared by every executor. Whatever the block's file, condition, function, tests or
callbacks raise becomes an ``ErrorInfo`` (traceback cut to the user's own frames) in a
failed ``TaskOutcome``; only ``KeyboardInterrupt`` (cancellation) passes through.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import treadle
from treadle.blocks.decorators import BlockFunction
from treadle.blocks.module import LoadedBlock, load_block_file
from treadle.engine.block_logs import BlockLog, capture_output
from treadle.engine.outputs import OutputMeta
from treadle.engine.resources import Meter
from treadle.engine.stopping import stop_flag
from treadle.engine.tasks import BlockTask, TaskOutcome
from treadle.errors import BlockTimeout, ErrorInfo
from treadle.events import BlockStatus
from treadle.project.active import activated
from treadle.project.masking import mask
from treadle.project.model import HELPER_DECORATORS, BlockType

Saver = Callable[[str, Any], Any]  # returns OutputMeta, or a Future of one

_TREADLE_DIR = str(Path(treadle.__file__).parent)
DEFAULT_SENSOR_TIMEOUT = 3600.0


class TestFailed(AssertionError):
    """A block's ``@test`` function failed (the block fails with this message)."""

    __test__ = False


def execute_block(
    task: BlockTask,
    inputs: Sequence[Any],
    save: Saver,
    *,
    keep_value: bool,
    enforce_timeout: bool = False,
) -> TaskOutcome:
    """Run ``task`` with its resolved ``inputs``; never raises except on cancellation."""
    started = time.perf_counter()
    meter = Meter()
    run = task.run
    log = BlockLog(run.logs_root, run.run_id, task.key, task.attempt, run.masked)
    context = {
        "execution_date": run.execution_date,
        "interval_start": run.interval_start,
        "interval_end": run.interval_end,
        "variables": run.variables,
        "logger": log.logger(),
        "run_id": run.run_id,
        "block": task.info(),
        "pipeline": run.pipeline,
        "trigger": run.trigger,
    }
    outcome = TaskOutcome(task.task_id, BlockStatus.SUCCEEDED)
    loaded: LoadedBlock | None = None
    with activated(run.project_root, run.variables) as active, capture_output(log):
        try:
            with _alarm(task.block.timeout if enforce_timeout else None, log):
                if task.block.is_sql:
                    from treadle.engine.sql_blocks import run_sql_block

                    value = run_sql_block(task, inputs, context)
                else:
                    loaded = load_block_file(
                        run.project_root, task.block.file, task.block.type.value
                    )
                    if not _conditions_hold(loaded, inputs, context, run.variables):
                        outcome.status = BlockStatus.CONDITION_FAILED
                if outcome.status is BlockStatus.SUCCEEDED:
                    if loaded is not None:
                        value = _call_main(task, loaded.main, inputs, context)
                        _check_dynamic_output(task, value)
                        _run_tests(loaded.tests, value, inputs, context, run.variables)
                    saved = save(task.key, value)
                    if isinstance(saved, OutputMeta):
                        outcome.meta = saved
                    else:  # a PendingOutput: the writer thread is storing it
                        outcome.pending = saved
                    if keep_value:
                        outcome.value, outcome.has_value = value, True
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the error boundary: user code may raise anything
            outcome.status = BlockStatus.FAILED
            outcome.error = error_info(exc, run.masked)
            log.write_line("ERROR", outcome.error.traceback.rstrip().replace("\n", "\n    "))
        if loaded is not None and _callbacks_due(task, outcome):
            _run_callbacks(loaded, outcome, inputs, context, run.variables, log)
        outcome.secrets_read = tuple(sorted(active.secrets_read))
    outcome.duration = time.perf_counter() - started
    usage = meter.usage()
    outcome.cpu_time, outcome.peak_memory = usage.cpu_time, usage.peak_memory
    log.close()
    return outcome


def _check_dynamic_output(task: BlockTask, value: Any) -> None:
    if task.block.dynamic and not isinstance(value, list):
        raise TypeError(
            f"dynamic block {task.block.name!r} must return a list "
            f"(one item per downstream run), not {type(value).__name__}"
        )


def _callbacks_due(task: BlockTask, outcome: TaskOutcome) -> bool:
    """Callbacks run on success, and on a failure no retry will follow; not on a skip."""
    if outcome.status is BlockStatus.SUCCEEDED:
        return True
    return outcome.status is BlockStatus.FAILED and task.final_attempt


def inputs_failed(task: BlockTask, exc: BaseException) -> TaskOutcome:
    """The outcome of a task whose upstream outputs could not be read back."""
    info = error_info(exc)
    message = f"could not load the block's inputs: {info}"
    return TaskOutcome(
        task.task_id, BlockStatus.FAILED, error=ErrorInfo(info.type, message, info.traceback)
    )


def error_info(exc: BaseException, masked: tuple[str, ...] = ()) -> ErrorInfo:
    """The exception as data, its traceback without Treadle's own frames, secrets masked."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(_TREADLE_DIR)
    ]
    text = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(exc))
    if frames:
        text = "Traceback (most recent call last):\n" + text
    return ErrorInfo(type(exc).__name__, mask(str(exc), masked), mask(text, masked))


def _call(
    fn: BlockFunction, inputs: Sequence[Any], context: dict[str, Any], variables: dict[str, Any]
) -> Any:
    strict = fn.role not in HELPER_DECORATORS  # a test or callback may ignore some inputs
    args, kwargs = fn.plan.arguments(inputs, context, variables, strict=strict)
    return fn.func(*args, **kwargs)


def _call_main(
    task: BlockTask, main: BlockFunction, inputs: Sequence[Any], context: dict[str, Any]
) -> Any:
    if task.block.type is not BlockType.SENSOR:
        return _call(main, inputs, context, task.run.variables)
    deadline = time.monotonic() + (task.block.timeout or DEFAULT_SENSOR_TIMEOUT)
    while True:
        result = _call(main, inputs, context, task.run.variables)
        if result:
            return result
        if time.monotonic() + task.block.sensor_interval > deadline:
            raise BlockTimeout(f"sensor {task.block.name!r} was still waiting at its timeout")
        if stop_flag(task.run.run_id).wait(task.block.sensor_interval):
            raise KeyboardInterrupt  # the run was cancelled: stop waiting now


def _conditions_hold(
    loaded: LoadedBlock, inputs: Sequence[Any], context: dict[str, Any], variables: dict[str, Any]
) -> bool:
    return all(_call(cond, inputs, context, variables) for cond in loaded.conditions)


def _run_tests(
    tests: Sequence[BlockFunction],
    value: Any,
    inputs: Sequence[Any],
    context: dict[str, Any],
    variables: dict[str, Any],
) -> None:
    for test_fn in tests:
        try:
            _call(test_fn, [value, *inputs], context, variables)
        except AssertionError as exc:
            message = str(exc) or "assertion failed"
            raise TestFailed(f"@test {test_fn.func.__name__} failed: {message}") from exc


def _run_callbacks(
    loaded: LoadedBlock,
    outcome: TaskOutcome,
    inputs: Sequence[Any],
    context: dict[str, Any],
    variables: dict[str, Any],
    log: BlockLog,
) -> None:
    """Callbacks report; their own failure is logged and never changes the block's status."""
    status = "success" if outcome.status is BlockStatus.SUCCEEDED else "failure"
    for fn in loaded.callbacks:
        if fn.when not in ("always", status):
            continue
        try:
            _call(fn, inputs, context, {**variables, "status": status, "error": outcome.error})
        except Exception as exc:
            log.write_line("ERROR", f"@callback {fn.func.__name__} failed: {error_info(exc)}")


@contextmanager
def _alarm(seconds: float | None, log: BlockLog) -> Iterator[None]:
    """Raise ``BlockTimeout`` in this thread after ``seconds`` (main thread only)."""
    if not seconds:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or sys.platform == "win32":
        log.write_line(
            "WARNING",
            f"timeout {seconds:g}s not enforced here: the inline executor stops a block only"
            " on the main thread (as `treadle run` runs it); `executor: process` in"
            " treadle.yaml enforces it everywhere",
        )
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise BlockTimeout(f"ran past its timeout of {seconds:g}s and was stopped")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
