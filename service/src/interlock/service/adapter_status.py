"""What the service knows about the adapters it polls: :class:`AdapterBoard`.

Each adapter of ``adapters_file`` that the service polls (:mod:`.adapter_polls`) reports
every poll here: when it ran, whether it succeeded, what it published, what went wrong.
``GET /api/adapters``, ``interlock adapters list`` and ``/metrics`` read it:

- ``lag_seconds``: seconds since the last successful poll, the age of what Interlock
  knows of the source (a poll every minute keeps it under a minute; a source that is down
  makes it grow);
- ``consecutive_failures`` and ``last_error``: whether it is failing now, and why;
- ``next_poll_at``: when the scheduler runs it next (its last poll's start plus the
  interval: the scheduler's interval job).

Polls run in the scheduler's threads; the board takes a lock for each change.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import msgspec

from interlock.service.metrics import Metrics

__all__ = ["AdapterBoard", "AdapterStatus"]


class AdapterStatus(msgspec.Struct, kw_only=True):
    """One polled adapter: its configuration and how its polls went."""

    name: str
    """Its ``[adapters.NAME]``."""
    kind: str
    """Its kind (an entry point of ``interlock.adapters``), e.g. ``db.freshness``."""
    interval_seconds: float
    """Seconds between polls."""
    polls: int = 0
    """Polls made since the service started (a drain of several pages counts each)."""
    events: int = 0
    """Events published since the service started."""
    spooled: int = 0
    """Of those, events spooled because NATS did not take them at once."""
    failures: int = 0
    """Failed polls since the service started."""
    consecutive_failures: int = 0
    """Failed polls since the last successful one (0: healthy)."""
    last_poll_at: datetime | None = None
    """When the last poll started."""
    last_success_at: datetime | None = None
    """When the last successful poll ended."""
    last_error: str | None = None
    """What the last failed poll said (kept after a success, see ``last_error_at``)."""
    last_error_at: datetime | None = None
    """When the last poll failed."""
    lag_seconds: float | None = None
    """Seconds from the last successful poll to now (``None``: none succeeded yet)."""
    next_poll_at: datetime | None = None
    """When the scheduler polls it next."""


class AdapterBoard:
    """Every polled adapter's :class:`AdapterStatus`, fed by the polls.

    Args:
        metrics: Where the per-adapter metrics go (``interlock_adapter_*``).
    """

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self._statuses: dict[str, AdapterStatus] = {}
        self._lock = threading.Lock()
        if metrics is not None:
            metrics.on_scrape_sync(self._refresh_lag)

    def register(self, name: str, kind: str, interval: timedelta) -> None:
        """Start tracking an adapter (again: its counts start over)."""
        with self._lock:
            self._statuses[name] = AdapterStatus(
                name=name, kind=kind, interval_seconds=interval.total_seconds()
            )

    def started(self, name: str, at: datetime) -> None:
        """A poll of ``name`` starts now."""
        with self._lock:
            status = self._statuses.get(name)
            if status is not None:
                status.last_poll_at = at
        if self._metrics is not None:
            self._metrics.adapter_last_poll.labels(name).set(at.timestamp())

    def succeeded(self, name: str, at: datetime, *, polls: int, events: int, spooled: int) -> None:
        """A poll (``polls`` pages) published ``events`` and ended at ``at``."""
        with self._lock:
            status = self._statuses.get(name)
            if status is None:
                return
            status.polls += polls
            status.events += events
            status.spooled += spooled
            status.consecutive_failures = 0
            status.last_success_at = at
        if self._metrics is not None:
            self._metrics.adapter_polls.labels(name, "succeeded").inc(polls)
            self._metrics.adapter_events.labels(name).inc(events)
            self._metrics.adapter_last_success.labels(name).set(at.timestamp())

    def failed(self, name: str, at: datetime, error: str) -> None:
        """A poll of ``name`` failed at ``at`` saying ``error``."""
        with self._lock:
            status = self._statuses.get(name)
            if status is None:
                return
            status.polls += 1
            status.failures += 1
            status.consecutive_failures += 1
            status.last_error, status.last_error_at = error, at
        if self._metrics is not None:
            self._metrics.adapter_polls.labels(name, "failed").inc()

    def statuses(self, now: datetime) -> list[AdapterStatus]:
        """A copy of every adapter's status as of ``now``, by name."""
        with self._lock:
            copies = [msgspec.structs.replace(s) for s in self._statuses.values()]
        for status in copies:
            if status.last_success_at is not None:
                status.lag_seconds = max((now - status.last_success_at).total_seconds(), 0.0)
            if status.last_poll_at is not None:
                status.next_poll_at = status.last_poll_at + timedelta(
                    seconds=status.interval_seconds
                )
        return sorted(copies, key=lambda status: status.name)

    def _refresh_lag(self, now: datetime) -> None:
        assert self._metrics is not None
        for status in self.statuses(now):
            if status.lag_seconds is not None:
                self._metrics.adapter_lag.labels(status.name).set(status.lag_seconds)
