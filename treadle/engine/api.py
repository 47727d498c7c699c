"""``run_pipeline``: the one entry point that runs a pipeline, for the CLI and for Python."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from treadle.engine.executors import EXECUTORS, Executor
from treadle.engine.heartbeat import Heartbeat
from treadle.engine.inputs import InputResolver
from treadle.engine.outputs import OutputStore, list_runs
from treadle.engine.plan import RunPlan, plan_run
from treadle.engine.runner import BlockResult, Runner
from treadle.engine.sink import CancelSource, EventSink, FanOutSink
from treadle.engine.tasks import RunContext
from treadle.errors import RunFailed, UserInputError, unknown_name_error
from treadle.events import BlockFinished, Event, RunFinished, RunStarted, RunStatus
from treadle.project.loader import load_project
from treadle.project.masking import MASK, secret_values
from treadle.project.model import Pipeline, Project


@dataclass
class RunResult:
    """A finished run: its status, each block's result, and access to the outputs."""

    run_id: str
    pipeline: str
    status: RunStatus
    blocks: dict[str, BlockResult]
    duration: float
    resolver: InputResolver
    problem: str = ""  # why the run failed when no block did
    warnings: list[str] = field(default_factory=list)  # e.g. the history could not record it

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    def output(self, block: str) -> Any:
        """The output of ``block`` (a list of item outputs for a block inside a fan-out)."""
        result = self.blocks.get(block)
        if result is None:
            raise unknown_name_error("block of this run", block, list(self.blocks))
        if result.items is not None:
            return [self._value(f"{block}.{i}") for i in range(result.items)]
        return self._value(block)

    def _value(self, key: str) -> Any:
        value = self.resolver.memory.get((self.run_id, key), _MISSING)
        if value is _MISSING:
            value = self.resolver.store(self.run_id).load(key)
        return value

    def raise_for_status(self) -> RunResult:
        if not self.ok:
            failed = [r for r in self.blocks.values() if r.error is not None]
            detail = f": block {failed[0].name!r}: {failed[0].error}" if failed else ""
            detail = detail or (f": {self.problem}" if self.problem else "")
            raise RunFailed(f"run {self.run_id} of {self.pipeline} {self.status.value}{detail}")
        return self


_MISSING = object()


@dataclass(frozen=True)
class PreparedRun:
    """A run planned and described, not started: ``execute`` runs it."""

    project: Project
    plan: RunPlan
    run: RunContext
    first_attempts: Mapping[str, int] = field(default_factory=dict)  # attempts made before


@dataclass(frozen=True)
class PastRun:
    """What the engine needs to know about an earlier run to resume or retry it."""

    run_id: str
    pipeline: str
    execution_date: datetime
    interval_start: datetime
    interval_end: datetime
    variables: Mapping[str, Any]
    trigger: str | None = None
    triggered_by: str | None = None


def run_pipeline(
    project: str | Path | Project,
    pipeline: str,
    *,
    variables: Mapping[str, Any] | None = None,
    execution_date: datetime | str | None = None,
    block: str | None = None,
    downstream: bool = False,
    executor: str | None = None,
    sinks: Iterable[EventSink] = (),
    trigger: str | None = None,
) -> RunResult:
    """Run ``pipeline`` of ``project`` and return its result (it does not raise on failure).

    The engine alone: nothing is recorded in the run history (``treadle.run_pipeline``
    records it). ``block`` runs one block (with ``downstream``, also what depends on it),
    reusing the latest stored outputs of its upstream blocks. Raises ``UserInputError``
    (and runs nothing) when the project, the pipeline or an argument is invalid.
    """
    prepared = prepare_run(
        project,
        pipeline,
        variables=variables,
        execution_date=execution_date,
        block=block,
        downstream=downstream,
        trigger=trigger,
    )
    return execute(prepared, executor=executor, sinks=sinks)


def prepare_run(
    project: str | Path | Project,
    pipeline: str,
    *,
    variables: Mapping[str, Any] | None = None,
    execution_date: datetime | str | None = None,
    block: str | None = None,
    downstream: bool = False,
    trigger: str | None = None,
    triggered_by: str | None = None,
    run_id: str | None = None,
    interval: tuple[datetime, datetime] | None = None,
) -> PreparedRun:
    """Validate and plan a new run (see ``run_pipeline``); nothing runs yet.

    ``run_id`` is given for a run queued earlier (by the scheduler); ``interval`` is the
    schedule slot's ``(interval_start, interval_end)`` (default: the execution date)."""
    project = project if isinstance(project, Project) else load_project(project)
    spec = project.pipeline(pipeline)
    outputs_root = project.state_dir / "outputs"
    variables = merge_variables(spec, variables or {})
    plan = plan_run(
        spec,
        only=block,
        with_downstream=downstream,
        find_reusable=lambda name: find_latest_output(outputs_root, spec.name, name, variables),
    )
    when = parse_execution_date(execution_date)
    start, end = interval or (when, when)
    run = _run_context(
        project, spec, run_id or new_run_id(), (when, start, end), variables, trigger,
        triggered_by, resumed=False,
    )  # fmt: skip
    return PreparedRun(project, plan, run)


def prepare_resume(
    project: Project,
    past: PastRun,
    *,
    succeeded: Iterable[str],
    attempts: Mapping[str, int],
    from_block: str | None = None,
) -> PreparedRun:
    """Plan the same run id again: the blocks that did not succeed (``treadle resume``),
    or ``from_block`` and everything downstream of it (``treadle retry --from``).

    Blocks not run again give their stored outputs of this run. A block counted as
    succeeded whose output is gone runs again. Raises ``UserInputError`` when there is
    nothing to do, or an upstream ``from_block`` needs has no stored output in the run.
    """
    spec = project.pipeline(past.pipeline)
    store = OutputStore(project.state_dir / "outputs", past.run_id)

    def stored(name: str) -> str | None:
        return past.run_id if store.meta(name) or store.item_count(name) else None

    if from_block is None:
        done = {name for name in succeeded if spec.has_block(name) and stored(name)}
        plan = plan_run(spec, skip=done, find_reusable=stored)
        if not plan.blocks:
            raise UserInputError(
                f"run {past.run_id} has nothing left to run: every block succeeded",
                hint=f"rerun blocks with `treadle retry {past.run_id} --from BLOCK`",
            )
    else:
        plan = plan_run(spec, only=from_block, with_downstream=True, find_reusable=stored)
    dates = (past.execution_date, past.interval_start, past.interval_end)
    run = _run_context(
        project, spec, past.run_id, dates, dict(past.variables), past.trigger,
        past.triggered_by, resumed=True,
    )  # fmt: skip
    return PreparedRun(project, plan, run, dict(attempts))


def _run_context(
    project: Project,
    spec: Pipeline,
    run_id: str,
    dates: tuple[datetime, datetime, datetime],
    variables: dict[str, Any],
    trigger: str | None,
    triggered_by: str | None,
    *,
    resumed: bool,
) -> RunContext:
    pipeline_hash, file_hashes = hash_files(project, spec)
    return RunContext(
        run_id=run_id,
        pipeline=spec.name,
        project_root=project.root,
        execution_date=dates[0],
        interval_start=dates[1],
        interval_end=dates[2],
        variables=variables,
        trigger=trigger,
        table_format=project.settings.output_format,
        triggered_by=triggered_by,
        resumed=resumed,
        pipeline_hash=pipeline_hash,
        file_hashes=file_hashes,
        masked=secret_values(project.root),
    )


def hash_files(project: Project, spec: Pipeline) -> tuple[str, dict[str, str]]:
    """sha256 of ``pipeline.yaml`` and of each block file, as they are now (the audit trail)."""
    import hashlib

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    files = {b.file: digest(project.root / b.file) for b in spec.blocks}
    return digest(spec.directory / "pipeline.yaml"), files


def execute(
    prepared: PreparedRun,
    *,
    executor: str | None = None,
    sinks: Iterable[EventSink] = (),
    cancel_source: CancelSource | None = None,
    heartbeat_every: float | None = None,
) -> RunResult:
    """Run a prepared run. With ``heartbeat_every``, a thread emits ``RunHeartbeat`` and
    polls ``cancel_source`` for cancel requests while it runs."""
    project, plan, run = prepared.project, prepared.plan, prepared.run
    store = OutputStore(run.outputs_root, run.run_id, run.table_format)
    resolver = InputResolver(run.outputs_root, {})
    concurrency = plan.pipeline.concurrency or project.settings.concurrency
    chosen = make_executor(executor or project.settings.executor, resolver, concurrency, store)
    sink = FanOutSink([ManifestWriter(store, plan.reused), *sinks])
    started = time.perf_counter()
    runner = Runner(plan, run, chosen, resolver, sink, first_attempts=prepared.first_attempts)
    if heartbeat_every:
        with Heartbeat(runner, sink, cancel_source, every=heartbeat_every):
            status = runner.execute()
    else:
        status = runner.execute()
    duration = time.perf_counter() - started
    return RunResult(
        run.run_id, run.pipeline, status, runner.results, duration, resolver, runner.problem
    )


def make_executor(
    name: str, resolver: InputResolver, concurrency: int, store: OutputStore
) -> Executor:
    try:
        load_executor = EXECUTORS[name]
    except KeyError:
        raise unknown_name_error("executor", name, list(EXECUTORS)) from None
    return load_executor()(resolver, concurrency, store)


def new_run_id() -> str:
    """Sortable by time, unique: ``20261124T061502123-1a2b3c``."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}{int(now * 1000) % 1000:03d}-{os.urandom(3).hex()}"


def parse_execution_date(value: datetime | str | None) -> datetime:
    """A time-zone-aware datetime; naive values and strings without a zone are UTC."""
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise UserInputError(
                f"execution date {value!r} is not an ISO date or datetime",
                hint="write e.g. 2020-10-01 or 2020-10-01T05:00:00+02:00",
            ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def merge_variables(pipeline: Pipeline, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Pipeline defaults, then overrides. Text given for a typed default is converted.

    A variable the pipeline does not declare is passed on (blocks read it from
    ``**kwargs``), unless its name is not a Python name or looks like a typo of a
    declared one."""
    import difflib

    merged = dict(pipeline.variables)
    for name, value in overrides.items():
        if name not in pipeline.variables:
            if not str(name).isidentifier():
                raise UserInputError(f"variable name {name!r} is not a Python name")
            close = difflib.get_close_matches(name, list(pipeline.variables), n=1, cutoff=0.8)
            if close:
                raise UserInputError(
                    f"unknown variable {name!r}", hint=f"did you mean {close[0]!r}?"
                )
        default = pipeline.variables.get(name)
        merged[name] = _coerce(name, value, default) if isinstance(value, str) else value
    return merged


def _coerce(name: str, text: str, default: Any) -> Any:
    if default is None or isinstance(default, str):
        return text
    try:
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise UserInputError(
            f"variable {name!r} must be a {type(default).__name__} like its default {default!r}, not {text!r}",
        ) from None
    return text


def find_latest_output(
    outputs_root: Path, pipeline: str, block: str, variables: Mapping[str, Any]
) -> str | None:
    """The newest run of ``pipeline`` that stored an output of ``block`` with these
    runtime ``variables`` (an output made with other variables is other data).

    A stored output counts even when its run never finished (a crash); one whose block
    is recorded as not succeeded does not. Raises ``UserInputError`` when outputs exist
    only from runs with other variables, naming the newest of them.
    """
    other: tuple[str, dict[str, Any]] | None = None
    for run_id in list_runs(outputs_root):
        store = OutputStore(outputs_root, run_id)
        manifest = store.read_manifest()
        if not manifest or manifest.get("pipeline") != pipeline:
            continue
        if manifest.get("blocks", {}).get(block) not in (None, "succeeded"):
            continue
        if store.meta(block) is None and store.item_count(block) == 0:
            continue
        recorded = manifest.get("variables", {})
        if _same_variables(recorded, variables):
            return run_id
        other = other or (run_id, recorded)
    if other is not None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(other[1].items())) or "no variables"
        raise UserInputError(
            f"the stored outputs of {block!r} come from runs with other variables "
            f"(newest: run {other[0]} with {shown})",
            hint="run the whole pipeline with these variables first, or give the same --var",
        )
    return None


def _same_variables(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Equal, but for values recorded masked (``***``: secrets are never written down)."""
    keys = set(recorded) | set(wanted)
    return all(
        recorded.get(k) == MASK or _comparable(recorded.get(k)) == _comparable(wanted.get(k))
        for k in keys
    )


def _comparable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))  # as the manifest keeps it


class ManifestWriter:
    """Keeps ``run.json`` beside a run's outputs: what ran, with which inputs, and how it ended."""

    def __init__(self, store: OutputStore, reused: Mapping[str, str]) -> None:
        self.store = store
        self.reused = dict(reused)
        self.manifest: dict[str, Any] = {}

    def emit(self, event: Event) -> None:
        if isinstance(event, RunStarted) and event.resumed:
            self.manifest = self.store.read_manifest() or {"blocks": {}}
            self.manifest.update(status=RunStatus.RUNNING.value, resumed_at=event.at)
            self.manifest.setdefault("reused", {}).update(self.reused)
            self.store.write_manifest(self.manifest)
        elif isinstance(event, RunStarted):
            self.manifest = {
                "run_id": event.run_id,
                "pipeline": event.pipeline,
                "execution_date": event.execution_date,
                "variables": event.variables,
                "started_at": event.at,
                "reused": self.reused,  # upstream block -> run whose output this run used
                "status": RunStatus.RUNNING.value,
                "blocks": {},
            }
            self.store.write_manifest(self.manifest)
        elif isinstance(event, BlockFinished) and event.index is None:
            self.manifest["blocks"][event.block] = event.status.value
        elif isinstance(event, RunFinished):
            self.manifest.update(
                status=event.status.value, finished_at=event.at, reason=event.reason
            )
            self.store.write_manifest(self.manifest)
