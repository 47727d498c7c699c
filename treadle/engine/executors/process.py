"""Run blocks in a pool of worker processes, several at once.

Each worker takes one task at a time over a pipe, reads its inputs from the output store
(Arrow files are memory-mapped, not copied), writes its output there and reports back.
A block past its ``timeout`` is stopped by killing its worker — whatever it is doing —
and a fresh worker takes its place; a worker that dies is noticed and its block failed
with the reason. Workers are forked, so they start in milliseconds with the parent's
imports already loaded.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from treadle.blocks.module import register_project
from treadle.engine.block_call import execute_block, inputs_failed
from treadle.engine.executors.base import Executor
from treadle.engine.inputs import InputResolver
from treadle.engine.outputs import OutputStore
from treadle.engine.tasks import BlockTask, TaskOutcome
from treadle.errors import ErrorInfo
from treadle.events import BlockStatus

_STOP = None


@dataclass
class _Worker:
    process: Any  # multiprocessing.Process
    conn: Connection
    task: BlockTask | None = None
    deadline: float | None = None
    started: float = 0.0


class ProcessExecutor(Executor):
    name = "process"

    def __init__(self, resolver: InputResolver, concurrency: int, store: OutputStore) -> None:
        super().__init__(resolver, concurrency, store)
        self._context = multiprocessing.get_context("fork")
        self._busy: dict[int, _Worker] = {}
        self._queue: deque[BlockTask] = deque()
        # Forked now, before the run starts any thread (a live progress view, say).
        self._idle = [self._start_worker() for _ in range(self.concurrency)]

    def submit(self, task: BlockTask) -> None:
        self._queue.append(task)
        self._dispatch()

    @property
    def busy(self) -> int:
        return len(self._queue) + len(self._busy)

    def wait(self, timeout: float | None) -> list[TaskOutcome]:
        if not self._busy:
            if timeout:
                time.sleep(timeout)
            return []
        now = time.monotonic()
        limits = [timeout] if timeout is not None else []
        limits += [w.deadline - now for w in self._busy.values() if w.deadline is not None]
        ready = wait([w.conn for w in self._busy.values()], max(min(limits), 0) if limits else None)
        outcomes = [
            self._receive(worker) for worker in list(self._busy.values()) if worker.conn in ready
        ]
        outcomes += self._stop_overdue(time.monotonic())
        self._dispatch()
        return outcomes

    def cancel_all(self) -> None:
        self._queue.clear()
        for task_id, worker in list(self._busy.items()):
            self._kill(worker)
            del self._busy[task_id]

    def close(self) -> None:
        self.cancel_all()
        for worker in self._idle:
            with contextlib.suppress(BrokenPipeError, OSError):
                worker.conn.send(_STOP)
        for worker in self._idle:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                self._kill(worker)
            worker.conn.close()
        self._idle.clear()

    # -- internals -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self._queue and len(self._busy) < self.concurrency:
            task = self._queue.popleft()
            worker = self._send(task)
            worker.task = task
            worker.started = time.monotonic()
            worker.deadline = worker.started + task.block.timeout if task.block.timeout else None
            self._busy[task.task_id] = worker

    def _send(self, task: BlockTask) -> _Worker:
        """Hand ``task`` to an idle worker; one that died while idle is replaced."""
        while self._idle:
            worker = self._idle.pop()
            try:
                worker.conn.send(task)
                return worker
            except OSError:  # killed while idle (OOM killer, kill -9): never mind it
                self._kill(worker)
        worker = self._start_worker()
        worker.conn.send(task)
        return worker

    def _start_worker(self) -> _Worker:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(child_end, self.resolver.outputs_root, self.store.table_format, os.getpid()),
            name="treadle-worker",
            daemon=True,
        )
        process.start()
        child_end.close()
        return _Worker(process, parent_end)

    def _receive(self, worker: _Worker) -> TaskOutcome:
        task = worker.task
        assert task is not None
        del self._busy[task.task_id]
        try:
            outcome: TaskOutcome = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=1)
            code = worker.process.exitcode
            worker.conn.close()
            return _lost(
                task, worker, f"the worker process died (exit code {code}) while running it"
            )
        worker.task = worker.deadline = None
        self._idle.append(worker)
        return outcome

    def _stop_overdue(self, now: float) -> list[TaskOutcome]:
        outcomes = []
        for task_id, worker in list(self._busy.items()):
            if worker.deadline is not None and now >= worker.deadline and worker.task is not None:
                self._kill(worker)
                del self._busy[task_id]
                timeout = worker.task.block.timeout
                outcomes.append(
                    _lost(
                        worker.task,
                        worker,
                        f"ran past its timeout of {timeout:g}s and was stopped",
                        "BlockTimeout",
                    )
                )
        return outcomes

    @staticmethod
    def _kill(worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()


def _die_with(parent: int) -> None:
    """Ask Linux to kill this worker when its parent dies (``kill -9`` of ``treadle run``),
    so a block never goes on running, unseen, beside the resume of its run."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: an idle worker still ends when its pipe closes
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)


def _lost(task: BlockTask, worker: _Worker, message: str, kind: str = "WorkerLost") -> TaskOutcome:
    return TaskOutcome(
        task.task_id,
        BlockStatus.FAILED,
        duration=time.monotonic() - worker.started,
        error=ErrorInfo(kind, message, ""),
    )


def _worker_main(conn: Connection, outputs_root: Any, table_format: str, parent: int) -> None:
    """A worker's life: take a task, run it, report, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides about Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with(parent)
    resolver = InputResolver(outputs_root)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            break
        if task is _STOP:
            break
        store = OutputStore(outputs_root, task.run.run_id, table_format)
        register_project(task.run.project_root)  # so pickled inputs can import block classes
        try:
            inputs = resolver.resolve(task.inputs)
        except Exception as exc:
            outcome = inputs_failed(task, exc)
        else:
            outcome = execute_block(task, inputs, store.save, keep_value=False)
        conn.send(outcome)
    conn.close()
    os._exit(0)
