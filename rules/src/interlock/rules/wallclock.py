"""From wall-clock times in a time zone to instants, across DST changes.

Schedules (daily deadlines, cron expressions) name *wall-clock* times: a function
``next_wall(after)`` gives the first matching naive local time strictly after a naive
local time, ``prev_wall(before)`` the last one strictly before. :func:`next_instant` and
:func:`previous_instant` turn those into UTC instants by two rules:

* a wall time that does not exist (a spring-forward gap) is shifted forward by the
  length of the gap (02:30 on 2026-03-29 in Europe/Berlin fires at 03:30 CEST), read
  with the offset in force before the gap (PEP 495 ``fold=0``, RFC 5545, java.time);
  wall times that land on one instant are one instant;
* a wall time that occurs twice (fall back) fires once, at its first occurrence.

Both :mod:`interlock.rules.calendar` (rule windows) and :mod:`interlock.rules.crontab`
(cron expressions, deployment schedules) use these two functions, so a schedule means
the same instants wherever it is written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["WallSequence", "next_instant", "previous_instant", "wall_time"]

WallSequence = Callable[[datetime], datetime]
"""``next_wall`` or ``prev_wall``: a naive local time to the next (previous) matching one."""

_TICK = timedelta(microseconds=1)
_ZERO = timedelta(0)
_LOOKBACK = timedelta(days=2)


def wall_time(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock time of an aware ``instant`` in ``zone``."""
    return instant.astimezone(zone).replace(tzinfo=None)


def next_instant(next_wall: WallSequence, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) strictly after aware ``after`` that ``next_wall`` names."""
    local = after.astimezone(zone)
    start = local.replace(tzinfo=None)
    # Wall times in a gap fire shifted forward by its length, so after a recent jump of
    # the clock they may still be due: scan from one jump earlier (one per two days).
    try:
        jump = start - wall_time(after - _LOOKBACK, zone) - _LOOKBACK
    except OverflowError:  # near year 1
        jump = _ZERO
    if jump > _ZERO and (after - jump).astimezone(zone).utcoffset() != local.utcoffset():
        start -= jump
    best, limit = None, datetime.max
    wall = next_wall(start)
    while wall < limit:  # once an instant is found, no later wall time fires earlier
        instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if instant > after and (best is None or instant < best):
            best, limit = instant, wall_time(instant, zone)
            if wall == limit:  # not shifted out of a gap: nothing after it can beat it
                break
        wall = next_wall(wall)
    assert best is not None
    return best


def previous_instant(
    prev_wall: WallSequence,
    following: Callable[[datetime], datetime],
    at_or_before: datetime,
    zone: ZoneInfo,
) -> tuple[datetime, datetime] | None:
    """The last instant at or before ``at_or_before``, and the one after it.

    ``following`` is the matching :func:`next_instant` (possibly cached by the caller).
    ``None`` only near year 1, where nothing earlier can be represented.
    """
    try:
        wall = prev_wall(wall_time(at_or_before, zone) + _TICK)
        while (instant := wall.replace(tzinfo=zone).astimezone(UTC)) > at_or_before:
            wall = prev_wall(wall)
    except OverflowError:
        return None
    # Later wall times may fire earlier: shifted out of a gap, or a repeated hour's first
    # pass when ``at_or_before`` is in its second.
    while (after := following(instant)) <= at_or_before:
        instant = after
    return instant, after
