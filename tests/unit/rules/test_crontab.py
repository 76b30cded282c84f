"""Cron expressions (interlock.rules.crontab): Vixie cron semantics, checked against a table of
known expressions and their next times, DST changes included, and against a brute-force
reference over drawn expressions. The same class runs rules' cron() windows and deployment
schedules (see tests/integration/service/test_scheduler.py).

2026 DST transitions: Europe/Berlin 2026-03-29 02:00 -> 03:00 and 2026-10-25 03:00 -> 02:00
(both at 01:00 UTC); America/New_York 2026-03-08 02:00 -> 03:00 (07:00 UTC).
"""

from __future__ import annotations

import pickle
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.rules.crontab import CronError, CronExpression


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[misc]


# (expression, time zone, after, the next three times, all UTC). Weekdays of 2026: 03-01 Sunday,
# 03-04 Wednesday, 03-06 Friday, 03-29 Sunday, 04-01 Wednesday, 04-13 Monday.
KNOWN: list[tuple[str, str, str, list[str]]] = [
    # Monday is 1 (APScheduler 3's from_crontab read it as Tuesday).
    (
        "0 9 * * 1",
        "UTC",
        "2026-03-04 12:00",
        ["2026-03-09 09:00", "2026-03-16 09:00", "2026-03-23 09:00"],
    ),
    (
        "0 9 * * mon",
        "UTC",
        "2026-03-04 12:00",
        ["2026-03-09 09:00", "2026-03-16 09:00", "2026-03-23 09:00"],
    ),
    # Sunday is 0 and 7 (7 was refused by from_crontab).
    (
        "0 9 * * 0",
        "UTC",
        "2026-03-04 00:00",
        ["2026-03-08 09:00", "2026-03-15 09:00", "2026-03-22 09:00"],
    ),
    (
        "0 9 * * 7",
        "UTC",
        "2026-03-04 00:00",
        ["2026-03-08 09:00", "2026-03-15 09:00", "2026-03-22 09:00"],
    ),
    (
        "0 9 * * SUN",
        "UTC",
        "2026-03-04 00:00",
        ["2026-03-08 09:00", "2026-03-15 09:00", "2026-03-22 09:00"],
    ),
    (
        "0 9 * * 5-7",
        "UTC",
        "2026-03-04 00:00",
        ["2026-03-06 09:00", "2026-03-07 09:00", "2026-03-08 09:00"],
    ),
    # Both day fields restricted: either matches (the 13th, or a Friday).
    (
        "0 0 13 * 5",
        "UTC",
        "2026-04-01 00:00",
        ["2026-04-03 00:00", "2026-04-10 00:00", "2026-04-13 00:00"],
    ),
    (
        "0 9 1-7 * 1",
        "UTC",
        "2026-03-29 12:00",
        ["2026-03-30 09:00", "2026-04-01 09:00", "2026-04-02 09:00"],
    ),
    # A day field starting with '*' is unrestricted: both must match (odd days, Mondays).
    (
        "0 9 */2 * 1",
        "UTC",
        "2026-03-01 00:00",
        ["2026-03-09 09:00", "2026-03-23 09:00", "2026-04-13 09:00"],
    ),
    # Ranges, steps, lists, names.
    (
        "*/15 9-10 * * MON-FRI",
        "UTC",
        "2026-03-06 10:50",
        ["2026-03-09 09:00", "2026-03-09 09:15", "2026-03-09 09:30"],
    ),
    (
        "5 4 * * sun",
        "UTC",
        "2026-03-01 04:05",
        ["2026-03-08 04:05", "2026-03-15 04:05", "2026-03-22 04:05"],
    ),
    (
        "0 0 */10 * *",
        "UTC",
        "2026-03-01 00:00",
        ["2026-03-11 00:00", "2026-03-21 00:00", "2026-03-31 00:00"],
    ),
    (
        "0 0 31 * *",
        "UTC",
        "2026-03-31 00:00",
        ["2026-05-31 00:00", "2026-07-31 00:00", "2026-08-31 00:00"],
    ),
    (
        "0 0 29 2 *",
        "UTC",
        "2026-01-01 00:00",
        ["2028-02-29 00:00", "2032-02-29 00:00", "2036-02-29 00:00"],
    ),
    (
        "30 6 1 jan,jul *",
        "UTC",
        "2026-03-01 00:00",
        ["2026-07-01 06:30", "2027-01-01 06:30", "2027-07-01 06:30"],
    ),
    (
        "0 12 5/10 * *",
        "UTC",
        "2026-03-01 00:00",
        ["2026-03-05 12:00", "2026-03-15 12:00", "2026-03-25 12:00"],
    ),
    (
        "59 23 31 12 *",
        "UTC",
        "2026-12-31 23:59",
        ["2027-12-31 23:59", "2028-12-31 23:59", "2029-12-31 23:59"],
    ),
    # DST: a skipped wall time fires shifted forward by the gap; a repeated one fires once.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28 12:00",
        ["2026-03-29 01:30", "2026-03-30 00:30", "2026-03-31 00:30"],
    ),
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24 12:00",
        ["2026-10-25 00:30", "2026-10-26 01:30", "2026-10-27 01:30"],
    ),
    (
        "15 * * * *",
        "Europe/Berlin",
        "2026-10-25 00:00",
        ["2026-10-25 00:15", "2026-10-25 02:15", "2026-10-25 03:15"],
    ),
    (
        "0 9 * * *",
        "America/New_York",
        "2026-03-07 12:00",
        ["2026-03-07 14:00", "2026-03-08 13:00", "2026-03-09 13:00"],
    ),
    (
        "0 9 * * 1-5",
        "Europe/Berlin",
        "2026-03-27 12:00",
        ["2026-03-30 07:00", "2026-03-31 07:00", "2026-04-01 07:00"],
    ),
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("text", "tz", "after_text", "expected_texts"), KNOWN)
def test_known_expressions_and_their_next_times(
    text: str, tz: str, after_text: str, expected_texts: list[str]
) -> None:
    after, expected = at(after_text), [at(time) for time in expected_texts]
    expression = CronExpression.parse(text)
    assert expression.times_after(after, 3, tz) == expected
    assert expression.previous_time(expected[1] - timedelta(microseconds=1), tz) == expected[0]
    assert expression.previous_time(expected[2], tz) == expected[2]


def test_an_expression_is_a_value() -> None:
    expression = CronExpression.parse("0  9 * *   MON")
    assert str(expression) == "0 9 * * MON"
    assert expression == CronExpression.parse("0 9 * * MON")
    assert len({expression, CronExpression.parse("0 9 * * MON")}) == 1
    assert pickle.loads(pickle.dumps(expression)) == expression
    with pytest.raises(AttributeError, match="immutable"):
        expression.text = "* * * * *"  # type: ignore[misc]


def test_next_time_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CronExpression.parse("* * * * *").next_time(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 9 * *", "expected 5 fields (minute hour day month weekday), got 4"),
        ("60 9 * * *", "minute '60' is out of range (use 0-59)"),
        ("0 9 * * 8", "weekday '8' is out of range (use 0-7 or SUN-SAT)"),
        ("0 9 * * funday", "weekday 'funday' is not a number or a name (use 0-7 or SUN-SAT)"),
        ("0 9 * * 5-1", "weekday range '5-1' runs backwards (write the low end first)"),
        ("*/0 * * * *", "minute step '0' is not a positive number (e.g. '*/15')"),
    ],
)
def test_invalid_expressions_say_which_field(text: str, message: str) -> None:
    with pytest.raises(CronError, match=f"^{re.escape(repr(text))} is not a cron expression: "):
        CronExpression.parse(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        CronExpression.parse(text)


def test_an_expression_that_never_fires_is_refused() -> None:
    with pytest.raises(CronError, match="never fires: no month it names has day 30"):
        CronExpression.parse("0 0 30 2 *")
    # With a weekday too, the day fields are OR'ed: it fires on Mondays in February.
    assert CronExpression.parse("0 0 30 2 1").next_time(utc(2026, 1, 1)) == utc(2026, 2, 2)


# --- an independent reference ---------------------------------------------------------


def _reference_values(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step = part.partition("/")
        first, last = (low, high) if body == "*" else (int(body.split("-")[0]), high)
        if "-" in body:
            last = int(body.split("-")[1])
        elif body != "*" and not step:
            last = first
        values.update(range(first, last + 1, int(step or 1)))
    return values


def reference_next(text: str, after: datetime) -> datetime:
    """crontab(5) read literally, minute by minute from ``after`` (UTC)."""
    minute, hour, day, month, weekday = text.split()
    minutes, hours = _reference_values(minute, 0, 59), _reference_values(hour, 0, 23)
    days, months = _reference_values(day, 1, 31), _reference_values(month, 1, 12)
    weekdays = {value % 7 for value in _reference_values(weekday, 0, 7)}  # 0 = Sunday
    either = not day.startswith("*") and not weekday.startswith("*")
    instant = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while True:
        in_month, in_week = instant.day in days, instant.isoweekday() % 7 in weekdays
        day_ok = (in_month or in_week) if either else (in_month and in_week)
        if instant.month in months and day_ok and instant.hour in hours:
            if instant.minute in minutes:
                return instant
            instant += timedelta(minutes=1)
        else:
            instant = instant.replace(minute=0) + timedelta(hours=1)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    minute=st.sampled_from(["*", "0", "*/7", "5-20/5", "0,30", "59"]),
    hour=st.sampled_from(["*", "9", "*/5", "8-17", "0,12,23"]),
    day=st.sampled_from(["*", "1", "15-20", "*/10", "13", "28-31"]),
    month=st.sampled_from(["*", "2", "1-3", "*/4", "12"]),
    weekday=st.sampled_from(["*", "0", "7", "1-5", "5", "0,6", "*/2"]),
    after=st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
)
def test_next_time_agrees_with_a_literal_reading_of_crontab(
    minute: str, hour: str, day: str, month: str, weekday: str, after: datetime
) -> None:
    text = f"{minute} {hour} {day} {month} {weekday}"
    expression = CronExpression.parse(text)
    assert expression.next_time(after) == reference_next(text, after)
