"""Prometheus metrics of one service, in its own registry (served at ``/metrics``).

Each :class:`Metrics` has a private :class:`~prometheus_client.CollectorRegistry`, so
two services in one process (tests, benchmarks) never share or clash on counters.

A gauge whose truth lives elsewhere (the consumer's lag, in NATS) is read at its source
on every scrape (:meth:`Metrics.on_scrape`, :meth:`Metrics.collect`): set only as work
flows, it would freeze at its last value exactly when the work stops.

The registry also holds the process collector (CPU, memory, open files of this process)
and the Python one (version, garbage collections). Counters have no ``_created`` series:
prometheus_client's creation timestamps doubled every counter's series for a value no
Interlock dashboard reads (``disable_created_metrics``, process-wide).

Served as the Prometheus text format, ``text/plain; version=0.0.4`` (:data:`CONTENT_TYPE`,
what ``generate_latest`` writes), the one media type ``/metrics`` answers and documents.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

__all__ = ["CONTENT_TYPE", "Metrics"]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCRAPE_REFRESH_TIMEOUT = 2.0
"""Seconds a scrape waits for a gauge's source; past it, the last value is served."""
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The service's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.events_consumed = Counter(
            "interlock_events_consumed",
            "Events taken from the stream and fed to the engine.",
            registry=registry,
        )
        self.dead_letters = Counter(
            "interlock_dead_letters",
            "Messages sent to INTERLOCK_DEAD, by reason.",
            ["reason"],
            registry=registry,
        )
        self.firings = Counter(
            "interlock_firings",
            "Firings stored, by status (fired, resolved); a firing replayed after a restart "
            "is counted once.",
            ["status"],
            registry=registry,
        )
        self.rules_broken = Gauge(
            "interlock_rules_broken",
            "Rules quarantined as broken (they do not run until a fixed version is applied).",
            registry=registry,
        )
        self.pipeline_errors = Counter(
            "interlock_pipeline_errors",
            "Unexpected errors in the pipeline's loop (each logged with its traceback; the "
            "batch is fetched again from the last position).",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "interlock_consumer_lag",
            "Messages in INTERLOCK_EVENTS not yet delivered to the service's consumer.",
            registry=registry,
        )
        self.actions = Counter(
            "interlock_actions",
            "Action executions, by kind and outcome (succeeded, failed, retried, suspended).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.action_latency = Histogram(
            "interlock_action_latency_seconds",
            "From the firing being stored to the action's execution starting.",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.action_duration = Histogram(
            "interlock_action_duration_seconds",
            "How long one action execution took.",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.events_received = Counter(
            "interlock_api_events_received",
            "Events accepted by POST /api/events.",
            registry=registry,
        )
        self.runs = Counter(
            "interlock_runs",
            "Runs entering a state, by that state (scheduled, pending, running, completed, "
            "failed, cancelled, crashed): a run counts once in each state it goes through.",
            ["state"],
            registry=registry,
        )
        self.adapter_polls = Counter(
            "interlock_adapter_polls",
            "Polls of the adapters the service polls, by adapter and outcome (succeeded, failed).",
            ["adapter", "outcome"],
            registry=registry,
        )
        self.adapter_events = Counter(
            "interlock_adapter_events",
            "Events the adapters the service polls published, by adapter.",
            ["adapter"],
            registry=registry,
        )
        self.adapter_last_poll = Gauge(
            "interlock_adapter_last_poll_timestamp_seconds",
            "When an adapter's last poll started (Unix time), by adapter.",
            ["adapter"],
            registry=registry,
        )
        self.adapter_last_success = Gauge(
            "interlock_adapter_last_success_timestamp_seconds",
            "When an adapter's last successful poll ended (Unix time), by adapter.",
            ["adapter"],
            registry=registry,
        )
        self.adapter_lag = Gauge(
            "interlock_adapter_lag_seconds",
            "Seconds from an adapter's last successful poll to the scrape, by adapter: how "
            "old Interlock's view of its source is.",
            ["adapter"],
            registry=registry,
        )
        self._refreshers: list[Callable[[], Awaitable[None]]] = []
        self._sync_refreshers: list[Callable[[datetime], None]] = []

    def on_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Await ``refresh`` before each :meth:`collect` (it sets a gauge from its source).

        Registering the same callable again (a pipeline started twice) changes nothing.
        """
        if refresh not in self._refreshers:
            self._refreshers.append(refresh)

    def on_scrape_sync(self, refresh: Callable[[datetime], None]) -> None:
        """Call ``refresh(now)`` before each :meth:`collect` (a gauge computed from a time)."""
        if refresh not in self._sync_refreshers:
            self._sync_refreshers.append(refresh)

    async def collect(self) -> bytes:
        """Refresh the gauges read at their source, then render.

        A gauge whose source does not answer in time keeps its last value (logged at DEBUG).
        """
        now = datetime.now(UTC)
        for refresh_now in self._sync_refreshers:
            refresh_now(now)
        for refresh in self._refreshers:
            try:
                await asyncio.wait_for(refresh(), SCRAPE_REFRESH_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - a scrape always answers
                logger.debug("metrics: %r not refreshed: %s", refresh, exc)
        return self.render()

    def render(self) -> bytes:
        """The metrics in Prometheus' text format, as they are."""
        return generate_latest(self.registry)
