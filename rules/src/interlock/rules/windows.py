"""From a declared :class:`~interlock.rules.triggers.CalendarWindow` to a schedule."""

from __future__ import annotations

from interlock.rules.calendar import CronSchedule, DailySchedule, Schedule
from interlock.rules.triggers import CalendarWindow

__all__ = ["schedule_for"]


def schedule_for(window: CalendarWindow) -> Schedule:
    """Return the schedule whose deadlines cut ``window``'s periods.

    Raises:
        ValueError: the time, cron expression, time zone, days or holidays are invalid.
    """
    if window.cron is not None:
        return CronSchedule(expression=window.cron, tz=window.tz, holidays=tuple(window.holidays))
    assert window.at is not None
    if window.days:
        return DailySchedule(
            at=window.at, tz=window.tz, days=tuple(window.days), holidays=tuple(window.holidays)
        )
    return DailySchedule(at=window.at, tz=window.tz, holidays=tuple(window.holidays))
