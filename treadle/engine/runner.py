"""Run a ``RunPlan``: start each block as soon as its upstreams are done, up to a limit.

The runner owns the run's state machine; an executor only runs what it is handed. Every
change of state is emitted as an event, and every block gets exactly one final
``BlockFinished`` (items of a fan-out get their own, with ``index`` set). Rules:

* a block starts when all its upstreams succeeded; if one failed (or was cancelled) it is
  ``upstream_failed``; if one was ``condition_failed`` it is ``condition_failed`` too;
* a failed attempt is retried after ``delay * backoff**(n-1)`` seconds while retries last;
* a block downstream of a ``dynamic`` block runs once per item of its list (several
  dynamic parents are matched by index, and must have the same length); an item whose
  upstream item was skipped by a condition is skipped too; ``reduce: true`` hands the
  downstream the list of the per-item outputs that succeeded.

A table output is written to the store on a writer thread while later blocks run; if
that write fails, the run fails with the reason (``OutputSaved.error``), though the block
itself, whose code succeeded, keeps its status.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from treadle.engine.block_call import error_info
from treadle.engine.executors.base import Executor
from treadle.engine.inputs import InputResolver
from treadle.engine.outputs import OutputMeta
from treadle.engine.plan import RunPlan
from treadle.engine.sink import EventSink
from treadle.engine.stopping import forget, stop_flag
from treadle.engine.tasks import BlockTask, InputRef, RunContext, TaskOutcome
from treadle.errors import ErrorInfo
from treadle.events import (
    BlockFinished,
    BlockQueued,
    BlockRetrying,
    BlockStarted,
    BlockStatus,
    OutputSaved,
    RunFinished,
    RunStarted,
    RunStatus,
)
from treadle.processes import process_start, this_host
from treadle.project.masking import masked_variables
from treadle.project.model import BlockSpec, BlockType

_STOPPING = (BlockStatus.FAILED, BlockStatus.UPSTREAM_FAILED, BlockStatus.CANCELLED)
_FINISHED = (*_STOPPING, BlockStatus.SUCCEEDED, BlockStatus.CONDITION_FAILED)
WAKE_UP_EVERY = 1.0  # seconds: the longest the loop sleeps before checking for a cancel


@dataclass
class BlockResult:
    """What happened to one block of a run."""

    name: str
    status: BlockStatus = BlockStatus.QUEUED
    attempts: int = 0
    duration: float = 0.0
    error: ErrorInfo | None = None
    reason: str = ""
    items: int | None = None  # how many items it ran for, for a block inside a fan-out
    metas: dict[int | None, OutputMeta] = field(default_factory=dict)  # by item index
    pending_rows: dict[int | None, int] = field(default_factory=dict)  # tables being written

    @property
    def rows(self) -> int | None:
        """Rows of the output (summed over the items of a fan-out), when it has rows."""
        counts = {**self.pending_rows, **{i: m.rows for i, m in self.metas.items()}}
        known = [n for n in counts.values() if n is not None]
        return sum(known) if known else None

    @property
    def bytes(self) -> int | None:
        return sum(m.bytes for m in self.metas.values()) if self.metas else None


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
        *,
        first_attempts: Mapping[str, int] | None = None,
    ) -> None:
        self.plan = plan
        self.run = run
        self.executor = executor
        self.resolver = resolver
        self.sink = sink
        self.results = {b.name: BlockResult(b.name) for b in plan.blocks}
        self.memory = resolver.memory  # (run_id, key) -> value, from executors sharing memory
        self.problem = ""  # why the run failed when no block did (an output not stored …)
        self._waiting = set(plan.block_names)  # not started yet
        self._pending_ups = {
            b.name: sum(1 for u in b.upstream if u in self._waiting) for b in plan.blocks
        }
        self._ready = deque(b for b in plan.blocks if self._pending_ups[b.name] == 0)
        self._tasks: dict[int, BlockTask] = {}
        self._fans: dict[str, _Fan] = {}
        self._retries: list[tuple[float, int, BlockTask]] = []
        self._waiting_for_room: deque[BlockTask] = deque()  # ready; the executor is full
        self._started: dict[int, float] = {}  # task id -> when the executor got it
        self._pending_saves: list[tuple[BlockTask, Any]] = []
        self._next_task_id = 0
        self._starting = False
        self._consumers = {b.name: len(plan.downstream.get(b.name, ())) for b in plan.blocks}
        self._cancel_reason: str | None = None
        self._lock = threading.Lock()
        # attempts made before, when this run id is resumed: numbering continues
        self._attempts_before = dict(first_attempts or {})
        self.thread = threading.current_thread()  # the thread that runs the loop

    def request_cancel(self, reason: str) -> None:
        """Ask the run to stop (from any thread); it stops within ``WAKE_UP_EVERY``.

        A block running on the loop's own thread (the inline executor) finishes first,
        unless the caller also interrupts that thread."""
        with self._lock:
            self._cancel_reason = reason
        stop_flag(self.run.run_id).set()  # a sensor waiting inline stops waiting

    @property
    def cancel_reason(self) -> str | None:
        return self._cancel_reason

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
                variables=masked_variables(run.variables, run.masked),
                blocks=self.plan.block_names,
                waiting=self._initial_why(),
                interval_start=run.interval_start.isoformat(),
                interval_end=run.interval_end.isoformat(),
                trigger=run.trigger,
                triggered_by=run.triggered_by,
                executor=self.executor.name,
                host=this_host(),
                pid=os.getpid(),
                pid_started=process_start(os.getpid()),
                pipeline_hash=run.pipeline_hash,
                file_hashes=dict(run.file_hashes),
                resumed=run.resumed,
                reused=dict(self.plan.reused),
            )
        )
        status = RunStatus.FAILED
        try:
            self._loop()
            self._emit_saved_outputs(block=True)
            status = self._final_status()
        except KeyboardInterrupt:
            requested = self._cancel_reason
            self._cancel_everything(requested or "the run was cancelled (interrupted)")
            status = RunStatus.CANCELLED
            if requested is None:  # Ctrl-C: the caller decides what to do next
                raise
        except BaseException as exc:  # a bug in Treadle: say so in the run, then raise
            self.problem = f"internal error: {type(exc).__name__}: {exc}"
            self._cancel_everything(self.problem)
            raise
        finally:
            self.executor.close()
            forget(run.run_id)
            duration = time.perf_counter() - started
            self._emit(RunFinished(run.run_id, time.time(), status, duration, self.problem))
        return status

    def _loop(self) -> None:
        self._start_ready()
        while self._waiting or self._tasks:
            if self._cancel_reason is not None:
                self._cancel_everything(self._cancel_reason)
                return
            self._submit_due_retries()
            self._start_waiting()
            wait_for = WAKE_UP_EVERY
            if self._retries:
                wait_for = min(max(self._retries[0][0] - time.monotonic(), 0), wait_for)
            elif not self.executor.busy:
                names = ", ".join(sorted(self._waiting))
                raise RuntimeError(f"run {self.run.run_id} stalled: {names} can never start")
            for outcome in self.executor.wait(wait_for):
                self._on_outcome(outcome)
            self._start_waiting()
            self._emit_saved_outputs(block=False)

    def _initial_why(self) -> dict[str, str]:
        """Why each block cannot start yet: the upstreams it waits for."""
        why = {}
        for block in self.plan.blocks:
            ups = [u for u in block.upstream if u in self.results]
            if ups:
                why[block.name] = "waiting for upstream " + ", ".join(ups)
        return why

    def _final_status(self) -> RunStatus:
        statuses = {r.status for r in self.results.values()}
        if BlockStatus.CANCELLED in statuses:
            return RunStatus.CANCELLED
        if statuses & {BlockStatus.FAILED, BlockStatus.UPSTREAM_FAILED} or self.problem:
            return RunStatus.FAILED
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
            self._finish(block.name, BlockStatus.UPSTREAM_FAILED, reason=reason)
        elif unmet is not None:
            reason = f"upstream {unmet.name!r} condition_failed"
            self._finish(block.name, BlockStatus.CONDITION_FAILED, reason=reason)
        elif block.name in self.plan.fanned:
            self._start_fan(block)
        else:
            self._submit(self._new_task(block, self._inputs(block, None), None, 1))

    def _start_fan(self, block: BlockSpec) -> None:
        try:
            count = self._fan_length(block)
        except Exception as exc:  # a mismatch, or an upstream output that cannot be read
            message = str(exc) if isinstance(exc, ValueError) else f"{error_info(exc)}"
            error = ErrorInfo("DynamicInputs", message, "")
            self._finish(block.name, BlockStatus.FAILED, error=error, reason=message)
            return
        fan = self._fans[block.name] = _Fan(count)
        self.results[block.name].items = count
        for index in range(count):
            skipped_by = self._skipped_parent_item(block, index)
            if skipped_by is not None:
                fan.done[index] = BlockStatus.CONDITION_FAILED
                self._emit_item_finished(block.name, index, BlockStatus.CONDITION_FAILED)
            else:
                self._submit(self._new_task(block, self._inputs(block, index), index, 1))
        if len(fan.done) == fan.total:
            self._finish_fan(block.name, fan)

    def _inputs(self, block: BlockSpec, index: int | None) -> tuple[InputRef, ...]:
        refs = []
        for up in block.upstream:
            run_id = self.plan.reused.get(up, self.run.run_id)
            parent = self.plan.pipeline.block(up)
            if parent.dynamic and index is not None:
                refs.append(InputRef(run_id, (up,), item=index))
            elif up in self.plan.fanned and parent.reduce:
                keys = tuple(f"{up}.{i}" for i in self._succeeded_items(up))
                refs.append(InputRef(run_id, keys, collect=True))
            elif up in self.plan.fanned:
                refs.append(InputRef(run_id, (f"{up}.{index}",)))
            else:
                refs.append(InputRef(run_id, (up,)))
        return tuple(refs)

    def _fan_parents(self, block: BlockSpec) -> list[BlockSpec]:
        """The upstreams whose items ``block`` runs for (dynamic, or fanned and not reduced)."""
        parents = [self.plan.pipeline.block(u) for u in block.upstream]
        return [p for p in parents if p.dynamic or (p.name in self.plan.fanned and not p.reduce)]

    def _fan_length(self, block: BlockSpec) -> int:
        """How many items ``block`` runs for: matched by index over its fan parents."""
        lengths = {
            p.name: self._list_length(p.name) if p.dynamic else self._item_count(p.name)
            for p in self._fan_parents(block)
        }
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{n} from {u!r}" for u, n in lengths.items())
            raise ValueError(
                f"block {block.name!r} gets {detail}: dynamic parents are matched by index "
                "and must have the same number of items"
            )
        return next(iter(lengths.values()))

    def _skipped_parent_item(self, block: BlockSpec, index: int) -> str | None:
        """The fanned parent whose item ``index`` was skipped by its condition, if any."""
        for parent in self._fan_parents(block):
            fan = self._fans.get(parent.name)
            if fan is not None and fan.done.get(index) is BlockStatus.CONDITION_FAILED:
                return parent.name
        return None

    def _list_length(self, dynamic_block: str) -> int:
        run_id = self.plan.reused.get(dynamic_block, self.run.run_id)
        value = self.memory.get((run_id, dynamic_block))
        if value is not None:
            return len(value)
        meta = self.resolver.store(run_id).meta(dynamic_block)
        if meta is None or meta.rows is None:
            raise KeyError(f"run {run_id} has no stored list output of {dynamic_block!r}")
        return meta.rows

    def _item_count(self, fanned_block: str) -> int:
        fan = self._fans.get(fanned_block)
        if fan is not None:
            return fan.total
        return self.resolver.store(self.plan.reused[fanned_block]).item_count(fanned_block)

    def _succeeded_items(self, fanned_block: str) -> list[int]:
        fan = self._fans.get(fanned_block)
        if fan is not None:
            return sorted(i for i, s in fan.done.items() if s is BlockStatus.SUCCEEDED)
        return list(range(self._item_count(fanned_block)))

    def _new_task(
        self, block: BlockSpec, inputs: tuple[InputRef, ...], index: int | None, attempt: int
    ) -> BlockTask:
        """Attempt ``attempt`` of this run (or resume); numbered after earlier attempts."""
        self._next_task_id += 1
        final = attempt > self._retry_policy(block).count
        number = self._attempts_before.get(block.name, 0) + attempt
        return BlockTask(self._next_task_id, self.run, block, inputs, index, number, final)

    def _retry_policy(self, block: BlockSpec) -> Any:
        return block.retries or self.plan.pipeline.retries

    def _submit(self, task: BlockTask) -> None:
        """Start ``task`` now, or queue it (saying why) until the executor has room."""
        self._tasks[task.task_id] = task
        if self.executor.busy >= self.executor.slots:
            why = f"concurrency limit {self.executor.slots} reached"
            self._emit(BlockQueued(self.run.run_id, time.time(), task.block.name, why, task.index))
            self._waiting_for_room.append(task)
            return
        self._start_task(task)

    def _start_task(self, task: BlockTask) -> None:
        self._started[task.task_id] = time.monotonic()
        result = self.results[task.block.name]
        result.status = BlockStatus.RUNNING
        result.attempts = max(result.attempts, task.attempt)
        now = time.time()
        self._emit(BlockStarted(self.run.run_id, now, task.block.name, task.attempt, task.index))
        if task.block.type is BlockType.SENSOR:  # running, but waiting for the world
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
            why = f"sensor waiting since {since}"
            self._emit(BlockQueued(self.run.run_id, now, task.block.name, why, task.index))
        self.executor.submit(task)

    def _start_waiting(self) -> None:
        while self._waiting_for_room and self.executor.busy < self.executor.slots:
            self._start_task(self._waiting_for_room.popleft())

    def _submit_due_retries(self) -> None:
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            _, _, task = heapq.heappop(self._retries)
            self._submit(task)

    # -- outcomes --------------------------------------------------------------------------

    def _on_outcome(self, outcome: TaskOutcome) -> None:
        task = self._tasks.pop(outcome.task_id)
        self._started.pop(outcome.task_id, None)
        name = task.block.name
        if outcome.status is BlockStatus.FAILED and not task.final_attempt:
            self._retry(task, outcome)
            return
        if outcome.has_value:
            self.memory[(self.run.run_id, task.key)] = outcome.value
        result = self.results[name]
        result.duration += outcome.duration
        if outcome.meta is not None:
            self._record_meta(task, outcome.meta)
        elif outcome.pending is not None:
            result.pending_rows[task.index] = outcome.pending.rows
            self._pending_saves.append((task, outcome.pending.future))
        fan = self._fans.get(name)
        if fan is None:
            self._finish(name, outcome.status, outcome.error, attempt=task.attempt, outcome=outcome)
            return
        index = task.index if task.index is not None else 0
        fan.done[index] = outcome.status
        if outcome.error:
            fan.errors.append(outcome.error)
        self._emit_item_finished(name, index, outcome.status, task.attempt, outcome)
        if len(fan.done) == fan.total:
            self._finish_fan(name, fan)

    def _retry(self, task: BlockTask, outcome: TaskOutcome) -> None:
        policy = self._retry_policy(task.block)
        tried = task.attempt - self._attempts_before.get(task.block.name, 0)  # in this run
        delay = policy.delay_before(tried)
        self._emit(
            BlockRetrying(
                self.run.run_id,
                time.time(),
                task.block.name,
                attempt=task.attempt + 1,
                delay=delay,
                error=outcome.error.to_dict() if outcome.error else None,
                index=task.index,
                duration=outcome.duration,
                cpu_time=outcome.cpu_time,
                peak_memory=outcome.peak_memory,
                retries=policy.count + self._attempts_before.get(task.block.name, 0),
            )
        )
        retry = self._new_task(task.block, task.inputs, task.index, tried + 1)
        heapq.heappush(self._retries, (time.monotonic() + delay, retry.task_id, retry))
        self._tasks[retry.task_id] = retry  # in flight while it waits for its turn

    def _emit_item_finished(
        self,
        name: str,
        index: int,
        status: BlockStatus,
        attempt: int = 0,
        outcome: TaskOutcome | None = None,
    ) -> None:
        self._emit(
            BlockFinished(
                self.run.run_id,
                time.time(),
                name,
                status,
                attempt,
                outcome.duration if outcome else 0.0,
                error=outcome.error.to_dict() if outcome and outcome.error else None,
                index=index,
                cpu_time=outcome.cpu_time if outcome else None,
                peak_memory=outcome.peak_memory if outcome else None,
                secrets_read=outcome.secrets_read if outcome else (),
            )  # fmt: skip
        )

    def _finish_fan(self, name: str, fan: _Fan) -> None:
        statuses = list(fan.done.values())
        failed = statuses.count(BlockStatus.FAILED)
        if failed:
            reason = f"{failed} of {fan.total} items failed"
            self._finish(
                name, BlockStatus.FAILED, fan.errors[0] if fan.errors else None, reason=reason
            )
        elif statuses and all(s is BlockStatus.CONDITION_FAILED for s in statuses):
            self._finish(
                name, BlockStatus.CONDITION_FAILED, reason="the condition failed for every item"
            )
        else:
            reason = "" if fan.total else "no items to run for"
            self._finish(name, BlockStatus.SUCCEEDED, reason=reason)

    def _finish(
        self,
        name: str,
        status: BlockStatus,
        error: ErrorInfo | None = None,
        *,
        attempt: int = 0,
        outcome: TaskOutcome | None = None,
        reason: str = "",
    ) -> None:
        """The block's one final ``BlockFinished``; then what it unblocks starts."""
        result = self.results[name]
        result.status, result.error, result.reason = status, error, reason
        self._emit(
            BlockFinished(
                self.run.run_id,
                time.time(),
                name,
                status,
                attempt or result.attempts,
                outcome.duration if outcome else result.duration,
                rows=result.rows,
                bytes=result.bytes,
                error=error.to_dict() if error else None,
                reason=reason,
                cpu_time=outcome.cpu_time if outcome else None,
                peak_memory=outcome.peak_memory if outcome else None,
                secrets_read=outcome.secrets_read if outcome else (),
            )  # fmt: skip
        )
        self._release_inputs(name)
        for child in self.plan.downstream.get(name, ()):
            self._pending_ups[child] -= 1
            if self._pending_ups[child] == 0:
                self._ready.append(self.plan.pipeline.block(child))
        self._start_ready()

    def _release_inputs(self, name: str) -> None:
        """Drop in-memory outputs nobody downstream still needs (the store keeps them)."""
        for up in self.plan.pipeline.block(name).upstream:
            if up not in self._consumers:
                continue
            self._consumers[up] -= 1
            if self._consumers[up] == 0:
                prefix = up + "."
                for key in [k for k in self.memory if k[1] == up or k[1].startswith(prefix)]:
                    if key[0] == self.run.run_id:
                        del self.memory[key]

    # -- outputs ---------------------------------------------------------------------------

    def _record_meta(self, task: BlockTask, meta: OutputMeta) -> None:
        self.results[task.block.name].metas[task.index] = meta
        self._emit(
            OutputSaved(
                self.run.run_id, time.time(), task.block.name, meta.key, meta.rows, meta.bytes
            )
        )

    def _emit_saved_outputs(self, *, block: bool) -> None:
        """Report outputs the writer thread has stored (wait for all when ``block``)."""
        still = []
        for task, future in self._pending_saves:
            if not block and not future.done():
                still.append((task, future))
                continue
            try:
                self._record_meta(task, future.result())
            except Exception as exc:
                self._output_not_saved(task, exc)
        self._pending_saves = still

    def _output_not_saved(self, task: BlockTask, exc: Exception) -> None:
        info = error_info(exc)
        self.problem = f"the output of {task.key!r} could not be stored: {info}"
        self._emit(
            OutputSaved(
                self.run.run_id, time.time(), task.block.name, task.key, None, 0, info.to_dict()
            )
        )

    # -- cancelling ------------------------------------------------------------------------

    def _cancel_everything(self, reason: str) -> None:
        self.executor.cancel_all()
        now = time.monotonic()
        running_since: dict[str, float] = {}
        for task_id, task in self._tasks.items():
            if task_id in self._started:
                name = task.block.name
                running_since[name] = min(running_since.get(name, now), self._started[task_id])
        self._tasks.clear()
        self._retries.clear()
        self._waiting_for_room.clear()
        self._waiting = set()
        self._ready.clear()
        for name, result in self.results.items():
            if result.status not in _FINISHED:
                result.status, result.reason = BlockStatus.CANCELLED, reason
                result.duration += now - running_since.get(name, now)  # it ran until now
                self._emit(
                    BlockFinished(
                        self.run.run_id,
                        time.time(),
                        name,
                        BlockStatus.CANCELLED,
                        result.attempts,
                        result.duration,
                        reason=reason,
                    )  # fmt: skip
                )

    def _emit(self, event: Any) -> None:
        self.sink.emit(event)
