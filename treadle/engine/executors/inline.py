"""Run blocks one at a time in the calling process: the fastest path (notebooks, tests).

Outputs pass to downstream blocks as the objects themselves; they are written to the
output store on a background thread. A block's ``timeout`` is enforced with SIGALRM when
running on the main thread (it interrupts Python code, not a C call that never returns;
use the ``process`` executor for those).
"""

from __future__ import annotations

import time
from collections import deque

from treadle.engine.block_call import execute_block, inputs_failed
from treadle.engine.executors.base import Executor
from treadle.engine.inputs import InputResolver
from treadle.engine.outputs import BackgroundWriter, OutputStore
from treadle.engine.tasks import BlockTask, TaskOutcome


class InlineExecutor(Executor):
    name = "inline"

    def __init__(self, resolver: InputResolver, concurrency: int, store: OutputStore) -> None:
        super().__init__(resolver, concurrency, store)
        self._queue: deque[BlockTask] = deque()
        self._writer = BackgroundWriter(store)

    @property
    def slots(self) -> int:
        return 1  # one block at a time, on the calling thread

    def submit(self, task: BlockTask) -> None:
        self._queue.append(task)

    def wait(self, timeout: float | None) -> list[TaskOutcome]:
        if not self._queue:
            if timeout:
                time.sleep(timeout)
            return []
        task = self._queue.popleft()
        try:
            inputs = self.resolver.resolve(task.inputs)
        except Exception as exc:
            return [inputs_failed(task, exc)]
        return [
            execute_block(task, inputs, self._writer.save, keep_value=True, enforce_timeout=True)
        ]

    def cancel_all(self) -> None:
        self._queue.clear()

    @property
    def busy(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._writer.close()
