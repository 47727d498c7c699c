"""Run a ``RunPlan``: start each block as soon as its upstreams are done, up to a limit.

The runner owns the run's state machine; an executor only runs what it is handed. Every
change of state is emitted as an event. Rules:

* a block starts when all its upstreams succeeded; if one failed (or was cancelled) it is
  ``upstream_failed``; if one was ``condition_failed`` it is ``condition_failed`` too;
* a failed attempt is retried after ``delay * backoff**(n-1)`` seconds while retries last;
* a block downstream of a ``dynamic`` block runs once per item of its list (several
  dynamic parents are matched by index, and must have the same length); ``reduce: true``
  hands the downstream the list of the per-item outputs instead.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from treadle.engine.executors.base import Executor
from treadle.engine.inputs import InputResolver
from treadle.engine.outputs import OutputMeta
from treadle.engine.plan import RunPlan
from treadle.engine.sink import EventSink
from treadle.engine.tasks import BlockTask, InputRef, RunContext, TaskOutcome
from treadle.errors import ErrorInfo
from treadle.events import (
    BlockFinished,
    BlockRetrying,
    BlockStarted,
    BlockStatus,
    OutputSaved,
    RunFinished,
    RunStarted,
    RunStatus,
)
from treadle.project.model import BlockSpec

_STOPPING = (BlockStatus.FAILED, BlockStatus.UPSTREAM_FAILED, BlockStatus.CANCELLED)


@dataclass
class BlockResult:
    """What happened to one block of a run."""

    name: str
    status: BlockStatus = BlockStatus.QUEUED
    attempts: int = 0
    duration: float = 0.0
    error: ErrorInfo | None = None
    reason: str = ""
    items: int | None = None  # how many times it ran, for a block inside a fan-out
    meta: OutputMeta | None = None  # the stored output (the last item's, when fanned)
    item_metas: dict[int, OutputMeta] = field(default_factory=dict)

    @property
    def rows(self) -> int | None:
        return self.meta.rows if self.meta else None


@dataclass
class _Fan:
    """The items of one fanned block: how many, and how each one ended."""

    total: int
    done: dict[int, BlockStatus] = field(default_factory=dict)
    errors: list[ErrorInfo] = field(default_factory=list)


class Runner:
    def __init__(
        self,
        plan: RunPlan,
        run: RunContext,
        executor: Executor,
        resolver: InputResolver,
        sink: EventSink,
    ) -> None:
        self.plan = plan
        self.run = run
        self.executor = executor
        self.resolver = resolver
        self.sink = sink
        self.results = {b.name: BlockResult(b.name) for b in plan.blocks}
        self.memory = resolver.memory  # (run_id, key) -> value; filled when shares_memory
        self._waiting = set(plan.block_names)  # not started yet
        chosen = self._waiting
        self._pending_ups = {b.name: sum(1 for u in b.upstream if u in chosen) for b in plan.blocks}
        self._ready = deque(b for b in plan.blocks if self._pending_ups[b.name] == 0)
        self._tasks: dict[int, BlockTask] = {}
        self._fans: dict[str, _Fan] = {}
        self._retries: list[tuple[float, int, BlockTask]] = []
        self._pending_saves: list[tuple[str, str, Any]] = []
        self._next_task_id = 0
        self._starting = False
        self._consumers = {b.name: len(plan.downstream.get(b.name, ())) for b in plan.blocks}

    # -- the loop --------------------------------------------------------------------------

    def execute(self) -> RunStatus:
        started = time.perf_counter()
        run = self.run
        self._emit(
            RunStarted(
                run.run_id,
                time.time(),
                pipeline=run.pipeline,
                execution_date=run.execution_date.isoformat(),
                variables=dict(run.variables),
                blocks=self.plan.block_names,
            )
        )
        status = RunStatus.CANCELLED
        try:
            self._start_ready()
            while self._waiting or self._tasks:
                self._submit_due_retries()
                wait_for = max(self._retries[0][0] - time.monotonic(), 0) if self._retries else None
                if not self.executor.busy and wait_for is None:
                    raise RuntimeError(
                        f"run {run.run_id} stalled: {self._waiting_names()} can never start"
                    )
                for outcome in self.executor.wait(wait_for):
                    self._on_outcome(outcome)
                self._emit_saved_outputs(block=False)
            self._emit_saved_outputs(block=True)
            status = self._final_status()
        except KeyboardInterrupt:
            self._cancel_everything("the run was cancelled (interrupted)")
            raise
        finally:
            self.executor.close()
            self._emit(
                RunFinished(
                    run.run_id, time.time(), status=status, duration=time.perf_counter() - started
                )
            )
        return status

    def _final_status(self) -> RunStatus:
        statuses = {r.status for r in self.results.values()}
        if statuses & {BlockStatus.FAILED, BlockStatus.UPSTREAM_FAILED}:
            return RunStatus.FAILED
        if BlockStatus.CANCELLED in statuses:
            return RunStatus.CANCELLED
        return RunStatus.SUCCEEDED

    # -- starting blocks -------------------------------------------------------------------

    def _start_ready(self) -> None:
        """Start (or settle without running) every block whose upstreams are all done.

        Settling a block makes its downstream ready in turn; the queue, not recursion,
        carries that along, so a long chain of ``upstream_failed`` costs no stack.
        """
        if self._starting:
            return
        self._starting = True
        try:
            while self._ready:
                block = self._ready.popleft()
                self._waiting.discard(block.name)
                self._start_or_settle(block)
        finally:
            self._starting = False

    def _start_or_settle(self, block: BlockSpec) -> None:
        ups = [self.results[u] for u in block.upstream if u in self.results]
        stopped = next((u for u in ups if u.status in _STOPPING), None)
        unmet = next((u for u in ups if u.status is BlockStatus.CONDITION_FAILED), None)
        if stopped is not None:
            reason = f"upstream {stopped.name!r} {stopped.status.value}"
            self._settle(block.name, BlockStatus.UPSTREAM_FAILED, reason)
        elif unmet is not None:
            reason = f"upstream {unmet.name!r} condition_failed"
            self._settle(block.name, BlockStatus.CONDITION_FAILED, reason)
        else:
            self._start(block)

    def _mark_upstream_done(self, name: str) -> None:
        for child in self.plan.downstream.get(name, ()):
            self._pending_ups[child] -= 1
            if self._pending_ups[child] == 0:
                self._ready.append(self.plan.pipeline.block(child))

    def _start(self, block: BlockSpec) -> None:
        if block.name not in self.plan.fanned:
            self._submit(self._new_task(block, self._inputs(block, None), None, 1))
            return
        try:
            count = self._fan_length(block)
        except ValueError as exc:
            self._settle(
                block.name, BlockStatus.FAILED, str(exc), ErrorInfo("DynamicMismatch", str(exc), "")
            )
            return
        self._fans[block.name] = _Fan(count)
        self.results[block.name].items = count
        if count == 0:
            self._settle(block.name, BlockStatus.SUCCEEDED, "no items to run for")
            return
        for index in range(count):
            self._submit(self._new_task(block, self._inputs(block, index), index, 1))

    def _inputs(self, block: BlockSpec, index: int | None) -> tuple[InputRef, ...]:
        refs = []
        for up in block.upstream:
            run_id = self.plan.reused.get(up, self.run.run_id)
            parent = self.plan.pipeline.block(up)
            if parent.dynamic and index is not None:
                refs.append(InputRef(run_id, (up,), item=index))
            elif up in self.plan.fanned and parent.reduce:
                keys = tuple(f"{up}.{i}" for i in range(self._item_count(up)))
                refs.append(InputRef(run_id, keys, collect=True))
            elif up in self.plan.fanned:
                refs.append(InputRef(run_id, (f"{up}.{index}",)))
            else:
                refs.append(InputRef(run_id, (up,)))
        return tuple(refs)

    def _fan_length(self, block: BlockSpec) -> int:
        """How many items ``block`` runs for: matched by index over its fanned parents."""
        lengths: dict[str, int] = {}
        for up in block.upstream:
            parent = self.plan.pipeline.block(up)
            if parent.dynamic:
                lengths[up] = self._list_length(up)
            elif up in self.plan.fanned and not parent.reduce:
                lengths[up] = self._item_count(up)
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{n} from {u!r}" for u, n in lengths.items())
            raise ValueError(
                f"block {block.name!r} gets {detail}: dynamic parents are matched by index "
                "and must have the same number of items"
            )
        return next(iter(lengths.values()))

    def _list_length(self, dynamic_block: str) -> int:
        run_id = self.plan.reused.get(dynamic_block, self.run.run_id)
        value = self.memory.get((run_id, dynamic_block))
        if value is not None:
            return len(value)
        return len(self.resolver.store(run_id).load(dynamic_block))

    def _item_count(self, fanned_block: str) -> int:
        fan = self._fans.get(fanned_block)
        if fan is not None:
            return fan.total
        store = self.resolver.store(self.plan.reused[fanned_block])
        return len(list(store.run_dir.glob(f"{fanned_block}.*.meta.json")))

    def _new_task(
        self, block: BlockSpec, inputs: tuple[InputRef, ...], index: int | None, attempt: int
    ) -> BlockTask:
        self._next_task_id += 1
        return BlockTask(self._next_task_id, self.run, block, inputs, index, attempt)

    def _submit(self, task: BlockTask) -> None:
        self._tasks[task.task_id] = task
        result = self.results[task.block.name]
        result.status = BlockStatus.RUNNING
        result.attempts = max(result.attempts, task.attempt)
        self._emit(
            BlockStarted(self.run.run_id, time.time(), task.block.name, task.attempt, task.index)
        )
        self.executor.submit(task)

    def _submit_due_retries(self) -> None:
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            _, _, task = heapq.heappop(self._retries)
            self._submit(task)

    # -- outcomes --------------------------------------------------------------------------

    def _on_outcome(self, outcome: TaskOutcome) -> None:
        task = self._tasks.pop(outcome.task_id)
        name, run_id = task.block.name, self.run.run_id
        if outcome.status is BlockStatus.FAILED and self._retry(task, outcome):
            return
        if outcome.has_value:
            self.memory[(run_id, task.key)] = outcome.value
        result = self.results[name]
        result.duration += outcome.duration
        if outcome.meta is not None:
            self._record_meta(task, outcome.meta)
        elif outcome.pending_meta is not None:
            self._pending_saves.append((name, task.key, outcome.pending_meta))
        fan = self._fans.get(name)
        if fan is None:
            self._finish(
                name, outcome.status, outcome.error, attempt=task.attempt, duration=outcome.duration
            )
            return
        index = task.index if task.index is not None else 0
        fan.done[index] = outcome.status
        if outcome.error:
            fan.errors.append(outcome.error)
        self._emit(
            BlockFinished(
                run_id,
                time.time(),
                name,
                outcome.status,
                task.attempt,
                outcome.duration,
                error=outcome.error.to_dict() if outcome.error else None,
                index=task.index,
            )  # fmt: skip
        )
        if len(fan.done) == fan.total:
            self._finish_fan(name, fan)

    def _retry(self, task: BlockTask, outcome: TaskOutcome) -> bool:
        policy = task.block.retries or self.plan.pipeline.retries
        if task.attempt > policy.count:
            return False
        delay = policy.delay_before(task.attempt)
        self._emit(
            BlockRetrying(
                self.run.run_id,
                time.time(),
                task.block.name,
                task.attempt + 1,
                delay,
                str(outcome.error) if outcome.error else "",
                task.index,
            )  # fmt: skip
        )
        retry = replace(task, task_id=self._next_task_id + 1, attempt=task.attempt + 1)
        self._next_task_id += 1
        heapq.heappush(self._retries, (time.monotonic() + delay, retry.task_id, retry))
        self._tasks[retry.task_id] = retry  # counted as in flight while it waits
        return True

    def _finish_fan(self, name: str, fan: _Fan) -> None:
        statuses = set(fan.done.values())
        if BlockStatus.FAILED in statuses:
            failed = sum(1 for s in fan.done.values() if s is BlockStatus.FAILED)
            reason = f"{failed} of {fan.total} items failed"
            self._settle(name, BlockStatus.FAILED, reason, fan.errors[0] if fan.errors else None)
        elif statuses == {BlockStatus.CONDITION_FAILED}:
            self._settle(name, BlockStatus.CONDITION_FAILED, "the condition failed for every item")
        else:
            self._settle(name, BlockStatus.SUCCEEDED, "")

    def _settle(
        self, name: str, status: BlockStatus, reason: str, error: ErrorInfo | None = None
    ) -> None:
        """Finish a block without (another) attempt of it."""
        self._finish(name, status, error, reason=reason)

    def _finish(
        self,
        name: str,
        status: BlockStatus,
        error: ErrorInfo | None,
        *,
        attempt: int = 0,
        duration: float = 0.0,
        reason: str = "",
    ) -> None:
        result = self.results[name]
        result.status, result.error, result.reason = status, error, reason
        meta = result.meta
        self._emit(
            BlockFinished(
                self.run.run_id,
                time.time(),
                name,
                status,
                attempt or result.attempts,
                duration or result.duration,
                rows=meta.rows if meta else None,
                bytes=meta.bytes if meta else None,
                error=error.to_dict() if error else None,
                reason=reason,
            )  # fmt: skip
        )
        self._release_inputs(name)
        self._mark_upstream_done(name)
        self._start_ready()

    def _release_inputs(self, name: str) -> None:
        """Drop in-memory outputs nobody downstream still needs (the store keeps them)."""
        for up in self.plan.pipeline.block(name).upstream:
            if up in self._consumers:
                self._consumers[up] -= 1
                if self._consumers[up] == 0:
                    for key in [
                        k
                        for k in self.memory
                        if k[0] == self.run.run_id and (k[1] == up or k[1].startswith(up + "."))
                    ]:
                        del self.memory[key]

    def _record_meta(self, task: BlockTask, meta: OutputMeta) -> None:
        result = self.results[task.block.name]
        result.meta = meta
        if task.index is not None:
            result.item_metas[task.index] = meta
        self._emit(
            OutputSaved(
                self.run.run_id, time.time(), task.block.name, meta.key, meta.rows, meta.bytes
            )
        )

    def _emit_saved_outputs(self, *, block: bool) -> None:
        """Report outputs the background writer has finished (all of them when ``block``)."""
        still = []
        for name, key, future in self._pending_saves:
            if not block and not future.done():
                still.append((name, key, future))
                continue
            try:
                meta = future.result()
            except Exception as exc:  # the value could not be stored: the block fails
                self._output_not_saved(name, key, exc)
                continue
            index = int(key.rpartition(".")[2]) if "." in key else None
            self._record_meta(
                BlockTask(0, self.run, self.plan.pipeline.block(name), (), index), meta
            )
        self._pending_saves = still

    def _output_not_saved(self, name: str, key: str, exc: Exception) -> None:
        from treadle.engine.block_call import error_info

        info = error_info(exc)
        result = self.results[name]
        result.status = BlockStatus.FAILED
        result.error = ErrorInfo(
            info.type, f"the output {key!r} could not be stored: {info.message}", info.traceback
        )
        self._emit(
            BlockFinished(
                self.run.run_id,
                time.time(),
                name,
                BlockStatus.FAILED,
                result.attempts,
                result.duration,
                error=result.error.to_dict(),
                reason="output not stored",
            )  # fmt: skip
        )

    # -- cancelling ------------------------------------------------------------------------

    def _cancel_everything(self, reason: str) -> None:
        self.executor.cancel_all()
        names = {t.block.name for t in self._tasks.values()} | self._waiting
        self._tasks.clear()
        self._retries.clear()
        self._waiting = set()
        self._ready.clear()
        for name in self.plan.block_names:
            if name in names:
                result = self.results[name]
                result.status, result.reason = BlockStatus.CANCELLED, reason
                self._emit(
                    BlockFinished(
                        self.run.run_id, time.time(), name, BlockStatus.CANCELLED, reason=reason
                    )
                )

    def _waiting_names(self) -> str:
        return ", ".join(sorted(self._waiting))

    def _emit(self, event: Any) -> None:
        self.sink.emit(event)
