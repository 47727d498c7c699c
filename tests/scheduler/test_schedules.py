"""Schedules: exact slots in time zones, across both DST changes, within start and end."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from treadle.project.triggers import TriggerSpec, TriggerType
from treadle.scheduler.schedules import (
    CronSchedule,
    IntervalSchedule,
    OnceSchedule,
    Schedule,
    preset_cron,
    schedule_for,
)

AMS = "Europe/Amsterdam"  # 2024-03-31 02:00 → 03:00 (01:00Z); 2024-10-27 03:00 → 02:00 (01:00Z)
FIRST_SEEN = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(*args: int, zone: str = AMS, fold: int = 0) -> datetime:
    """A wall-clock time, as UTC: an aware datetime in a repeated hour never compares
    equal to one in another zone (PEP 495), so tests compare in UTC."""
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


def slots(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    found = []
    for _ in range(count):
        nxt = schedule.next_after(after)
        if nxt is None:
            break
        assert nxt > after
        found.append(nxt)
        after = nxt
    return found


def slots_backwards(schedule: Schedule, moment: datetime, count: int) -> list[datetime]:
    found = []
    for _ in range(count):
        latest = schedule.latest_at_or_before(moment)
        if latest is None:
            break
        assert latest <= moment
        found.append(latest)
        moment = latest - timedelta(microseconds=1)
    return found[::-1]


def spec(**values) -> TriggerSpec:
    return TriggerSpec(name="t", pipeline="p", type=TriggerType.SCHEDULE, **values)


# -- cron in a time zone -------------------------------------------------------------------


def test_cron_in_utc():
    daily = CronSchedule("0 5 * * *")
    assert daily.next_after(utc(2024, 1, 1, 5, 0)) == utc(2024, 1, 2, 5, 0)
    assert daily.next_after(utc(2024, 1, 1, 4, 59, 59)) == utc(2024, 1, 1, 5, 0)
    assert daily.latest_at_or_before(utc(2024, 1, 1, 5, 0)) == utc(2024, 1, 1, 5, 0)
    assert daily.latest_at_or_before(utc(2024, 1, 1, 4, 59)) == utc(2023, 12, 31, 5, 0)


def test_answers_are_utc_whatever_zone_the_question_is_in():
    daily = CronSchedule("0 5 * * *", AMS)
    answer = daily.next_after(local(2024, 1, 1, 12, 0, zone="Asia/Tokyo"))
    assert answer == utc(2024, 1, 1, 4, 0) and answer.tzinfo is UTC


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (AMS, (2024, 1, 15), utc(2024, 1, 15, 4, 0)),  # CET, +01:00
        (AMS, (2024, 7, 15), utc(2024, 7, 15, 3, 0)),  # CEST, +02:00
        ("America/New_York", (2024, 1, 15), utc(2024, 1, 15, 10, 0)),
        ("America/New_York", (2024, 7, 15), utc(2024, 7, 15, 9, 0)),
        ("Asia/Kolkata", (2024, 7, 15), utc(2024, 7, 14, 23, 30)),
    ],
)
def test_cron_runs_at_wall_clock_time_of_its_zone(zone, day, expected):
    daily = CronSchedule("0 5 * * *", zone)
    assert daily.next_after(expected - timedelta(hours=1)) == expected
    assert daily.latest_at_or_before(expected + timedelta(hours=1)) == expected


def test_fixed_time_in_the_skipped_hour_runs_once_right_after_it():
    job = CronSchedule("30 2 * * *", AMS)
    expected = [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)]
    assert slots(job, utc(2024, 3, 29, 12), 3) == expected
    assert expected[1] == local(2024, 3, 31, 3, 0)
    assert slots_backwards(job, utc(2024, 4, 1, 12), 3) == expected


def test_fixed_times_in_the_skipped_hour_make_one_slot():
    job = CronSchedule("15,45 2 * * *", AMS)
    assert slots(job, utc(2024, 3, 30, 12), 3) == [
        utc(2024, 3, 31, 1, 0),
        utc(2024, 4, 1, 0, 15),
        utc(2024, 4, 1, 0, 45),
    ]


def test_fixed_time_in_the_repeated_hour_runs_once_the_first_time():
    job = CronSchedule("30 2 * * *", AMS)
    expected = [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]
    assert slots(job, utc(2024, 10, 25, 12), 3) == expected
    assert expected[1] == local(2024, 10, 27, 2, 30, fold=0)  # 02:30 CEST, not CET
    assert slots_backwards(job, utc(2024, 10, 28, 12), 3) == expected
    # asked from inside the repeated hour, the next run is the next day
    assert job.next_after(local(2024, 10, 27, 2, 10, fold=1)) == expected[2]


def test_fixed_hour_range_across_both_changes():
    job = CronSchedule("0 1-3 * * *", AMS)
    assert slots(job, utc(2024, 3, 30, 23), 3) == [
        local(2024, 3, 31, 1, 0),
        local(2024, 3, 31, 3, 0),  # 02:00 skipped: runs at 03:00, once
        local(2024, 4, 1, 1, 0),
    ]
    assert slots(job, utc(2024, 10, 26, 22), 3) == [
        local(2024, 10, 27, 1, 0),
        local(2024, 10, 27, 2, 0, fold=0),  # the repeated 02:00 does not run again
        local(2024, 10, 27, 3, 0),
    ]


def test_wildcard_jobs_follow_real_time_when_clocks_spring_forward():
    quarter = CronSchedule("*/15 * * * *", AMS)
    found = slots(quarter, utc(2024, 3, 31, 0, 30), 4)
    assert found == [utc(2024, 3, 31, 0, 45), utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 1, 15),
                     utc(2024, 3, 31, 1, 30)]  # fmt: skip
    assert found[0] == local(2024, 3, 31, 1, 45) and found[1] == local(2024, 3, 31, 3, 0)
    hourly = CronSchedule("0 * * * *", AMS)
    assert slots(hourly, utc(2024, 3, 30, 23, 30), 3) == [
        utc(2024, 3, 31, 0, 0), utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 2, 0),
    ]  # fmt: skip


def test_wildcard_jobs_follow_real_time_when_clocks_fall_back():
    quarter = CronSchedule("*/15 * * * *", AMS)
    every_quarter = [utc(2024, 10, 26, 23, 45) + timedelta(minutes=15 * k) for k in range(1, 10)]
    assert slots(quarter, utc(2024, 10, 26, 23, 45), 9) == every_quarter  # 00:00Z … 02:00Z
    assert slots_backwards(quarter, utc(2024, 10, 27, 2, 0), 9) == every_quarter
    hourly = CronSchedule("0 * * * *", AMS)
    found = slots(hourly, utc(2024, 10, 26, 22, 30), 4)
    assert found == [utc(2024, 10, 26, 23), utc(2024, 10, 27, 0), utc(2024, 10, 27, 1),
                     utc(2024, 10, 27, 2)]  # fmt: skip
    assert [s.astimezone(ZoneInfo(AMS)).hour for s in found] == [1, 2, 2, 3]


def test_next_after_inside_the_repeated_hour():
    quarter = CronSchedule("*/15 * * * *", AMS)
    # 02:05 CEST: the next is 02:15 CEST, not the (earlier in wall time) 02:00 CET
    assert quarter.next_after(local(2024, 10, 27, 2, 5, fold=0)) == local(2024, 10, 27, 2, 15)
    assert quarter.next_after(local(2024, 10, 27, 2, 50, fold=0)) == local(
        2024, 10, 27, 2, 0, fold=1
    )
    assert quarter.latest_at_or_before(local(2024, 10, 27, 2, 10, fold=1)) == local(
        2024, 10, 27, 2, 0, fold=1
    )
    assert quarter.latest_at_or_before(local(2024, 10, 27, 2, 5, fold=1)) == local(
        2024, 10, 27, 2, 0, fold=1
    )


def brute_force(expression: str, zone: str, low: datetime, high: datetime) -> list[datetime]:
    """Vixie's rules written out minute by minute in real time: slow, but plainly right."""
    tz = ZoneInfo(zone)
    minute, hour = expression.split()[:2]
    real_time = minute.startswith("*") or hour.startswith("*")
    walls = croniter(expression, (low - timedelta(days=1)).replace(tzinfo=None))
    matching = set()
    while not matching or max(matching) < (high + timedelta(days=1)).replace(tzinfo=None):
        matching.add(walls.get_next(datetime))
    found: list[datetime] = []
    moment = low
    while moment <= high:
        wall = moment.astimezone(tz)
        earlier = (moment - timedelta(minutes=1)).astimezone(tz)
        if wall.replace(tzinfo=None) in matching:
            if real_time or wall.fold == 0:
                found.append(moment)
        elif not real_time and wall.utcoffset() > earlier.utcoffset():
            # just after a jump forward: the fixed-time jobs of the skipped wall times
            skipped = earlier.replace(tzinfo=None) + timedelta(minutes=1)
            while skipped < wall.replace(tzinfo=None) and skipped not in matching:
                skipped += timedelta(minutes=1)
            if skipped < wall.replace(tzinfo=None):
                found.append(moment)
        moment += timedelta(minutes=1)
    return found


@pytest.mark.parametrize(
    "expression",
    ["*/20 * * * *", "0 * * * *", "30 2 * * *", "0,40 1-3 * * *", "10 */2 * * *", "* 2 * * *"],
)
@pytest.mark.parametrize("day", [(2024, 3, 30, 22), (2024, 10, 26, 22)])
def test_agrees_with_the_rules_written_out_at_any_moment(expression, day):
    low, high = utc(*day), utc(*day) + timedelta(hours=6)
    expected = brute_force(expression, AMS, low - timedelta(days=1), high + timedelta(days=1))
    schedule = CronSchedule(expression, AMS)
    rng = random.Random(f"{expression} {day}")
    moments = [low + timedelta(seconds=rng.randrange(6 * 3600)) for _ in range(40)] + expected
    for moment in moments:
        if low <= moment <= high:
            assert schedule.next_after(moment) == min(s for s in expected if s > moment)
            assert schedule.latest_at_or_before(moment) == max(s for s in expected if s <= moment)


def test_next_after_a_slot_is_strictly_later():
    for expression in ("*/15 * * * *", "30 2 * * *", "0 1-3 * * *"):
        schedule = CronSchedule(expression, AMS)
        for start in (utc(2024, 3, 30, 20), utc(2024, 10, 26, 20)):
            found = slots(schedule, start, 60)
            assert found == sorted(set(found))
            for slot in found:
                assert schedule.next_after(slot) > slot
                assert schedule.latest_at_or_before(slot) == slot


def test_latest_a_year_later_is_fast_and_right():
    every_five = CronSchedule("*/5 * * * *", AMS)
    monthly = CronSchedule("0 6 15 * *", AMS)
    began = time.perf_counter()
    assert every_five.latest_at_or_before(utc(2025, 6, 1, 12, 3, 30)) == utc(2025, 6, 1, 12, 0)
    assert monthly.latest_at_or_before(utc(2025, 6, 1, 12, 3)) == local(2025, 5, 15, 6, 0)
    assert every_five.latest_at_or_before(utc(2025, 3, 30, 1, 2)) == utc(2025, 3, 30, 1, 0)
    assert (time.perf_counter() - began) < 0.05


# -- start and end -------------------------------------------------------------------------


def test_slots_fall_between_start_and_end_inclusive():
    start, end = local(2024, 1, 10, 5, 0), local(2024, 1, 12, 5, 0)
    daily = CronSchedule("0 5 * * *", AMS, start, end)
    assert slots(daily, utc(2023, 1, 1), 5) == [
        local(2024, 1, 10, 5), local(2024, 1, 11, 5), local(2024, 1, 12, 5),
    ]  # fmt: skip
    assert daily.latest_at_or_before(utc(2024, 1, 10, 3, 59)) is None
    assert daily.latest_at_or_before(utc(2030, 1, 1)) == end
    assert daily.next_after(end) is None


def test_start_between_slots():
    daily = CronSchedule("0 5 * * *", AMS, start=local(2024, 1, 10, 12, 0))
    assert daily.next_after(utc(2020, 1, 1)) == local(2024, 1, 11, 5, 0)
    assert daily.latest_at_or_before(local(2024, 1, 11, 4, 0)) is None


# -- presets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "start", "expected"),
    [
        ("@hourly", None, "0 * * * *"),
        ("@daily", None, "0 0 * * *"),
        ("@weekly", None, "0 0 * * 0"),
        ("@monthly", None, "0 0 1 * *"),
        ("@hourly", local(2024, 1, 3, 5, 20), "20 * * * *"),
        ("@daily", local(2024, 1, 3, 5, 20), "20 5 * * *"),
        ("@weekly", local(2024, 1, 3, 5, 20), "20 5 * * 3"),  # a Wednesday
        ("@weekly", local(2024, 1, 7, 0, 0), "0 0 * * 0"),  # a Sunday
        ("@monthly", local(2024, 1, 31, 5, 20), "20 5 31 * *"),
        ("@daily", utc(2024, 1, 3, 4, 20), "20 5 * * *"),  # read in the trigger's zone
        ("0 5 * * *", local(2024, 1, 3, 5, 20), "0 5 * * *"),
    ],
)
def test_presets_are_anchored_at_start(preset, start, expected):
    assert preset_cron(preset, AMS, start) == expected


def test_daily_fires_at_starts_time_in_the_zone():
    daily = schedule_for(
        spec(schedule="@daily", timezone=AMS, start=local(2024, 3, 29, 5, 0)), FIRST_SEEN
    )
    assert slots(daily, utc(2024, 1, 1), 3) == [
        utc(2024, 3, 29, 4, 0), utc(2024, 3, 30, 4, 0), utc(2024, 3, 31, 3, 0),  # CEST from the 31st
    ]  # fmt: skip


def test_daily_without_start_or_with_a_date_is_midnight():
    for start in (None, local(2024, 1, 3)):
        daily = schedule_for(spec(schedule="@daily", timezone=AMS, start=start), FIRST_SEEN)
        assert daily.next_after(utc(2024, 1, 5, 12)) == local(2024, 1, 6, 0, 0)


def test_weekly_and_monthly_presets():
    weekly = schedule_for(spec(schedule="@weekly", start=utc(2024, 1, 3, 9, 0)), FIRST_SEEN)
    assert slots(weekly, utc(2024, 1, 1), 2) == [utc(2024, 1, 3, 9), utc(2024, 1, 10, 9)]
    monthly = schedule_for(spec(schedule="@monthly", start=utc(2024, 1, 31, 8, 0)), FIRST_SEEN)
    assert slots(monthly, utc(2024, 1, 1), 3) == [
        utc(2024, 1, 31, 8), utc(2024, 3, 31, 8), utc(2024, 5, 31, 8),  # no Feb 31, Apr 31
    ]  # fmt: skip


def test_hourly_preset_follows_real_time():
    hourly = schedule_for(
        spec(schedule="@hourly", timezone=AMS, start=local(2024, 10, 1, 0, 10)), FIRST_SEEN
    )
    assert slots(hourly, utc(2024, 10, 26, 23, 30), 3) == [
        utc(2024, 10, 27, 0, 10), utc(2024, 10, 27, 1, 10), utc(2024, 10, 27, 2, 10),
    ]  # fmt: skip


def test_custom_cron_through_schedule_for_keeps_its_bounds():
    schedule = schedule_for(
        spec(schedule="0 12 * * *", start=utc(2024, 1, 1), end=utc(2024, 1, 2, 12)), FIRST_SEEN
    )
    assert slots(schedule, utc(2023, 1, 1), 5) == [utc(2024, 1, 1, 12), utc(2024, 1, 2, 12)]


# -- every and once ------------------------------------------------------------------------


def test_every_is_anchored_at_start_in_absolute_time():
    every = schedule_for(spec(every=6 * 3600.0, start=local(2024, 3, 30, 8, 0)), FIRST_SEEN)
    assert slots(every, utc(2024, 1, 1), 4) == [
        utc(2024, 3, 30, 7), utc(2024, 3, 30, 13), utc(2024, 3, 30, 19), utc(2024, 3, 31, 1),
    ]  # fmt: skip
    daily = IntervalSchedule(86400, local(2024, 3, 30, 8, 0))
    # DST does not shift it: 24 hours after 08:00 CET is 09:00 CEST
    assert daily.next_after(local(2024, 3, 30, 8, 0)) == local(2024, 3, 31, 9, 0)
    assert every.latest_at_or_before(utc(2025, 3, 30, 7, 0)) == utc(2025, 3, 30, 7, 0)
    assert every.latest_at_or_before(utc(2025, 3, 30, 6, 59)) == utc(2025, 3, 30, 1, 0)
    assert every.latest_at_or_before(utc(2024, 3, 30, 6, 59)) is None


def test_every_without_start_is_aligned_to_the_clock_and_stops_at_end():
    every = schedule_for(spec(every=900.0, end=utc(2024, 6, 1, 12, 30)), FIRST_SEEN)
    assert slots(every, utc(2024, 6, 1, 11, 50), 5) == [
        utc(2024, 6, 1, 12, 0), utc(2024, 6, 1, 12, 15), utc(2024, 6, 1, 12, 30),
    ]  # fmt: skip
    assert every.latest_at_or_before(utc(2024, 6, 1, 12, 7, 30)) == utc(2024, 6, 1, 12, 0)
    assert every.latest_at_or_before(utc(2030, 1, 1)) == utc(2024, 6, 1, 12, 30)
    daily = schedule_for(spec(every=86400.0), FIRST_SEEN)
    assert daily.next_after(FIRST_SEEN) == utc(2024, 6, 2)  # midnight UTC, not 12:00


def test_every_with_fractions_of_a_second():
    every = IntervalSchedule(0.25, utc(2024, 1, 1))
    assert every.next_after(utc(2024, 1, 1, 0, 0, 1)) == utc(2024, 1, 1, 0, 0, 1) + timedelta(
        milliseconds=250
    )


def test_once():
    once = schedule_for(spec(schedule="@once", start=utc(2024, 5, 1, 9)), FIRST_SEEN)
    assert slots(once, utc(2024, 1, 1), 3) == [utc(2024, 5, 1, 9)]
    assert once.latest_at_or_before(utc(2024, 5, 1, 8, 59)) is None
    assert once.latest_at_or_before(utc(2030, 1, 1)) == utc(2024, 5, 1, 9)
    first_seen = schedule_for(spec(schedule="@once"), FIRST_SEEN)
    assert slots(first_seen, utc(2024, 1, 1), 3) == [FIRST_SEEN]
    assert OnceSchedule(FIRST_SEEN).next_after(FIRST_SEEN) is None


# -- what is refused -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [TriggerType.API, TriggerType.EVENT])
def test_api_and_event_triggers_have_no_schedule(kind):
    with pytest.raises(ValueError, match="no schedule"):
        schedule_for(TriggerSpec(name="t", pipeline="p", type=kind, after="x"), FIRST_SEEN)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CronSchedule("0 5 * *"), "has 4 fields; a cron has 5"),
        (lambda: CronSchedule("0 25 * * *"), "not a valid cron"),
        (lambda: CronSchedule("0 5 * * *", "Mars/Base"), "unknown time zone 'Mars/Base'"),
        (lambda: CronSchedule("0 5 * * *", start=datetime(2024, 1, 1)), "start must be timezone"),
        (
            lambda: CronSchedule("0 5 * * *", start=utc(2024, 1, 2), end=utc(2024, 1, 1)),
            "end .* must be later than start",
        ),
        (lambda: IntervalSchedule(0, utc(2024, 1, 1)), "every must be longer than 0"),
        (lambda: OnceSchedule(datetime(2024, 1, 1)), "at must be timezone-aware"),
        (lambda: CronSchedule("0 5 * * *").next_after(datetime(2024, 1, 1)), "after must be"),
    ],
)
def test_bad_arguments_say_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        make()
