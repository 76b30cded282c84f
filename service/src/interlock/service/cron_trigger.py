"""Deployment schedules: cron (:mod:`interlock.rules.crontab`) as APScheduler triggers.

A deployment's ``schedule`` is a five-field cron expression, evaluated in UTC, optionally
preceded by ``CRON_TZ=<IANA zone>`` (as cronie writes it) to evaluate it in that zone
with its DST changes: ``CRON_TZ=Europe/Berlin 0 9 * * 1-5``. It means exactly what the
same expression means in a rule's ``cron()`` window (:class:`CronExpression`).

:class:`CronScheduleTrigger` is the APScheduler 3 trigger the service's scheduler keeps
in its persistent job store. It pickles as its schedule's text only, so a stored job
does not depend on how the expression is represented in memory.

Errors::

    InterlockError
    └── CronError (ValueError)    not a valid schedule (from interlock.rules.crontab)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from interlock.rules.crontab import CronError, CronExpression

__all__ = ["CronScheduleTrigger", "parse_schedule"]

_TZ_PREFIX = "CRON_TZ="
_TICK = timedelta(microseconds=1)


def parse_schedule(text: str) -> tuple[CronExpression, ZoneInfo]:
    """Split a deployment schedule into its expression and time zone (UTC by default).

    Raises:
        CronError: the expression is not valid cron, or the zone is unknown.
    """
    expression, zone_name = text.strip(), "UTC"
    if expression.startswith(_TZ_PREFIX):
        zone_name, _, expression = expression[len(_TZ_PREFIX) :].partition(" ")
    try:
        zone = ZoneInfo(zone_name)
    except (KeyError, ValueError, OSError):
        raise CronError(
            text, f"unknown time zone {zone_name!r} after CRON_TZ= (use an IANA name)"
        ) from None
    return CronExpression.parse(expression), zone


class CronScheduleTrigger(BaseTrigger):  # type: ignore[misc]  # apscheduler is untyped
    """Fires at the times a deployment's schedule names (see the module docstring).

    Args:
        schedule: ``minute hour day month weekday``, optionally after ``CRON_TZ=Zone``.
    """

    __slots__ = ("cron", "schedule", "zone")

    def __init__(self, schedule: str) -> None:
        self.cron, self.zone = parse_schedule(schedule)
        self.schedule = " ".join(schedule.split())

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first time after the previous one; the first at or after ``now`` at first."""
        if previous_fire_time is None:
            return self.cron.next_time(now - _TICK, self.zone)
        return self.cron.next_time(previous_fire_time, self.zone)

    def previous_time(self, at_or_before: datetime) -> datetime | None:
        """The last time the schedule named at or before ``at_or_before``."""
        return self.cron.previous_time(at_or_before, self.zone)

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "schedule": self.schedule}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["schedule"])  # type: ignore[misc]

    def __str__(self) -> str:
        return f"cron[{self.schedule}]"

    def __repr__(self) -> str:
        return f"<CronScheduleTrigger ({self.schedule!r})>"
