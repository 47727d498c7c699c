"""Compile a pipeline (and a selection of its blocks) into a ``RunPlan``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from treadle.errors import UserInputError, unknown_name_error
from treadle.project.model import BlockSpec, Pipeline, dependency_order, fanned_blocks


@dataclass(frozen=True)
class RunPlan:
    """The blocks one run will run, in dependency order, and what they reuse.

    ``reused`` maps an upstream that is *not* run to the earlier run whose output is used
    instead (``treadle run --block``).
    """

    pipeline: Pipeline
    blocks: tuple[BlockSpec, ...]
    reused: Mapping[str, str]
    fanned: frozenset[str]
    downstream: Mapping[str, tuple[str, ...]]

    @property
    def block_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.blocks)


def plan_run(
    pipeline: Pipeline,
    *,
    only: str | None = None,
    with_downstream: bool = False,
    skip: set[str] | frozenset[str] = frozenset(),
    find_reusable: Callable[[str], str | None] | None = None,
) -> RunPlan:
    """Plan all of ``pipeline`` but the blocks in ``skip``, or only block ``only`` (and
    what depends on it).

    ``find_reusable(block)`` returns the run id of the stored output to use for a block
    that the selection needs but does not run.
    """
    if only is None:
        selected = [b for b in pipeline.blocks if b.name not in skip]
    else:
        if not pipeline.has_block(only):
            raise unknown_name_error(
                f"block of pipeline {pipeline.name!r}", only, pipeline.block_names
            )
        names = {only, *(pipeline.downstream_of(only) if with_downstream else ())}
        selected = [b for b in pipeline.blocks if b.name in names]
    ordered = dependency_order(selected)
    chosen = {b.name for b in ordered}
    reused = _reused_outputs(pipeline, ordered, chosen, find_reusable)
    downstream: dict[str, list[str]] = {name: [] for name in chosen}
    for block in ordered:
        for up in block.upstream:
            if up in chosen:
                downstream[up].append(block.name)
    return RunPlan(
        pipeline=pipeline,
        blocks=tuple(ordered),
        reused=reused,
        fanned=frozenset(fanned_blocks(pipeline.blocks)),
        downstream={k: tuple(v) for k, v in downstream.items()},
    )


def _reused_outputs(
    pipeline: Pipeline,
    ordered: list[BlockSpec],
    chosen: set[str],
    find_reusable: Callable[[str], str | None] | None,
) -> dict[str, str]:
    needed = [up for b in ordered for up in b.upstream if up not in chosen]
    reused: dict[str, str] = {}
    for up in dict.fromkeys(needed):
        run_id = find_reusable(up) if find_reusable else None
        if run_id is None:
            raise UserInputError(
                f"block {up!r} has no stored output to reuse",
                hint=f"run block {up!r} first (Run block in the editor, or `treadle run PROJECT"
                f" {pipeline.name} --block {up}`), or run the whole pipeline once",
            )
        reused[up] = run_id
    return reused
