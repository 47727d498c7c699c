"""When a trigger's slots fall: small pure classes, no I/O and no clock (DESIGN.md, 9).

Every schedule answers two questions about aware datetimes and answers in UTC:
``next_after(t)``, the first slot strictly after ``t``, and ``latest_at_or_before(t)``, the
last slot at or before ``t`` (fast however long ago the previous answer was). Slots never
fall before ``start`` nor after ``end`` (inclusive).

Cron expressions are evaluated in the wall-clock time of their time zone, with Vixie
cron's rules for daylight saving time (see ``docs/scheduling.md``):

* A *fixed-time* job (neither the minute nor the hour field starts with ``*``) runs once
  per matching wall-clock time. When that time is skipped (clocks spring forward) it runs
  right after the gap; when it happens twice (clocks fall back) it runs the first time.
* A *wildcard* job (``*/15 * * * *``, ``0 * * * *``) follows real time: it runs at each
  instant whose wall-clock time matches, so the repeated hour runs twice and the skipped
  hour not at all, without gaps or doubles in real time.

croniter alone, given aware datetimes, runs fixed-time jobs twice when clocks fall back;
so croniter is only asked about naive wall-clock times, and this module maps those to
instants.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from croniter import croniter

from treadle.project.triggers import TriggerSpec, TriggerType, check_cron, load_zone

_TICK = timedelta(microseconds=1)
# Wider than any daylight-saving shift: how far around a transition slots may reorder.
_MARGIN = timedelta(hours=3)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # where `every:` slots count from without a start


class Schedule(Protocol):
    def next_after(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after``, in UTC; None when there is none.
        ``ValueError`` for a naive datetime."""
        ...

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last slot at or before ``moment``, in UTC; None when there is none.
        ``ValueError`` for a naive datetime."""
        ...


class CronSchedule:
    """A 5-field cron evaluated in ``timezone``'s wall-clock time (DST as above)."""

    def __init__(
        self,
        expression: str,
        timezone: str = "UTC",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        check_cron(expression)
        self.expression = expression
        self.zone: ZoneInfo = load_zone(timezone)
        self.start = _optional_utc(start, "start")
        self.end = _optional_utc(end, "end")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be later than start ({self.start})")
        minute, hour = expression.split()[:2]
        self.real_time = minute.startswith("*") or hour.startswith("*")

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, {self.zone.key!r})"

    def next_after(self, after: datetime) -> datetime | None:
        after = _utc(after, "after")
        if self.start is not None and after < self.start:
            after = self.start - _TICK
        slot = self._first_after(after)
        return slot if self.end is None or slot <= self.end else None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        moment = _utc(moment, "moment")
        if self.end is not None and moment > self.end:
            moment = self.end
        if self.start is not None and moment < self.start:
            return None
        slot = self._last_at_or_before(moment)
        return slot if self.start is None or slot >= self.start else None

    def _first_after(self, after: datetime) -> datetime:
        margin = self._margin(after)
        best: datetime | None = None
        for wall in self._walls(self._wall(after) - margin, forward=True):
            instants = self._instants(wall)
            later = [i for i in instants if i > after]
            if not later:
                continue
            if len(instants) == 2 and later[0] == instants[1]:
                # only the repeat of a repeated time: a later wall time's first pass may
                # still come earlier, so look on through the repeated hour
                best = min(best or later[0], later[0])
                continue
            return min(best or later[0], later[0])
        raise AssertionError("unreachable: croniter iterates forever")  # pragma: no cover

    def _last_at_or_before(self, moment: datetime) -> datetime:
        margin = self._margin(moment) + timedelta(seconds=1)  # get_prev is strictly before
        best: datetime | None = None
        for wall in self._walls(self._wall(moment) + margin, forward=False):
            instants = self._instants(wall)
            earlier = [i for i in instants if i <= moment]
            if not earlier:
                continue
            if len(instants) == 2 and earlier[-1] == instants[0]:
                best = max(best or earlier[-1], earlier[-1])  # mirror of _first_after
                continue
            return max(best or earlier[-1], earlier[-1])
        raise AssertionError("unreachable: croniter iterates forever")  # pragma: no cover

    def _margin(self, moment: datetime) -> timedelta:
        """How far to look around ``moment``: only near a change of UTC offset can a slot
        on the other side of its wall-clock time come before or after it."""
        before = (moment - _MARGIN).astimezone(self.zone).utcoffset()
        after = (moment + _MARGIN).astimezone(self.zone).utcoffset()
        return _MARGIN if before != after else timedelta(0)

    def _wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone).replace(tzinfo=None)

    def _walls(self, start: datetime, *, forward: bool) -> Iterator[datetime]:
        """Matching wall-clock times from ``start`` (croniter on naive datetimes does
        plain calendar arithmetic, whatever the machine's time zone)."""
        walls = croniter(self.expression, start)
        step = walls.get_next if forward else walls.get_prev
        while True:
            yield step(datetime)

    def _instants(self, wall: datetime) -> tuple[datetime, ...]:
        """The instants (UTC, in order) at which the wall-clock time ``wall`` fires."""
        first = wall.replace(tzinfo=self.zone, fold=0)
        second = wall.replace(tzinfo=self.zone, fold=1)
        if first.utcoffset() == second.utcoffset():
            return (first.astimezone(UTC),)
        if _exists(first):  # the wall-clock time happens twice
            repeated = (first.astimezone(UTC), second.astimezone(UTC))
            return repeated if self.real_time else repeated[:1]
        if self.real_time:  # skipped by the clock: a wildcard job just does not run
            return ()
        return (_gap_end(first, second),)


class IntervalSchedule:
    """Slots at ``anchor + k × every`` (k ≥ 0) in absolute time: DST does not shift them,
    so ``every: 1d`` keeps 24-hour steps and its wall-clock time moves with the clock."""

    def __init__(self, every: float, anchor: datetime, end: datetime | None = None) -> None:
        self.step = timedelta(seconds=every)
        if self.step <= timedelta(0):
            raise ValueError(f"every must be longer than 0, not {every!r}")
        self.anchor = _utc(anchor, "anchor")
        self.end = _optional_utc(end, "end")

    def __repr__(self) -> str:
        return f"IntervalSchedule({self.step}, {self.anchor.isoformat()})"

    def next_after(self, after: datetime) -> datetime | None:
        after = _utc(after, "after")
        steps = 0 if after < self.anchor else (after - self.anchor) // self.step + 1
        slot = self.anchor + steps * self.step
        return slot if self.end is None or slot <= self.end else None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        moment = _utc(moment, "moment")
        if self.end is not None and moment > self.end:
            moment = self.end
        if moment < self.anchor:
            return None
        return self.anchor + (moment - self.anchor) // self.step * self.step


class OnceSchedule:
    """A single slot at ``at``."""

    def __init__(self, at: datetime) -> None:
        self.at = _utc(at, "at")

    def __repr__(self) -> str:
        return f"OnceSchedule({self.at.isoformat()})"

    def next_after(self, after: datetime) -> datetime | None:
        return self.at if self.at > _utc(after, "after") else None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        return self.at if self.at <= _utc(moment, "moment") else None


def schedule_for(spec: TriggerSpec, first_seen: datetime) -> Schedule:
    """The schedule of a schedule trigger; ``first_seen`` stands in for a missing ``start``
    where one is needed (``every:`` and ``@once``). ``ValueError`` for API and event
    triggers, which have no schedule."""
    if spec.type is not TriggerType.SCHEDULE:
        raise ValueError(f"trigger {spec.name!r} is {spec.type.value}-triggered: no schedule")
    if spec.every is not None:
        # without a start, slots are aligned to the clock (every: 15m → :00, :15, :30, :45)
        return IntervalSchedule(spec.every, spec.start or EPOCH, spec.end)
    if spec.schedule is None:
        raise ValueError(f"trigger {spec.name!r} has neither schedule nor every")
    if spec.schedule == "@once":
        return OnceSchedule(spec.start or first_seen)
    expression = preset_cron(spec.schedule, spec.timezone, spec.start)
    return CronSchedule(expression, spec.timezone, spec.start, spec.end)


def preset_cron(schedule: str, timezone: str, start: datetime | None) -> str:
    """The cron of a preset, anchored at ``start``'s wall-clock time in ``timezone``
    (midnight, Sunday and the 1st without a start); any other ``schedule`` unchanged.

    ``@daily`` from 2024-01-01 05:00 is ``0 5 * * *``; ``@monthly`` from the 31st is
    ``… 31 * *`` and, as in cron, skips the shorter months."""
    if schedule not in ("@hourly", "@daily", "@weekly", "@monthly"):
        return schedule
    local = start.astimezone(load_zone(timezone)) if start is not None else None
    minute, hour = (local.minute, local.hour) if local else (0, 0)
    if schedule == "@hourly":
        return f"{minute} * * * *"
    if schedule == "@daily":
        return f"{minute} {hour} * * *"
    if schedule == "@weekly":
        weekday = (local.weekday() + 1) % 7 if local else 0  # cron: Sunday is 0
        return f"{minute} {hour} * * {weekday}"
    return f"{minute} {hour} {local.day if local else 1} * *"


# -- helpers -------------------------------------------------------------------------------


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, not the naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _optional_utc(moment: datetime | None, what: str) -> datetime | None:
    return None if moment is None else _utc(moment, what)


def _exists(local: datetime) -> bool:
    """Whether the aware wall-clock time ``local`` is one the clock actually shows."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def _gap_end(first: datetime, second: datetime) -> datetime:
    """The instant the clock jumps over a skipped wall-clock time (given as its two
    readings): found by bisection, to the second, between the two readings' instants."""
    low, high = sorted((first.astimezone(UTC), second.astimezone(UTC)))
    zone = first.tzinfo
    after_jump = high.astimezone(zone).utcoffset()
    lo, hi = 0, int((high - low).total_seconds())
    while lo < hi:
        middle = (lo + hi) // 2
        if (low + timedelta(seconds=middle)).astimezone(zone).utcoffset() == after_jump:
            hi = middle
        else:
            lo = middle + 1
    return low + timedelta(seconds=lo)
