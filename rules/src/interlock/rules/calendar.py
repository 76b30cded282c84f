"""Calendars that SLA windows are cut from: daily and cron schedules, deadlines and windows.

A :class:`Schedule` names wall-clock deadlines in a time zone: :class:`DailySchedule`
(``09:00 Europe/Berlin on workdays``) or :class:`CronSchedule` (``0 9 * * 1-5``), each
with holidays: dates, and the calendars of countries and regions
(:mod:`interlock.rules.holiday_calendars`). Both are frozen ``msgspec`` structs tagged by
``kind``; decode them with ``msgspec.json.decode(data, type=AnySchedule)``. A
:class:`Window` is the span ``[start, deadline)`` in which an expected event must arrive.
Instants in and out are aware datetimes; every instant returned is UTC.

Time zones and DST. Weekdays, holidays and day boundaries are local dates in the
schedule's zone. A wall-clock time maps to an instant by two rules:

* A time that does not exist is shifted forward by the length of the gap: 02:30 on
  2026-03-29 in Europe/Berlin (clocks jump from 02:00 to 03:00) fires at 03:30 CEST,
  01:30 UTC, read with the offset in force before the gap (PEP 495 ``fold=0``, RFC 5545,
  java.time, APScheduler 3); 02:00, the gap's start, fires at 03:00, the first instant
  after it. Shifting keeps the slack between a producer scheduled in local time and its
  deadline, and lands a skipped hourly time on the next hour's deadline (``15 * * * *``
  fires at 01:15 CET, then 03:15 CEST). Clamping every skipped time to 03:00 instead
  would add a deadline there, a 15-minute window no hourly producer meets. Wall times
  that land on one instant are one deadline.
* A time that occurs twice (fall back: 02:30 on 2026-10-25 in Europe/Berlin) fires
  once, at its first occurrence (``fold=0``: 02:30 CEST, 00:30 UTC). This holds for cron
  too: ``15 * * * *`` fires at 02:15 CEST but not again at 02:15 CET, so that window
  lasts two hours. (APScheduler 3.11 fires both occurrences.)

Cron expressions are parsed and matched by :mod:`interlock.rules.crontab` (Vixie cron:
weekday 0 and 7 both Sunday, names, and the day fields OR'ed when both are restricted),
the same code that runs deployment schedules; the wall-clock rules above live in
:mod:`interlock.rules.wallclock`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, cast
from zoneinfo import ZoneInfo, available_timezones

import msgspec

from interlock.rules.crontab import WEEKDAY_NAMES, CronExpression, format_weekdays
from interlock.rules.holiday_calendars import HolidayEntry, Holidays
from interlock.rules.wallclock import next_instant, previous_instant

__all__ = [
    "AnySchedule",
    "CronSchedule",
    "DailySchedule",
    "Schedule",
    "StartPolicy",
    "Window",
    "weekends",
    "workdays",
]

StartPolicy = Literal["previous_deadline", "start_of_day"]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = WEEKDAY_NAMES
_TIME = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")
_TICK = timedelta(microseconds=1)
_DAY = timedelta(days=1)


def workdays() -> tuple[str, ...]:
    """Return Monday to Friday, for ``DailySchedule(days=workdays())``."""
    return _DAY_NAMES[:5]


def weekends() -> tuple[str, ...]:
    """Return Saturday and Sunday, for ``DailySchedule(days=weekends())``."""
    return _DAY_NAMES[5:]


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """The span ``[start, deadline)`` in which an expected event must arrive (UTC)."""

    start: datetime
    deadline: datetime

    def __post_init__(self) -> None:
        if not _utc(self.start, "start") < _utc(self.deadline, "deadline"):
            raise ValueError(f"window start {self.start} is not before deadline {self.deadline}")
        msgspec.structs.force_setattr(self, "start", _utc(self.start, "start"))
        msgspec.structs.force_setattr(self, "deadline", _utc(self.deadline, "deadline"))

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.deadline


class _Plan:
    """A schedule compiled for evaluation: its zone, and wall-clock times that match."""

    __slots__ = ("holidays", "zone")

    def __init__(self, tz: str, holidays: Collection[HolidayEntry | date]) -> None:
        self.zone = _zone(tz)
        self.holidays = Holidays(holidays)

    def next_wall(self, after: datetime) -> datetime:
        """Return the first matching naive wall-clock time strictly after ``after``."""
        raise NotImplementedError

    def prev_wall(self, before: datetime) -> datetime:
        """Return the last matching naive wall-clock time strictly before ``before``."""
        raise NotImplementedError


class Schedule(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", dict=True):
    """Wall-clock deadlines in a time zone; the base of :data:`AnySchedule`."""

    def _compile(self) -> _Plan:
        raise NotImplementedError

    def __post_init__(self) -> None:
        self.__dict__["_compiled"] = self._compile()

    def _plan(self) -> _Plan:
        plan: _Plan | None = self.__dict__.get("_compiled")  # absent after copy.copy()
        if plan is None:
            plan = self.__dict__["_compiled"] = self._compile()
        return plan

    def describe(self) -> str:
        """Say in words when the deadlines are ("09:00 Europe/Berlin on Mon-Fri")."""
        raise NotImplementedError

    def next_deadline(self, after: datetime) -> datetime:
        """Return the first deadline strictly after ``after``."""
        return self._next(_utc(after, "after"))

    def previous_deadline(self, at_or_before: datetime) -> datetime | None:
        """Return the last deadline at or before ``at_or_before`` (None only near year 1)."""
        return self._previous(_utc(at_or_before, "at_or_before"))

    def deadlines_after(self, instant: datetime, count: int) -> list[datetime]:
        """Return the first ``count`` deadlines strictly after ``instant``, ascending."""
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        deadlines = [self._next(_utc(instant, "instant"))] if count else []
        while len(deadlines) < count:
            deadlines.append(self._next(deadlines[-1]))
        return deadlines

    def window_for(
        self, deadline: datetime, start_policy: StartPolicy = "previous_deadline"
    ) -> Window:
        """Return the window that ends at ``deadline``, one of this schedule's deadlines.

        ``"previous_deadline"`` starts it at the deadline before, so windows tile time.
        ``"start_of_day"`` starts it at local midnight of the day the deadline closes (for
        a deadline at midnight, the day before), never before the previous deadline.

        Raises:
            ValueError: ``deadline`` is not a deadline of this schedule.
        """
        end = _utc(deadline, "deadline")
        if (found := self._next(end - _TICK)) != end:
            raise ValueError(
                f"{end.isoformat()} is not a deadline of {self.describe()} "
                f"(the next one is {found.isoformat()})"
            )
        return self._window(self._previous(end - _TICK), end, start_policy)

    def window_containing(self, instant: datetime) -> Window:
        """Return the ``"previous_deadline"`` window whose ``[start, deadline)`` holds it."""
        now = _utc(instant, "instant")
        return self._window(self._previous(now), self._next(now), "previous_deadline")

    # ``__dict__["_span"]`` remembers the last answer, (low, previous or None, next): no
    # deadline falls in (low, next), and previous == low is one. Always true, so never stale;
    # the 100,000 keys of one rule ask about the same few instants.

    def _next(self, after: datetime) -> datetime:
        span = self.__dict__.get("_span")
        if span is not None and span[0] <= after < span[2]:
            return cast("datetime", span[2])
        plan = self._plan()
        best = next_instant(plan.next_wall, after, plan.zone)
        self.__dict__["_span"] = (after, None, best)
        return best

    def _previous(self, at_or_before: datetime) -> datetime | None:
        span = self.__dict__.get("_span")
        if span is not None and span[1] is not None and span[1] <= at_or_before < span[2]:
            return cast("datetime", span[1])
        plan = self._plan()
        found = previous_instant(plan.prev_wall, self._next, at_or_before, plan.zone)
        if found is None:
            return None
        deadline, following = found
        self.__dict__["_span"] = (deadline, deadline, following)
        return deadline

    def _window(self, start: datetime | None, deadline: datetime, policy: StartPolicy) -> Window:
        if start is None or policy == "start_of_day":
            zone = self._plan().zone
            day = (deadline - _TICK).astimezone(zone).date()
            midnight = datetime.combine(day, time(), zone).astimezone(UTC)
            start = midnight if start is None else max(start, midnight)
        return Window(start=start, deadline=deadline)


class DailySchedule(Schedule, frozen=True, kw_only=True, tag="daily"):
    """A deadline at one time of day on some weekdays, except holidays.

    Attributes:
        at: ``"HH:MM"`` or ``"HH:MM:SS"``, local time in ``tz``.
        tz: An IANA time zone name.
        days: Weekday names (``"mon"``, ``"monday"``) or numbers (0 = Monday, as
            ``date.weekday()``); stored as names in week order. Default: every day.
        holidays: Local dates, ``"YYYY-MM-DD"``, on which no deadline falls, and countries'
            calendars (:func:`~interlock.rules.holiday_calendars.country`); dates stored
            sorted, then the calendars.
    """

    at: str
    tz: str = "UTC"
    days: Collection[str | int] = _DAY_NAMES
    holidays: Collection[HolidayEntry] = ()

    def _compile(self) -> _DailyPlan:
        plan = _DailyPlan(self.tz, self.holidays, self.at, self.days)
        force = msgspec.structs.force_setattr
        force(self, "at", plan.at.isoformat("seconds" if plan.at.second else "minutes"))
        force(self, "days", tuple(_DAY_NAMES[day] for day in sorted(plan.days)))
        force(self, "holidays", plan.holidays.stored())
        return plan

    def describe(self) -> str:
        """Say in words when the deadlines are ("09:00 Europe/Berlin on Mon-Fri")."""
        days = cast("_DailyPlan", self._plan()).days
        when = "every day" if len(days) == 7 else f"on {format_weekdays(days)}"
        return f"{self.at} {self.tz} {when}{self._plan().holidays.describe()}"


class CronSchedule(Schedule, frozen=True, kw_only=True, tag="cron"):
    """Deadlines at the times a 5-field cron expression names, except holidays.

    Attributes:
        expression: ``minute hour day month weekday``, e.g. ``"0 9 * * MON-FRI"``.
        tz: An IANA time zone name.
        holidays: Local dates and countries' calendars, as for :class:`DailySchedule`.
    """

    expression: str
    tz: str = "UTC"
    holidays: Collection[HolidayEntry] = ()

    def _compile(self) -> _CronPlan:
        plan = _CronPlan(self.tz, self.holidays, self.expression)
        msgspec.structs.force_setattr(self, "expression", " ".join(self.expression.split()))
        msgspec.structs.force_setattr(self, "holidays", plan.holidays.stored())
        return plan

    def describe(self) -> str:
        """Say in words when the deadlines are ("every hour at :15 UTC")."""
        when, days = cast("_CronPlan", self._plan()).cron.describe()
        return " ".join(filter(None, [when, self.tz, days])) + self._plan().holidays.describe()


AnySchedule = DailySchedule | CronSchedule


class _DailyPlan(_Plan):
    __slots__ = ("at", "days")

    def __init__(
        self, tz: str, holidays: Collection[HolidayEntry | date], at: str, days: object
    ) -> None:
        match = _TIME.fullmatch(at) if isinstance(at, str) else None
        if not match or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3] or 0) > 59:
            raise ValueError(f"{at!r} is not a time of day (use HH:MM, e.g. '09:00')")
        self.at = time(int(match[1]), int(match[2]), int(match[3] or 0))
        if isinstance(days, str) or not isinstance(days, Iterable):
            raise ValueError(f"days must be a collection of weekdays, not {days!r} (e.g. ('mon',))")
        self.days = frozenset(_weekday(day) for day in days)
        if not self.days:
            raise ValueError("days is empty: name at least one weekday (e.g. workdays())")
        super().__init__(tz, holidays)

    def next_wall(self, after: datetime) -> datetime:
        day = after.date() if after.time() < self.at else after.date() + _DAY
        while day.weekday() not in self.days or day in self.holidays:
            day += _DAY
        return datetime.combine(day, self.at)

    def prev_wall(self, before: datetime) -> datetime:
        day = before.date() if before.time() > self.at else before.date() - _DAY
        while day.weekday() not in self.days or day in self.holidays:
            day -= _DAY
        return datetime.combine(day, self.at)


class _CronPlan(_Plan):
    __slots__ = ("cron",)

    def __init__(self, tz: str, holidays: Collection[HolidayEntry | date], expression: str) -> None:
        self.cron = CronExpression.parse(expression)
        super().__init__(tz, holidays)

    def next_wall(self, after: datetime) -> datetime:
        return self.cron.next_wall(after, self.holidays)

    def prev_wall(self, before: datetime) -> datetime:
        return self.cron.prev_wall(before, self.holidays)


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware datetime, got {value!r} (add tzinfo=UTC)"
        )
    return value.astimezone(UTC)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError, OSError, TypeError):
        close = difflib.get_close_matches(str(tz), available_timezones(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "use an IANA name, e.g. 'Europe/Berlin'"
        raise ValueError(f"unknown time zone {tz!r} ({hint})") from None


def _weekday(value: str | int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    key = value.strip().lower() if isinstance(value, str) else None
    for number, name in enumerate(_WEEKDAYS):
        if key in (name, name[:3]):
            return number
    raise ValueError(f"{value!r} is not a weekday (use 'mon'...'sun', or 0-6 with 0 = Monday)")
