"""Schedules, deadlines and windows: hand-checked instants, DST edges, and properties.

Every schedule is round-tripped through msgspec JSON before it is asserted on. 2026 DST
transitions: Europe/Berlin 2026-03-29 02:00 -> 03:00 and 2026-10-25 03:00 -> 02:00 (both
at 01:00 UTC); America/New_York 2026-03-08 02:00 -> 03:00 (07:00 UTC) and 2026-11-01
02:00 -> 01:00 (06:00 UTC).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import msgspec
import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from interlock.rules.calendar import (
    AnySchedule,
    CronSchedule,
    DailySchedule,
    Schedule,
    Window,
    weekends,
    workdays,
)

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
S = TypeVar("S", bound=Schedule)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[misc]


def roundtrip(schedule: S) -> S:
    """Encode to JSON and decode as any schedule; the copy is what the test asserts on."""
    decoded = msgspec.json.decode(msgspec.json.encode(schedule), type=AnySchedule)
    assert decoded == schedule
    assert type(decoded) is type(schedule)
    assert hash(decoded) == hash(schedule)
    return decoded  # type: ignore[return-value]


def wall(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


# --- serialization --------------------------------------------------------------------


def test_json_form_is_canonical_and_readable() -> None:
    schedule = roundtrip(
        DailySchedule(
            at="09:00:00",
            tz=BERLIN,
            days=[4, "Monday", "WED", 0],
            holidays=["2026-12-26", "2026-12-25", "2026-12-25"],
        )
    )
    assert msgspec.json.decode(msgspec.json.encode(schedule)) == {
        "kind": "daily",
        "at": "09:00",
        "tz": BERLIN,
        "days": ["mon", "wed", "fri"],
        "holidays": ["2026-12-25", "2026-12-26"],
    }
    same = DailySchedule(
        at="09:00", tz=BERLIN, days=("mon", "wed", "fri"), holidays=("2026-12-25", "2026-12-26")
    )
    assert schedule == same
    cron = roundtrip(CronSchedule(expression="  0 9  * * MON-FRI ", holidays=("2026-05-01",)))
    assert msgspec.json.decode(msgspec.json.encode(cron)) == {
        "kind": "cron",
        "expression": "0 9 * * MON-FRI",
        "tz": "UTC",
        "holidays": ["2026-05-01"],
    }


def test_defaults_and_helpers() -> None:
    schedule = roundtrip(DailySchedule(at="07:00"))
    assert workdays() == ("mon", "tue", "wed", "thu", "fri")
    assert weekends() == ("sat", "sun")
    assert (schedule.tz, schedule.days, schedule.holidays) == ("UTC", workdays() + weekends(), ())
    dates = DailySchedule(at="07:00", holidays=[date(2026, 12, 25)])  # type: ignore[list-item]
    assert dates.holidays == ("2026-12-25",)


def test_windows_round_trip_and_hold_utc() -> None:
    window = Window(
        start=datetime(2026, 3, 29, 1, 0, tzinfo=ZoneInfo(BERLIN)), deadline=utc(2026, 3, 29, 7)
    )
    assert window.start == utc(2026, 3, 29, 0)
    assert window.start.tzinfo is UTC
    assert msgspec.json.decode(msgspec.json.encode(window), type=Window) == window
    assert utc(2026, 3, 29, 0) in window
    assert utc(2026, 3, 29, 7) not in window


def test_a_copy_still_computes() -> None:
    schedule = copy.copy(DailySchedule(at="07:00"))
    assert schedule.next_deadline(utc(2026, 1, 1)) == utc(2026, 1, 1, 7)


def test_invalid_json_fails_at_decode_with_the_same_message() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"'25:00' is not a time of day"):
        msgspec.json.decode(b'{"kind": "daily", "at": "25:00"}', type=AnySchedule)
    with pytest.raises(msgspec.ValidationError, match=r"expected 5 fields"):
        msgspec.json.decode(b'{"kind": "cron", "expression": "0 9"}', type=AnySchedule)


# --- daily schedules ------------------------------------------------------------------


def test_workdays_skip_weekends_and_holidays() -> None:
    schedule = roundtrip(
        DailySchedule(at="09:00", tz=BERLIN, days=workdays(), holidays=("2026-12-25", "2026-12-26"))
    )
    # 2026-12-25 is a Friday (holiday), then Saturday (also a holiday) and Sunday.
    assert schedule.deadlines_after(utc(2026, 12, 23), 4) == [
        utc(2026, 12, 23, 8),
        utc(2026, 12, 24, 8),
        utc(2026, 12, 28, 8),
        utc(2026, 12, 29, 8),
    ]
    assert schedule.previous_deadline(utc(2026, 12, 28, 7, 59)) == utc(2026, 12, 24, 8)
    assert schedule.previous_deadline(utc(2026, 12, 28, 8)) == utc(2026, 12, 28, 8)


def test_weekends() -> None:
    schedule = roundtrip(DailySchedule(at="10:00", days=weekends()))
    assert schedule.deadlines_after(utc(2026, 12, 23), 3) == [
        utc(2026, 12, 26, 10),
        utc(2026, 12, 27, 10),
        utc(2027, 1, 2, 10),
    ]


def test_days_and_holidays_are_local_dates() -> None:
    # 00:30 in Berlin is 23:30 UTC the day before: the holiday and the weekday are Berlin's.
    holiday = roundtrip(DailySchedule(at="00:30", tz=BERLIN, holidays=("2026-12-25",)))
    assert holiday.deadlines_after(utc(2026, 12, 23, 12), 2) == [
        utc(2026, 12, 23, 23, 30),
        utc(2026, 12, 25, 23, 30),
    ]
    monday = roundtrip(DailySchedule(at="00:30", tz=BERLIN, days=["mon"]))
    assert monday.next_deadline(utc(2026, 12, 26)) == utc(2026, 12, 27, 23, 30)  # a UTC Sunday
    friday = roundtrip(DailySchedule(at="22:00", tz=NEW_YORK, days=["fri"]))
    assert friday.next_deadline(utc(2026, 12, 26)) == utc(2026, 12, 26, 3)  # a UTC Saturday


def test_seconds_are_kept() -> None:
    schedule = roundtrip(DailySchedule(at="23:59:59"))
    assert schedule.at == "23:59:59"
    assert schedule.next_deadline(utc(2026, 1, 1, 23, 59, 59)) == utc(2026, 1, 2, 23, 59, 59)


# --- DST ------------------------------------------------------------------------------

DST_DAYS = [
    # Berlin, spring forward: 02:00-03:00 does not exist; shifted by the gap (one hour).
    (BERLIN, "01:59", date(2026, 3, 29), utc(2026, 3, 29, 0, 59), "01:59 CET"),
    (BERLIN, "02:00", date(2026, 3, 29), utc(2026, 3, 29, 1, 0), "03:00 CEST"),
    (BERLIN, "02:30", date(2026, 3, 29), utc(2026, 3, 29, 1, 30), "03:30 CEST"),
    (BERLIN, "03:00", date(2026, 3, 29), utc(2026, 3, 29, 1, 0), "03:00 CEST"),
    # Berlin, fall back: 02:00-03:00 happens twice; the first occurrence (CEST) counts.
    (BERLIN, "02:00", date(2026, 10, 25), utc(2026, 10, 25, 0, 0), "02:00 CEST"),
    (BERLIN, "02:30", date(2026, 10, 25), utc(2026, 10, 25, 0, 30), "02:30 CEST"),
    (BERLIN, "03:00", date(2026, 10, 25), utc(2026, 10, 25, 2, 0), "03:00 CET"),
    # New York, spring forward: 02:00-03:00 does not exist.
    (NEW_YORK, "01:59", date(2026, 3, 8), utc(2026, 3, 8, 6, 59), "01:59 EST"),
    (NEW_YORK, "02:00", date(2026, 3, 8), utc(2026, 3, 8, 7, 0), "03:00 EDT"),
    (NEW_YORK, "02:30", date(2026, 3, 8), utc(2026, 3, 8, 7, 30), "03:30 EDT"),
    (NEW_YORK, "03:00", date(2026, 3, 8), utc(2026, 3, 8, 7, 0), "03:00 EDT"),
    # New York, fall back: 01:00-02:00 happens twice; the first occurrence (EDT) counts.
    (NEW_YORK, "01:00", date(2026, 11, 1), utc(2026, 11, 1, 5, 0), "01:00 EDT"),
    (NEW_YORK, "01:30", date(2026, 11, 1), utc(2026, 11, 1, 5, 30), "01:30 EDT"),
    (NEW_YORK, "02:00", date(2026, 11, 1), utc(2026, 11, 1, 7, 0), "02:00 EST"),
]


@pytest.mark.parametrize(("tz", "at", "day", "expected", "local"), DST_DAYS)
def test_wall_times_on_transition_days(
    tz: str, at: str, day: date, expected: datetime, local: str
) -> None:
    schedule = roundtrip(DailySchedule(at=at, tz=tz))
    the_day_before = datetime.combine(day - timedelta(days=1), time(12), UTC)
    assert schedule.next_deadline(the_day_before) == expected
    assert wall(expected, tz) == f"{day} {local}"
    cron = roundtrip(CronSchedule(expression=f"{int(at[3:])} {int(at[:2])} * * *", tz=tz))
    assert cron.next_deadline(the_day_before) == expected


@pytest.mark.parametrize(
    ("tz", "at", "after", "expected"),
    [
        (
            BERLIN,
            "02:30",
            utc(2026, 10, 24, 12),
            [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
        (
            NEW_YORK,
            "01:30",
            utc(2026, 10, 31, 12),
            [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
        ),
    ],
)
def test_a_repeated_time_fires_once(
    tz: str, at: str, after: datetime, expected: list[datetime]
) -> None:
    schedule = roundtrip(DailySchedule(at=at, tz=tz))
    assert schedule.deadlines_after(after, 2) == expected
    second_pass = expected[0] + timedelta(minutes=45)  # the repeated hour, second time round
    assert schedule.next_deadline(second_pass) == expected[1]
    assert schedule.previous_deadline(second_pass) == expected[0]


@pytest.mark.parametrize(
    ("tz", "at", "in_gap_shadow", "shifted", "day_before"),
    [
        (
            BERLIN,
            "02:30",
            utc(2026, 3, 29, 1, 10),
            utc(2026, 3, 29, 1, 30),
            utc(2026, 3, 28, 1, 30),
        ),
        (NEW_YORK, "02:30", utc(2026, 3, 8, 7, 10), utc(2026, 3, 8, 7, 30), utc(2026, 3, 7, 7, 30)),
    ],
)
def test_a_skipped_time_fires_after_the_gap_even_when_asked_from_after_the_gap(
    tz: str, at: str, in_gap_shadow: datetime, shifted: datetime, day_before: datetime
) -> None:
    # 03:10 local: the clock already jumped over 02:30, whose deadline is 03:30.
    schedule = roundtrip(DailySchedule(at=at, tz=tz))
    assert schedule.next_deadline(in_gap_shadow) == shifted
    assert schedule.previous_deadline(in_gap_shadow) == day_before
    assert schedule.window_containing(in_gap_shadow) == Window(start=day_before, deadline=shifted)


NEXT_THREE = [
    (
        DailySchedule(at="09:00", tz=BERLIN),
        utc(2026, 3, 27, 12),
        ["2026-03-28 09:00 CET", "2026-03-29 09:00 CEST", "2026-03-30 09:00 CEST"],
    ),
    (
        DailySchedule(at="09:00", tz=NEW_YORK),
        utc(2026, 10, 31, 12),
        ["2026-10-31 09:00 EDT", "2026-11-01 09:00 EST", "2026-11-02 09:00 EST"],
    ),
    (
        DailySchedule(at="02:30", tz=BERLIN),
        utc(2026, 3, 27, 12),
        ["2026-03-28 02:30 CET", "2026-03-29 03:30 CEST", "2026-03-30 02:30 CEST"],
    ),
    (
        DailySchedule(at="01:30", tz=NEW_YORK),
        utc(2026, 10, 31, 12),
        ["2026-11-01 01:30 EDT", "2026-11-02 01:30 EST", "2026-11-03 01:30 EST"],
    ),
    # Hourly: the skipped 02:15 lands on 03:15; the repeated 02:15 fires once.
    (
        CronSchedule(expression="15 * * * *", tz=BERLIN),
        utc(2026, 3, 29, 0),
        ["2026-03-29 01:15 CET", "2026-03-29 03:15 CEST", "2026-03-29 04:15 CEST"],
    ),
    (
        CronSchedule(expression="15 * * * *", tz=BERLIN),
        utc(2026, 10, 24, 23),
        ["2026-10-25 01:15 CEST", "2026-10-25 02:15 CEST", "2026-10-25 03:15 CET"],
    ),
    (
        CronSchedule(expression="30 * * * *", tz=NEW_YORK),
        utc(2026, 3, 8, 6),
        ["2026-03-08 01:30 EST", "2026-03-08 03:30 EDT", "2026-03-08 04:30 EDT"],
    ),
    (
        CronSchedule(expression="*/30 * * * *", tz=NEW_YORK),
        utc(2026, 11, 1, 5, 10),
        ["2026-11-01 01:30 EDT", "2026-11-01 02:00 EST", "2026-11-01 02:30 EST"],
    ),
    (
        CronSchedule(expression="*/30 * * * *", tz=BERLIN),
        utc(2026, 3, 29, 0, 10),
        ["2026-03-29 01:30 CET", "2026-03-29 03:00 CEST", "2026-03-29 03:30 CEST"],
    ),
]


@pytest.mark.parametrize(("schedule", "after", "expected"), NEXT_THREE)
def test_next_three_deadlines_across_a_dst_change(
    schedule: Schedule, after: datetime, expected: list[str]
) -> None:
    schedule = roundtrip(schedule)
    deadlines = schedule.deadlines_after(after, 3)
    tz = schedule.tz  # type: ignore[attr-defined]
    assert [wall(deadline, tz) for deadline in deadlines] == expected
    windows = [schedule.window_for(deadline) for deadline in deadlines]
    assert [window.start for window in windows[1:]] == deadlines[:-1]  # they tile time


def test_a_skipped_day() -> None:
    # Samoa skipped 2011-12-30 entirely (UTC-10 to UTC+14): its 09:00 lands on the 31st's.
    schedule = roundtrip(DailySchedule(at="09:00", tz="Pacific/Apia"))
    deadlines = schedule.deadlines_after(utc(2011, 12, 29, 12), 3)
    assert deadlines == [utc(2011, 12, 29, 19), utc(2011, 12, 30, 19), utc(2011, 12, 31, 19)]
    assert schedule.window_for(deadlines[1]).start == deadlines[0]


# --- cron -----------------------------------------------------------------------------

CRON = [
    (
        "0 9 * * 1-5",
        BERLIN,
        utc(2026, 3, 27, 12),  # a Friday
        [utc(2026, 3, 30, 7), utc(2026, 3, 31, 7), utc(2026, 4, 1, 7)],
    ),
    (
        "0 9 * * MON-FRI",
        BERLIN,
        utc(2026, 3, 27, 12),
        [utc(2026, 3, 30, 7), utc(2026, 3, 31, 7), utc(2026, 4, 1, 7)],
    ),
    (
        "15 * * * *",
        "UTC",
        utc(2026, 1, 1, 10, 15),
        [utc(2026, 1, 1, 11, 15), utc(2026, 1, 1, 12, 15), utc(2026, 1, 1, 13, 15)],
    ),
    (
        "*/20 8-9 * * *",
        "UTC",
        utc(2026, 1, 1, 9, 30),
        [utc(2026, 1, 1, 9, 40), utc(2026, 1, 2, 8, 0), utc(2026, 1, 2, 8, 20)],
    ),
    (
        "5/15 * * * *",
        "UTC",
        utc(2026, 1, 1),
        [utc(2026, 1, 1, 0, 5), utc(2026, 1, 1, 0, 20), utc(2026, 1, 1, 0, 35)],
    ),
    (
        "0 9-17/4 * * *",
        "UTC",
        utc(2026, 1, 1),
        [utc(2026, 1, 1, 9), utc(2026, 1, 1, 13), utc(2026, 1, 1, 17)],
    ),
    (
        "0 0 1 JAN,jul *",
        "UTC",
        utc(2026, 1, 1),
        [utc(2026, 7, 1), utc(2027, 1, 1), utc(2027, 7, 1)],
    ),
    # Day and weekday both restricted: either matches (2026-06-29 is a Monday).
    (
        "0 12 1 * MON",
        "UTC",
        utc(2026, 6, 16),
        [utc(2026, 6, 22, 12), utc(2026, 6, 29, 12), utc(2026, 7, 1, 12)],
    ),
    # A field starting with '*': both must match (Mondays on day 1, 11, 21 or 31).
    (
        "0 12 */10 * MON",
        "UTC",
        utc(2026, 6, 1),
        [utc(2026, 6, 1, 12), utc(2026, 8, 31, 12), utc(2026, 9, 21, 12)],
    ),
    ("0 0 29 2 *", "UTC", utc(2026, 1, 1), [utc(2028, 2, 29), utc(2032, 2, 29), utc(2036, 2, 29)]),
    (
        "0 10 * * 7",
        "UTC",
        utc(2026, 3, 27),
        [utc(2026, 3, 29, 10), utc(2026, 4, 5, 10), utc(2026, 4, 12, 10)],
    ),
    (
        "0 10 * * sun",
        "UTC",
        utc(2026, 3, 27),
        [utc(2026, 3, 29, 10), utc(2026, 4, 5, 10), utc(2026, 4, 12, 10)],
    ),
    (
        "59 23 31 12 *",
        "UTC",
        utc(2026, 12, 31, 23, 59),
        [utc(2027, 12, 31, 23, 59), utc(2028, 12, 31, 23, 59), utc(2029, 12, 31, 23, 59)],
    ),
    (
        "0 8 * * 1-5",
        NEW_YORK,
        utc(2026, 3, 6, 14),  # a Friday; DST starts on Sunday
        [utc(2026, 3, 9, 12), utc(2026, 3, 10, 12), utc(2026, 3, 11, 12)],
    ),
]


@pytest.mark.parametrize(("expression", "tz", "after", "expected"), CRON)
def test_cron_expressions(
    expression: str, tz: str, after: datetime, expected: list[datetime]
) -> None:
    schedule = roundtrip(CronSchedule(expression=expression, tz=tz))
    assert schedule.deadlines_after(after, 3) == expected
    assert schedule.previous_deadline(expected[1] - timedelta(microseconds=1)) == expected[0]
    assert schedule.previous_deadline(expected[2]) == expected[2]


def test_cron_holidays_are_skipped() -> None:
    schedule = roundtrip(
        CronSchedule(expression="0 9 * * 1-5", tz=BERLIN, holidays=("2026-12-24",))
    )
    assert schedule.deadlines_after(utc(2026, 12, 23, 12), 2) == [
        utc(2026, 12, 25, 8),
        utc(2026, 12, 28, 8),
    ]


# APScheduler 3 agrees in UTC when at most one of day and weekday is restricted (it ANDs
# them) and weekdays are names (its numbers start on Monday); an independent check.
@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(
    minute=st.sampled_from(["*", "0", "*/7", "5-20/5", "0,30", "59"]),
    hour=st.sampled_from(["*", "9", "*/5", "8-17", "0,12,23"]),
    day=st.sampled_from(["*", "1", "15-20", "*/10", "31", "28-31"]),
    month=st.sampled_from(["*", "2", "JAN-MAR", "*/4", "12"]),
    after=st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
)
def test_cron_agrees_with_apscheduler_in_utc(
    minute: str, hour: str, day: str, month: str, after: datetime
) -> None:
    assume((day, month) != ("31", "2"))
    expression = f"{minute} {hour} {day} {month} *"
    schedule = roundtrip(CronSchedule(expression=expression))
    trigger = CronTrigger.from_crontab(expression, timezone=UTC)
    expected, instant = [], after
    for _ in range(3):
        instant = trigger.get_next_fire_time(None, instant + timedelta(microseconds=1))
        expected.append(instant)
    assert schedule.deadlines_after(after, 3) == expected


# --- windows --------------------------------------------------------------------------

WORKDAYS_0900 = DailySchedule(
    at="09:00", tz=BERLIN, days=workdays(), holidays=("2026-12-25", "2026-12-26")
)


def test_windows_tile_time_from_the_previous_deadline() -> None:
    schedule = roundtrip(WORKDAYS_0900)
    window = Window(start=utc(2026, 12, 24, 8), deadline=utc(2026, 12, 28, 8))
    assert schedule.window_for(utc(2026, 12, 28, 8)) == window
    assert schedule.window_containing(utc(2026, 12, 24, 8)) == window  # start is inside
    assert schedule.window_containing(utc(2026, 12, 27, 12)) == window
    assert schedule.window_containing(utc(2026, 12, 28, 8)).start == utc(2026, 12, 28, 8)


def test_start_of_day_windows_start_at_local_midnight() -> None:
    schedule = roundtrip(WORKDAYS_0900)
    assert schedule.window_for(utc(2026, 12, 28, 8), "start_of_day") == Window(
        start=utc(2026, 12, 27, 23), deadline=utc(2026, 12, 28, 8)
    )
    # On transition days the local day is 23 or 25 hours long; the window follows it.
    daily = roundtrip(DailySchedule(at="09:00", tz=BERLIN))
    spring = daily.window_for(utc(2026, 3, 29, 7), "start_of_day")
    assert (spring.start, spring.deadline - spring.start) == (
        utc(2026, 3, 28, 23),
        timedelta(hours=8),
    )
    autumn = daily.window_for(utc(2026, 10, 25, 8), "start_of_day")
    assert (autumn.start, autumn.deadline - autumn.start) == (
        utc(2026, 10, 24, 22),
        timedelta(hours=10),
    )


def test_start_of_day_never_starts_before_the_previous_deadline() -> None:
    schedule = roundtrip(CronSchedule(expression="0 6,18 * * *", tz=BERLIN))
    assert schedule.window_for(utc(2026, 6, 10, 16), "start_of_day") == Window(
        start=utc(2026, 6, 10, 4), deadline=utc(2026, 6, 10, 16)
    )


def test_a_midnight_deadline_closes_the_day_before() -> None:
    schedule = roundtrip(DailySchedule(at="00:00", tz=BERLIN))
    assert schedule.window_for(utc(2026, 6, 9, 22), "start_of_day") == Window(
        start=utc(2026, 6, 8, 22), deadline=utc(2026, 6, 9, 22)
    )


def test_a_midnight_that_does_not_exist() -> None:
    # Sao Paulo sprang forward at midnight, 2018-11-04 00:00 -> 01:00 (UTC-3 -> UTC-2).
    schedule = roundtrip(DailySchedule(at="09:00", tz="America/Sao_Paulo"))
    window = schedule.window_for(utc(2018, 11, 4, 11), "start_of_day")
    assert window.start == utc(2018, 11, 4, 3)
    assert wall(window.start, "America/Sao_Paulo") == "2018-11-04 01:00 -02"


def test_window_for_something_that_is_not_a_deadline() -> None:
    message = (
        "2026-12-28T08:00:01+00:00 is not a deadline of 09:00 Europe/Berlin on Mon\u2013Fri, "
        "except 2 holidays (the next one is 2026-12-29T08:00:00+00:00)"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        roundtrip(WORKDAYS_0900).window_for(utc(2026, 12, 28, 8, 0, 1))


def test_the_first_deadline_ever_has_a_window_from_midnight() -> None:
    schedule = roundtrip(DailySchedule(at="09:00"))
    assert schedule.previous_deadline(utc(1, 1, 1, 8)) is None
    assert schedule.window_for(utc(1, 1, 1, 9)) == Window(
        start=utc(1, 1, 1), deadline=utc(1, 1, 1, 9)
    )


# --- describe -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (WORKDAYS_0900, "09:00 Europe/Berlin on Mon\u2013Fri, except 2 holidays"),
        (DailySchedule(at="07:00"), "07:00 UTC every day"),
        (
            DailySchedule(at="07:00:30", days=weekends(), holidays=("2026-01-01",)),
            "07:00:30 UTC on Sat, Sun, except 1 holiday",
        ),
        (
            DailySchedule(at="07:00", days=["mon", "wed", "thu", "fri", "sun"]),
            "07:00 UTC on Mon, Wed\u2013Fri, Sun",
        ),
        (CronSchedule(expression="0 9 * * 1-5", tz=BERLIN), "09:00 Europe/Berlin on Mon\u2013Fri"),
        (CronSchedule(expression="15 * * * *"), "every hour at :15 UTC"),
        (CronSchedule(expression="0 7 * * *"), "07:00 UTC every day"),
        (CronSchedule(expression="0,30 6,18 * * *"), "06:00, 06:30, 18:00, 18:30 UTC every day"),
        (
            CronSchedule(expression="*/5 9-17 * * *"),
            "minute 0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55 of hour 9\u201317 UTC",
        ),
        (CronSchedule(expression="0 12 1 * MON"), "12:00 UTC on day 1 or on Mon"),
        (CronSchedule(expression="0 12 */10 * MON"), "12:00 UTC on Mon if day 1, 11, 21, 31"),
        (CronSchedule(expression="0 0 1-7 * *"), "00:00 UTC on day 1\u20137"),
        (CronSchedule(expression="0 0 1 JAN-MAR,DEC *"), "00:00 UTC on day 1 in Jan\u2013Mar, Dec"),
        (CronSchedule(expression="0 9 1-31 * MON"), "09:00 UTC every day"),
    ],
)
def test_describe(schedule: Schedule, words: str) -> None:
    assert roundtrip(schedule).describe() == words


# --- invalid input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"at": "25:00"}, "'25:00' is not a time of day (use HH:MM, e.g. '09:00')"),
        ({"at": "9:00"}, "'9:00' is not a time of day (use HH:MM, e.g. '09:00')"),
        ({"at": "09:60"}, "'09:60' is not a time of day (use HH:MM, e.g. '09:00')"),
        ({"at": "09:00:60"}, "'09:00:60' is not a time of day (use HH:MM, e.g. '09:00')"),
        (
            {"at": "09:00", "tz": "Europe/Berlinn"},
            "unknown time zone 'Europe/Berlinn' (did you mean 'Europe/Berlin'?)",
        ),
        (
            {"at": "09:00", "tz": "Mars/Olympus"},
            "unknown time zone 'Mars/Olympus' (use an IANA name, e.g. 'Europe/Berlin')",
        ),
        (
            {"at": "09:00", "tz": ""},
            "unknown time zone '' (use an IANA name, e.g. 'Europe/Berlin')",
        ),
        ({"at": "09:00", "days": ()}, "days is empty: name at least one weekday (e.g. workdays())"),
        (
            {"at": "09:00", "days": "mon"},
            "days must be a collection of weekdays, not 'mon' (e.g. ('mon',))",
        ),
        (
            {"at": "09:00", "days": ["funday"]},
            "'funday' is not a weekday (use 'mon'...'sun', or 0-6 with 0 = Monday)",
        ),
        (
            {"at": "09:00", "days": [7]},
            "7 is not a weekday (use 'mon'...'sun', or 0-6 with 0 = Monday)",
        ),
        (
            {"at": "09:00", "holidays": ["2026-13-01"]},
            "holiday '2026-13-01' is not a date (use 'YYYY-MM-DD', e.g. '2026-12-25')",
        ),
    ],
)
def test_invalid_daily_schedules(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        DailySchedule(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 9 * *", "expected 5 fields (minute hour day month weekday), got 4"),
        ("", "expected 5 fields (minute hour day month weekday), got 0"),
        ("0 9 * * * *", "expected 5 fields (minute hour day month weekday), got 6"),
        ("61 * * * *", "minute '61' is out of range (use 0-59)"),
        ("0 24 * * *", "hour '24' is out of range (use 0-23)"),
        ("0 9 0 * *", "day '0' is out of range (use 1-31)"),
        ("0 9 * 13 *", "month '13' is out of range (use 1-12 or JAN-DEC)"),
        ("0 9 * * 8", "weekday '8' is out of range (use 0-7 or SUN-SAT)"),
        ("0 9 * * FOO", "weekday 'FOO' is not a number or a name (use 0-7 or SUN-SAT)"),
        ("0 nine * * *", "hour 'nine' is not a number (use 0-23)"),
        ("0 9 * * MON-", "weekday '' is not a number or a name (use 0-7 or SUN-SAT)"),
        ("0 9 * * FRI-MON", "weekday range 'FRI-MON' runs backwards (write the low end first)"),
        ("*/0 * * * *", "minute step '0' is not a positive number (e.g. '*/15')"),
        ("*/x * * * *", "minute step 'x' is not a positive number (e.g. '*/15')"),
        ("1,,2 * * * *", "minute '' is not a number (use 0-59)"),
    ],
)
def test_invalid_cron_expressions(expression: str, reason: str) -> None:
    with pytest.raises(
        ValueError, match=exactly(f"{expression!r} is not a cron expression: {reason}")
    ):
        CronSchedule(expression=expression)


def test_a_cron_expression_that_never_fires() -> None:
    with pytest.raises(
        ValueError, match=exactly("'0 0 30 2 *' never fires: no month it names has day 30")
    ):
        CronSchedule(expression="0 0 30 2 *")
    assert roundtrip(CronSchedule(expression="0 0 30 2 MON")).next_deadline(utc(2026, 1, 1)) == utc(
        2026, 2, 2
    )


def test_invalid_instants_and_windows() -> None:
    schedule = roundtrip(DailySchedule(at="09:00"))
    with pytest.raises(ValueError, match=r"^after must be a timezone-aware datetime, got datetime"):
        schedule.next_deadline(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match=exactly("count must not be negative, got -1")):
        schedule.deadlines_after(utc(2026, 1, 1), -1)
    assert schedule.deadlines_after(utc(2026, 1, 1), 0) == []
    with pytest.raises(ValueError, match=r"^window start 2026-01-01 09:00:00\+00:00 is not before"):
        Window(start=utc(2026, 1, 1, 9), deadline=utc(2026, 1, 1, 9))


# --- properties -----------------------------------------------------------------------

ZONES = [
    "UTC",
    BERLIN,
    NEW_YORK,
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Pacific/Chatham",
    "Asia/Kolkata",
]


def _transitions(tz: str) -> list[datetime]:
    """Every instant in 2016-2028 at which ``tz``'s UTC offset changes, to the second."""
    zone, found = ZoneInfo(tz), []
    instant = utc(2016, 1, 1)
    while instant < utc(2028, 1, 1):
        step = instant + timedelta(days=1)
        if instant.astimezone(zone).utcoffset() != step.astimezone(zone).utcoffset():
            low, high = instant, step
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                same = middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset()
                low, high = (middle, high) if same else (low, middle)
            found.append(high)
        instant = step
    return found


TRANSITIONS = {tz: _transitions(tz) for tz in ZONES}


@dataclass(frozen=True)
class Spec:
    """What a schedule means, written independently of the code under test."""

    schedule: Schedule
    zone: ZoneInfo
    times: frozenset[time]
    weekdays: frozenset[int]
    holidays: frozenset[date]

    def deadlines(self, first: date, last: date) -> list[datetime]:
        """Every deadline for wall times on local dates ``first`` to ``last``, by brute force."""
        found, day = set(), first
        while day <= last:
            if day.weekday() in self.weekdays and day not in self.holidays:
                for at in self.times:  # fold=0: first occurrence; in a gap, the offset before
                    found.add(datetime.combine(day, at, self.zone).astimezone(UTC))
            day += timedelta(days=1)
        return sorted(found)


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    tz = draw(st.sampled_from(ZONES))
    weekdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
    holidays = draw(st.frozensets(st.dates(date(2015, 12, 1), date(2028, 2, 1)), max_size=3))
    hours = st.one_of(st.integers(0, 23), st.integers(0, 3))  # night hours hold the DST edges
    minutes = st.sampled_from([0, 1, 15, 29, 30, 45, 59])
    iso = tuple(day.isoformat() for day in holidays)
    if draw(st.booleans()):
        at = time(draw(hours), draw(minutes), draw(st.sampled_from([0, 0, 30])))
        names = [["mon", "tue", "wed", "thu", "fri", "sat", "sun"][d] for d in weekdays]
        schedule: Schedule = DailySchedule(
            at=at.isoformat(),
            tz=tz,
            days=draw(st.sampled_from([names, sorted(weekdays)])),
            holidays=iso,
        )
        return Spec(schedule, ZoneInfo(tz), frozenset([at]), weekdays, holidays)
    hour_set = draw(st.frozensets(hours, min_size=1, max_size=4) | st.just(frozenset(range(24))))
    minute_set = draw(st.frozensets(minutes, min_size=1, max_size=3))
    week = "*" if len(weekdays) == 7 else ",".join(str((d + 1) % 7) for d in sorted(weekdays))
    hour_field = "*" if len(hour_set) == 24 else ",".join(map(str, sorted(hour_set)))
    expression = f"{','.join(map(str, sorted(minute_set)))} {hour_field} * * {week}"
    times = frozenset(time(h, m) for h in hour_set for m in minute_set)
    schedule = CronSchedule(expression=expression, tz=tz, holidays=iso)
    return Spec(schedule, ZoneInfo(tz), times, weekdays, holidays)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Spec, datetime]:
    spec = draw(specs())
    transitions = TRANSITIONS[str(spec.zone)]
    if transitions and draw(st.booleans()):
        near = draw(st.sampled_from(transitions))
        nudge = draw(
            st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta(seconds=-1)])
        )
        instant = near + draw(st.integers(-26 * 60, 26 * 60)) * timedelta(minutes=1) + nudge
    else:
        instant = draw(
            st.datetimes(datetime(2016, 1, 2), datetime(2027, 12, 1), timezones=st.just(UTC))
        )
    return spec, instant


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(cases())
def test_deadlines_match_a_brute_force_calendar(case: tuple[Spec, datetime]) -> None:
    spec, instant = case
    local_day = instant.astimezone(spec.zone).date()
    truth = spec.deadlines(local_day - timedelta(days=60), local_day + timedelta(days=60))
    after = [deadline for deadline in truth if deadline > instant]
    at_or_before = [deadline for deadline in truth if deadline <= instant]

    # A fresh copy each time: no answers remembered from earlier questions.
    deadlines = roundtrip(spec.schedule).deadlines_after(instant, 4)
    assert deadlines == after[:4]  # next > instant, strictly increasing, none skipped
    assert roundtrip(spec.schedule).next_deadline(instant) == deadlines[0]
    assert roundtrip(spec.schedule).previous_deadline(instant) == at_or_before[-1]
    window = roundtrip(spec.schedule).window_containing(instant)
    assert window == Window(start=at_or_before[-1], deadline=deadlines[0])
    assert instant in window

    # One copy asked many questions, in an order that lets it answer some from memory.
    schedule = roundtrip(spec.schedule)
    tick = timedelta(microseconds=1)
    middle = instant + (deadlines[0] - instant) / 2
    probes = [instant, middle, deadlines[0] - tick, instant - tick, at_or_before[-1], *deadlines]
    for probe in [*probes, *reversed(probes)]:
        assert schedule.next_deadline(probe) == min(d for d in truth if d > probe)
        assert schedule.previous_deadline(probe) == max(d for d in truth if d <= probe)
    for deadline in deadlines:
        assert schedule.previous_deadline(deadline) == deadline
        local = deadline.astimezone(spec.zone)
        if local.timetz().replace(tzinfo=None) not in spec.times:
            # Only in a DST gap: the requested wall time, read with the offset before the
            # gap, shifted forward by the gap's length.
            before = (deadline - timedelta(days=1)).astimezone(spec.zone).utcoffset()
            assert before is not None
            requested = (deadline + before).replace(tzinfo=None)
            assert requested.time() in spec.times
            assert requested.replace(tzinfo=spec.zone).astimezone(UTC) == deadline
            assert requested != local.replace(tzinfo=None)  # it does not exist on the clock
    assert schedule.window_for(deadlines[1]).start == deadlines[0]
    start_of_day = schedule.window_for(deadlines[1], "start_of_day")
    assert deadlines[0] <= start_of_day.start < deadlines[1]
