"""The clock the rule engine reads time from: a protocol, the system clock and a fake one.

Every component that asks "what time is it?" takes a :class:`Clock` instead of calling
``datetime.now()``, so windows and deadlines can be driven in fake time by tests
(:class:`FakeClock`) and by the real clock in production (:class:`SystemClock`). Clocks
return aware UTC datetimes; local time is a question for :mod:`interlock.rules.calendar`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from interlock.sdk.durations import parse_duration

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """A source of the current instant."""

    def now(self) -> datetime:
        """Return the current instant as an aware UTC datetime."""
        ...


class SystemClock:
    """The machine's real-time clock."""

    def now(self) -> datetime:
        """Return the current instant as an aware UTC datetime."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that moves only when told to, and only forward.

    Args:
        start: The instant the clock reads at first; any time zone, stored as UTC.

    Raises:
        ValueError: ``start`` is naive.
    """

    def __init__(self, start: datetime) -> None:
        self._now = _aware_utc(start, "start")

    def now(self) -> datetime:
        """Return the instant the clock was last set to, as an aware UTC datetime."""
        return self._now

    def advance(self, delta: timedelta | str) -> datetime:
        """Move the clock forward by ``delta`` (a timedelta or e.g. ``"90s"``, ``"1d2h"``).

        Returns:
            The new current instant.

        Raises:
            ValueError: ``delta`` is negative or not a duration.
        """
        step = parse_duration(delta)
        if step < timedelta(0):
            raise ValueError(f"cannot advance a FakeClock by {delta!r}: time only moves forward")
        self._now += step
        return self._now

    def set(self, instant: datetime) -> datetime:
        """Move the clock to ``instant``, which must not be before the current instant.

        Returns:
            The new current instant.

        Raises:
            ValueError: ``instant`` is naive or earlier than :meth:`now`.
        """
        target = _aware_utc(instant, "instant")
        if target < self._now:
            raise ValueError(
                f"cannot set a FakeClock back from {self._now.isoformat()} to "
                f"{target.isoformat()}: time only moves forward (use a new FakeClock)"
            )
        self._now = target
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"


def _aware_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware, got naive {value.isoformat()} "
            "(e.g. datetime(2026, 3, 29, 9, 0, tzinfo=UTC))"
        )
    return value.astimezone(UTC)
