"""Times in scenarios: written as local times of a named zone, parsed exactly, shown back.

A scenario's times are written the way its author thinks of them — ``2026-03-27 08:15``
in the scenario's zone, ``2026-03-27 08:15 America/New_York`` in another, or with an
offset (``2026-03-27T07:15Z``, ``2026-10-25 02:30+02:00``) — and become aware UTC
datetimes. A local time that does not exist (in a DST gap) or that happens twice (as the
clocks go back) is an error saying so and how to write it, never a silent guess.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from interlock.sdk.durations import parse_duration

__all__ = ["TimeValueError", "parse_lag", "parse_time", "show_time", "zone_named"]


class TimeValueError(ValueError):
    """A time, zone or duration in a scenario cannot be read; the message says why."""


@functools.lru_cache(maxsize=64)
def zone_named(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/Berlin``, ``UTC``).

    Raises:
        TimeValueError: there is no such zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimeValueError(
            f"{name!r} is not a time zone (use an IANA name like 'Europe/Berlin' or 'UTC')"
        ) from exc


def _split_zone(text: str) -> tuple[str, str | None]:
    """``2026-03-27 08:15 Europe/Berlin`` -> (``2026-03-27 08:15``, ``Europe/Berlin``)."""
    head, _, last = text.rpartition(" ")
    if head and ("/" in last or last == "UTC"):
        return head.strip(), last
    return text, None


def _local(wall: datetime, zone: ZoneInfo, written: str) -> datetime:
    """The instant of naive ``wall`` in ``zone``; an error in a gap or a repeated hour."""
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    back = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != wall:
        raise TimeValueError(
            f"{written!r} does not exist in {zone.key}: the clocks skip it (a DST change); "
            "write a time outside the gap, or with its offset"
        )
    if first.utcoffset() != second.utcoffset():
        offsets = " or ".join(
            f"{wall.isoformat(sep=' ', timespec='minutes')}{_offset(moment.utcoffset())}"
            for moment in (first, second)
        )
        raise TimeValueError(
            f"{written!r} happens twice in {zone.key} (the clocks go back): "
            f"write it with its offset, {offsets}"
        )
    return first.astimezone(UTC)


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_time(value: object, zone: ZoneInfo) -> datetime:
    """An aware UTC datetime from a scenario's time.

    ``value`` is a :class:`~datetime.datetime` (naive: a local time of ``zone``) or a
    string: ISO 8601 with ``T`` or a space, seconds optional, an offset or ``Z``
    optional, and optionally followed by a zone name that replaces ``zone``.

    Raises:
        TimeValueError: it is not a time, names no zone, or is a local time that does
            not exist or is ambiguous in its zone.
    """
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value.astimezone(UTC)
        return _local(value, zone, value.isoformat(sep=" "))
    if not isinstance(value, str):
        raise TimeValueError(f"{value!r} is not a time (write e.g. '2026-03-27 08:15')")
    text, zone_name = _split_zone(value.strip())
    if zone_name is not None:
        zone = zone_named(zone_name)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TimeValueError(
            f"{value!r} is not a time (write e.g. '2026-03-27 08:15', "
            "'2026-03-27 08:15 America/New_York' or '2026-03-27T07:15Z')"
        ) from None
    if moment.tzinfo is not None:
        if zone_name is not None:
            raise TimeValueError(f"{value!r} has both an offset and a zone: write one")
        return moment.astimezone(UTC)
    return _local(moment, zone, value)


def parse_lag(value: object) -> timedelta:
    """A backlog's length (``"10m"``, ``"2h"``, a :class:`~datetime.timedelta`).

    Raises:
        TimeValueError: it is not a duration, or it is negative.
    """
    try:
        lag = parse_duration(value)  # type: ignore[arg-type]  # checked by parse_duration
    except ValueError as exc:
        raise TimeValueError(str(exc)) from None
    if lag < timedelta():
        raise TimeValueError(f"a lag cannot be negative ({value!r})")
    return lag


def show_time(moment: datetime, zone: ZoneInfo) -> str:
    """``2026-03-27 09:00 CET``: ``moment`` in ``zone``, seconds only when it has some."""
    local = moment.astimezone(zone)
    spec = "minutes" if local.second == 0 and local.microsecond == 0 else "seconds"
    if local.microsecond:
        spec = "microseconds"
    wall = local.replace(tzinfo=None).isoformat(sep=" ", timespec=spec)
    return f"{wall} {local.tzname()}"
