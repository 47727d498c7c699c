"""From triggers.yaml to the store, and from a trigger's schedule to the slots due now.

``sync_triggers`` makes the store hold exactly what the files say (added, changed and
deleted triggers alike); a pipeline whose triggers.yaml is invalid keeps the triggers it
had, and the problems are reported. ``due_slots`` is pure: given a schedule, the last slot
that fired and the time now, which slots fire.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from treadle.engine.api import merge_variables
from treadle.errors import ProjectInvalid, UserInputError
from treadle.project.model import Project
from treadle.project.triggers import TriggerSpec, load_triggers
from treadle.scheduler.schedules import Schedule
from treadle.store.scheduling import ScheduleStore

#: Most missed slots one trigger fires per tick in a catchup; the rest follow at once.
CATCHUP_BATCH = 500
_TICK = timedelta(microseconds=1)


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)  # "pipeline.trigger"
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[UserInputError] = field(default_factory=list)  # invalid triggers.yaml
    specs: dict[tuple[str, str], TriggerSpec] = field(default_factory=dict)  # valid files'
    invalid: set[str] = field(default_factory=set)  # pipelines whose triggers.yaml is invalid

    @property
    def changes(self) -> list[str]:
        return (
            [f"+{n}" for n in self.added]
            + [f"~{n}" for n in self.changed]
            + [f"-{n}" for n in self.removed]
        )


def read_all_triggers(project: Project, report: SyncReport) -> dict[str, tuple[TriggerSpec, ...]]:
    """Every valid pipeline's triggers; the invalid files' problems go in ``report`` and
    their pipelines are left out (their triggers stay as the store has them)."""
    found: dict[str, tuple[TriggerSpec, ...]] = {}
    for name in project.pipelines:
        try:
            specs = load_triggers(project.root, name, known_pipelines=project.pipelines)
            _check_variables(project, name, specs)
            found[name] = specs
        except ProjectInvalid as exc:
            report.problems.extend(exc.problems)
            report.invalid.add(name)
        except UserInputError as exc:
            report.problems.append(exc)
            report.invalid.add(name)
    return found


def _check_variables(project: Project, pipeline: str, specs: tuple[TriggerSpec, ...]) -> None:
    """A trigger's variables that look like typos of the pipeline's are refused here, as
    `--var` and the API refuse them, rather than when its first run starts."""
    problems = []
    for spec in specs:
        try:
            merge_variables(project.pipeline(pipeline), spec.variables)
        except UserInputError as exc:
            problems.append(
                UserInputError(
                    f"trigger {spec.name!r}: {exc.message}",
                    path=f"pipelines/{pipeline}/triggers.yaml",
                    line=spec.line or None,
                    hint=exc.hint,
                )
            )
    if problems:
        raise ProjectInvalid(problems)


def sync_triggers(project: Project, store: ScheduleStore, now: float) -> SyncReport:
    """Make the store's triggers exactly those of the project's triggers.yaml files."""
    report = SyncReport()
    for pipeline, specs in read_all_triggers(project, report).items():
        rows = [
            {
                "name": spec.name,
                "type": spec.type.value,
                "spec": spec.to_dict(),
                "fingerprint": spec.fingerprint(),
                "enabled": spec.enabled,
            }
            for spec in specs
        ]
        report.specs.update({(pipeline, spec.name): spec for spec in specs})
        added, changed, removed = store.sync_triggers(pipeline, rows, now)
        report.added += [f"{pipeline}.{n}" for n in added]
        report.changed += [f"{pipeline}.{n}" for n in changed]
        report.removed += [f"{pipeline}.{n}" for n in removed]
    report.removed += store.remove_triggers_except(project.pipelines)
    return report


def due_slots(
    schedule: Schedule,
    *,
    now: datetime,
    last_slot: datetime | None,
    first_seen: datetime,
    start: datetime | None,
    catchup: bool,
) -> list[datetime]:
    """The slots to fire now, oldest first.

    Slots that already fired (up to ``last_slot``) never fire again, whatever the clock
    does. A trigger seen for the first time starts at its ``start``, or without one when
    it is first seen (``first_seen``): no run for a slot from before it existed. ``catchup`` fires every missed slot in order (at most
    ``CATCHUP_BATCH`` per call); without it only the most recent missed slot fires, as
    in Airflow.
    """
    if last_slot is not None:
        after = last_slot
    elif start is not None:  # a start in the past: its missed slots count as missed
        after = start - _TICK
    else:
        after = first_seen - _TICK
    if not catchup:
        latest = schedule.latest_at_or_before(now)
        return [latest] if latest is not None and latest > after else []
    return list(_slots_between(schedule, after, now, CATCHUP_BATCH))


def _slots_between(
    schedule: Schedule, after: datetime, until: datetime, most: int
) -> Iterator[datetime]:
    slot = schedule.next_after(after)
    while slot is not None and slot <= until and most > 0:
        yield slot
        most -= 1
        slot = schedule.next_after(slot)


def to_datetime(unix_seconds: float) -> datetime:
    return datetime.fromtimestamp(unix_seconds, UTC)
