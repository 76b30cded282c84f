"""Prometheus metrics of one service, in its own registry (served at ``/metrics``).

Each :class:`Metrics` has a private :class:`~prometheus_client.CollectorRegistry`, so
two services in one process (tests, benchmarks) never share or clash on counters.

A gauge whose truth lives elsewhere (the consumer's lag, in NATS) is read at its source
on every scrape (:meth:`Metrics.on_scrape`, :meth:`Metrics.collect`): set only as work
flows, it would freeze at its last value exactly when the work stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCRAPE_REFRESH_TIMEOUT = 2.0
"""Seconds a scrape waits for a gauge's source; past it, the last value is served."""
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The service's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
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
            "Firings stored, by status (fired, resolved).",
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
            "Run state changes, by final state.",
            ["state"],
            registry=registry,
        )
        self._refreshers: list[Callable[[], Awaitable[None]]] = []

    def on_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Await ``refresh`` before each :meth:`collect` (it sets a gauge from its source).

        Registering the same callable again (a pipeline started twice) changes nothing.
        """
        if refresh not in self._refreshers:
            self._refreshers.append(refresh)

    async def collect(self) -> bytes:
        """Refresh the gauges read at their source, then render.

        A gauge whose source does not answer in time keeps its last value (logged at DEBUG).
        """
        for refresh in self._refreshers:
            try:
                await asyncio.wait_for(refresh(), SCRAPE_REFRESH_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - a scrape always answers
                logger.debug("metrics: %r not refreshed: %s", refresh, exc)
        return self.render()

    def render(self) -> bytes:
        """The metrics in Prometheus' text format, as they are."""
        return generate_latest(self.registry)
