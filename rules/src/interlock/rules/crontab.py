"""Cron expressions: the one parser and next-time computation Interlock has.

Rule windows (``cron("0 7 * * *", tz=...)``, :class:`~interlock.rules.calendar.CronSchedule`)
and deployment schedules (the service's scheduler) both use :class:`CronExpression`, so
an expression means the same instants wherever it is written::

    expression = CronExpression.parse("0 9 * * 1")         # Mondays at 09:00
    expression.next_time(datetime(2026, 3, 4, tzinfo=UTC))  # 2026-03-09 09:00 UTC
    expression.next_time(now, "Europe/Berlin")              # in a time zone, DST handled

Semantics are Vixie cron's (the cron of Debian, Red Hat and macOS; ``crontab(5)``):

* five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
  ``JAN``-``DEC``), day of week (0-7 or ``SUN``-``SAT``, 0 and 7 both Sunday); names are
  case-insensitive;
* each field is ``*``, a number, a range ``a-b``, a step ``*/n`` or ``a-b/n`` or
  ``a/n`` (from ``a`` to the end), or a comma-separated list of those;
* when neither the day-of-month nor the day-of-week field starts with ``*``, a day
  matches if *either* matches (``0 9 1 * MON``: the 1st of each month and every
  Monday); otherwise both must (a field starting with ``*`` matches every day).

Time zones and DST follow :mod:`interlock.rules.wallclock`: a wall time skipped by a
spring-forward gap fires shifted forward by the gap's length, a repeated one fires once,
at its first occurrence. (APScheduler 3's ``CronTrigger.from_crontab``, which deployment
schedules used before, numbers weekdays from Monday = 0, rejects 7, combines the two
day fields with AND and fires a repeated wall time twice.)

The module is ``crontab``, not ``cron``: importing a submodule named ``cron`` would
replace the DSL's ``cron()`` that ``interlock.rules`` exports with the module.

Errors::

    InterlockError
    └── CronError (ValueError)    the expression is not valid cron, or never fires
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Container, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from interlock.rules.wallclock import next_instant, previous_instant
from interlock.sdk.errors import InterlockError

__all__ = ["CronError", "CronExpression", "format_runs", "format_weekdays"]

WEEKDAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday abbreviations in ``date.weekday()`` order (0 = Monday)."""
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_Field = tuple[str, int, int, dict[str, int], str]  # name, low, high, names, hint
_FIELDS: tuple[_Field, ...] = (
    ("minute", 0, 59, {}, "0-59"),
    ("hour", 0, 23, {}, "0-23"),
    ("day", 1, 31, {}, "1-31"),
    ("month", 1, 12, {n: i for i, n in enumerate(_MONTHS, 1)}, "1-12 or JAN-DEC"),
    ("weekday", 0, 7, {n: (i + 1) % 7 for i, n in enumerate(WEEKDAY_NAMES)}, "0-7 or SUN-SAT"),
)
_DASH = "\u2013"
_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)


class CronError(InterlockError, ValueError):
    """A cron expression is not valid, or names no time that exists.

    Attributes:
        expression: The expression as given.
        reason: What is wrong, and how to write it.
    """

    def __init__(self, expression: object, reason: str, *, never_fires: bool = False) -> None:
        self.expression = expression
        self.reason = reason
        what = "never fires" if never_fires else "is not a cron expression"
        super().__init__(f"{expression!r} {what}: {reason}")


class CronExpression:
    """A parsed five-field cron expression; immutable and hashable.

    Attributes:
        text: The expression, whitespace normalized (``"0 9 * * 1"``).
        minutes: Matching minutes, ascending.
        hours: Matching hours, ascending.
        days: Matching days of the month.
        months: Matching months (1 = January).
        weekdays: Matching weekdays, as ``date.weekday()`` (0 = Monday).
        either: Whether a day matches when either day field does (both restricted).
    """

    __slots__ = ("days", "either", "hours", "minutes", "months", "text", "weekdays")

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    either: bool

    def __init__(self, text: str) -> None:
        fields = text.split() if isinstance(text, str) else []
        if len(fields) != 5:
            raise CronError(
                text, f"expected 5 fields (minute hour day month weekday), got {len(fields)}"
            )
        try:
            minutes, hours, days, months, weekdays = (
                _field(part, spec) for part, spec in zip(fields, _FIELDS, strict=True)
            )
        except ValueError as exc:
            raise CronError(text, str(exc)) from None
        either = not fields[2].startswith("*") and not fields[4].startswith("*")
        if not either and not any(d <= _MONTH_DAYS[m - 1] for d in days for m in months):
            raise CronError(text, f"no month it names has day {min(days)}", never_fires=True)
        set_ = object.__setattr__
        set_(self, "text", " ".join(fields))
        set_(self, "minutes", tuple(sorted(minutes)))
        set_(self, "hours", tuple(sorted(hours)))
        set_(self, "days", frozenset(days))
        set_(self, "months", frozenset(months))
        set_(self, "weekdays", frozenset((day - 1) % 7 for day in weekdays))
        set_(self, "either", either)

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse ``text``; raises :class:`CronError` naming the field that is wrong."""
        return cls(text)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"CronExpression is immutable (cannot set {name})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronExpression) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"CronExpression({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> tuple[type[CronExpression], tuple[str]]:
        return (CronExpression, (self.text,))

    # -- matching wall-clock times -------------------------------------------------------

    def matches_day(self, day: date) -> bool:
        """Whether the day-of-month, month and weekday fields allow ``day``."""
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, day.weekday() in self.weekdays
        return (in_month or in_week) if self.either else (in_month and in_week)

    def next_wall(self, after: datetime, skip: Container[date] = ()) -> datetime:
        """The first matching naive wall-clock time strictly after naive ``after``.

        Days in ``skip`` (holidays) never match.
        """
        start = after.replace(second=0, microsecond=0) + _MINUTE
        day, hour, minute = start.date(), start.hour, start.minute
        while True:
            if day.month not in self.months:
                day, hour, minute = (day.replace(day=28) + 4 * _DAY).replace(day=1), 0, 0
                continue
            if day not in skip and self.matches_day(day):
                i = bisect_left(self.hours, hour)
                if i < len(self.hours) and self.hours[i] == hour:
                    j = bisect_left(self.minutes, minute)
                    if j < len(self.minutes):
                        return datetime.combine(day, time(hour, self.minutes[j]))
                    i += 1
                if i < len(self.hours):
                    return datetime.combine(day, time(self.hours[i], self.minutes[0]))
            day, hour, minute = day + _DAY, 0, 0

    def prev_wall(self, before: datetime, skip: Container[date] = ()) -> datetime:
        """The last matching naive wall-clock time strictly before naive ``before``."""
        end = before.replace(second=0, microsecond=0)
        end -= _MINUTE if end == before else timedelta(0)
        day, hour, minute = end.date(), end.hour, end.minute
        while True:
            if day.month not in self.months:
                day, hour, minute = day.replace(day=1) - _DAY, 23, 59
                continue
            if day not in skip and self.matches_day(day):
                i = bisect_right(self.hours, hour) - 1
                if i >= 0 and self.hours[i] == hour:
                    j = bisect_right(self.minutes, minute) - 1
                    if j >= 0:
                        return datetime.combine(day, time(hour, self.minutes[j]))
                    i -= 1
                if i >= 0:
                    return datetime.combine(day, time(self.hours[i], self.minutes[-1]))
            day, hour, minute = day - _DAY, 23, 59

    # -- instants ------------------------------------------------------------------------

    def next_time(self, after: datetime, tz: str | ZoneInfo = "UTC") -> datetime:
        """The first time (UTC) strictly after aware ``after`` that it names in ``tz``."""
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        return next_instant(self.next_wall, _aware(after), zone)

    def previous_time(self, at_or_before: datetime, tz: str | ZoneInfo = "UTC") -> datetime | None:
        """The last time (UTC) at or before aware ``at_or_before`` (None only near year 1)."""
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        found = previous_instant(
            self.prev_wall,
            lambda instant: next_instant(self.next_wall, instant, zone),
            _aware(at_or_before),
            zone,
        )
        return None if found is None else found[0]

    def times_after(
        self, after: datetime, count: int, tz: str | ZoneInfo = "UTC"
    ) -> list[datetime]:
        """The first ``count`` times strictly after ``after``, ascending."""
        times: list[datetime] = []
        instant = after
        for _ in range(count):
            instant = self.next_time(instant, tz)
            times.append(instant)
        return times

    # -- words ---------------------------------------------------------------------------

    def describe(self) -> tuple[str, str]:
        """Say in words when it fires: (times of day, days), e.g. ("09:00", "on Mon").

        The days part is empty when every day matches and the times are not clock times.
        """
        hours, minutes = self.hours, self.minutes
        clock = len(hours) * len(minutes) <= 4
        if clock:
            when = ", ".join(f"{h:02d}:{m:02d}" for h in hours for m in minutes)
        elif len(hours) == 24 and len(minutes) <= 4:
            when = "every hour at " + ", ".join(f":{m:02d}" for m in minutes)
        else:
            when = f"minute {format_runs(minutes, str)} of hour {format_runs(hours, str)}"
        doms = "" if len(self.days) == 31 else "day " + format_runs(self.days, str)
        dows = "" if len(self.weekdays) == 7 else format_weekdays(self.weekdays)
        if self.either and not (doms and dows):
            doms = dows = ""  # either field matches every day
        if doms and dows:
            days = f"on {doms} or on {dows}" if self.either else f"on {dows} if {doms}"
        else:
            days = f"on {doms or dows}" if doms or dows else "every day" if clock else ""
        if len(self.months) < 12:
            days += f" in {format_runs(self.months, lambda m: _MONTHS[m - 1].title())}"
        return when, days.strip()


def format_weekdays(days: Iterable[int]) -> str:
    """Write weekdays (0 = Monday) as ``"Mon\u2013Fri"`` or ``"Mon, Wed"``."""
    return format_runs(days, lambda day: WEEKDAY_NAMES[day].title())


def format_runs(values: Iterable[int], label: Callable[[int], str]) -> str:
    """Write ``{1, 2, 3, 5}`` as ``"1\u20133, 5"`` (an en dash): runs of 3+ become ranges."""
    groups: list[list[int]] = []
    for value in sorted(values):
        if groups and value == groups[-1][-1] + 1:
            groups[-1].append(value)
        else:
            groups.append([value])
    return ", ".join(
        f"{label(group[0])}{_DASH}{label(group[-1])}"
        if len(group) > 2
        else ", ".join(map(label, group))
        for group in groups
    )


def _field(text: str, spec: _Field) -> set[int]:
    name, low, high, _, _ = spec
    values: set[int] = set()
    for part in text.split(","):
        body, slash, step = part.partition("/")
        if body == "*":
            first, last = low, high
        else:
            first_text, dash, last_text = body.partition("-")
            first = _value(first_text, spec)
            last = _value(last_text, spec) if dash else high if slash else first
            if first > last:
                raise ValueError(f"{name} range {body!r} runs backwards (write the low end first)")
        if slash and not (step.isascii() and step.isdecimal() and int(step) > 0):
            raise ValueError(f"{name} step {step!r} is not a positive number (e.g. '*/15')")
        values.update(range(first, last + 1, int(step) if slash else 1))
    return values


def _value(text: str, spec: _Field) -> int:
    name, low, high, names, hint = spec
    value = int(text) if text.isascii() and text.isdecimal() else names.get(text.lower(), -1)
    if value == -1:
        kind = "a number or a name" if names else "a number"
        raise ValueError(f"{name} {text!r} is not {kind} (use {hint})")
    if not low <= value <= high:
        raise ValueError(f"{name} {text!r} is out of range (use {hint})")
    return value


def _aware(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got {value!r} (add tzinfo=UTC)")
    return value.astimezone(UTC)
