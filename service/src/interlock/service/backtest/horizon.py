"""The span a backtest replays: ``--since 7d [--until T] [--warmup 1d]``.

A time is a duration back from now (``7d``, ``36h``, ``90m``) or an ISO 8601 time with
a UTC offset (``2026-12-01T09:00:00+01:00``; a bare date is midnight UTC). The replay
starts at ``since - warmup``: the warm-up builds the rules' state (open windows,
partial sequences, counts) from the events before ``since``, and its firings are
dropped; what the rules would have fired is reported for ``since <= at < until``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from interlock.sdk.durations import DURATION_HINT, parse_duration
from interlock.service.backtest.errors import HorizonError

__all__ = ["DEFAULT_WARMUP", "Horizon", "parse_horizon", "parse_time"]

DEFAULT_WARMUP = timedelta(days=1)
_TIME_HINT = f"give a duration back from now ({DURATION_HINT}) or an ISO 8601 time with an offset"


@dataclass(frozen=True, slots=True)
class Horizon:
    """What a backtest reads and reports (UTC times)."""

    start: datetime
    """Where the replay starts: ``since - warmup``."""
    since: datetime
    """Firings before it belong to the warm-up and are dropped."""
    until: datetime
    """Where the replay ends (the time it was asked for when not given)."""

    @property
    def warmup(self) -> timedelta:
        """How long the warm-up is."""
        return self.since - self.start


def parse_time(option: str, text: str, now: datetime) -> datetime:
    """``text`` as a UTC time: a duration back from ``now``, or an ISO 8601 time.

    Raises:
        HorizonError: it is neither, or an ISO time without an offset.
    """
    value = text.strip()
    if not value:
        raise HorizonError(option, text, _TIME_HINT)
    if value[0].isdigit() and not value[-1].isdigit():
        try:
            return now - parse_duration(value)
        except ValueError:
            pass
        except OverflowError:
            raise HorizonError(option, text, "reaches before the year 1") from None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HorizonError(option, text, _TIME_HINT) from None
    if len(value) == len("2026-01-01"):
        parsed = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    if parsed.utcoffset() is None:
        raise HorizonError(
            option, text, "an ISO time needs a UTC offset, e.g. 2026-12-01T09:00:00Z"
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise HorizonError(option, text, "falls outside years 1 to 9999 in UTC") from None


def parse_horizon(
    since: str, until: str | None = None, warmup: str | None = None, *, now: datetime
) -> Horizon:
    """The horizon the options describe, checked.

    Raises:
        HorizonError: an option cannot be read, ``since`` is not before ``until``, or
            ``until`` lies in the future.
    """
    since_at = parse_time("--since", since, now)
    until_at = parse_time("--until", until, now) if until else now
    try:
        warm = parse_duration(warmup) if warmup is not None else DEFAULT_WARMUP
    except (ValueError, OverflowError):
        raise HorizonError("--warmup", str(warmup), DURATION_HINT) from None
    try:
        start = since_at - warm
    except OverflowError:
        raise HorizonError("--since", since, "with the warm-up, it is before year 1") from None
    if until_at > now:
        raise HorizonError("--until", str(until), "lies in the future: nothing is recorded yet")
    if since_at >= until_at:
        raise HorizonError(
            "--since", since, f"must be before --until ({until_at.isoformat(timespec='seconds')})"
        )
    return Horizon(start=start, since=since_at, until=until_at)
