"""Running a polling adapter: poll, publish, checkpoint, sleep; back off while the source is down.

:class:`AdapterRunner` is what ``interlock adapter run`` and the service's scheduler
drive. One :meth:`~AdapterRunner.run_once` polls from the saved checkpoint, publishes
the events (acknowledged by JetStream or spooled on disk: never lost), and only then
saves the new checkpoint and acknowledges the poll to the adapter (a queue-backed adapter
deletes its messages there). :meth:`~AdapterRunner.run_forever` repeats it every
``interval``, backing off exponentially (up to ``max_backoff``) while the source is
unavailable, and stops on a refusal or a configuration error.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import msgspec

from interlock.adapters.base import PollingAdapter, SourceUnavailable
from interlock.adapters.checkpoints import FileCheckpointStore
from interlock.sdk.sync import SyncPublisher

__all__ = ["AdapterRunner", "RunStats"]

logger = logging.getLogger(__name__)


class RunStats(msgspec.Struct, kw_only=True):
    """Counters of one runner."""

    polls: int = 0
    events: int = 0
    spooled: int = 0
    failures: int = 0


class AdapterRunner:
    """Polls one adapter and publishes what it finds."""

    def __init__(
        self,
        adapter: PollingAdapter,
        publisher: SyncPublisher,
        checkpoints: FileCheckpointStore,
        *,
        interval: timedelta = timedelta(seconds=30),
        max_backoff: timedelta = timedelta(minutes=5),
    ) -> None:
        self.adapter = adapter
        self.publisher = publisher
        self.checkpoints = checkpoints
        self.interval = interval
        self.max_backoff = max_backoff
        self.stats = RunStats()

    def run_once(self) -> bool:
        """Poll once and publish; return whether the source has more right away."""
        checkpoint = self.checkpoints.load(self.adapter.name)
        result = self.adapter.poll(checkpoint)
        if result.events:
            published = self.publisher.publish_many(result.events)
            self.stats.spooled += published.spooled
        self.checkpoints.save(self.adapter.name, result.checkpoint)
        self.adapter.acknowledge(result)
        self.stats.polls += 1
        self.stats.events += len(result.events)
        if result.events:
            logger.info("adapter %s published %d events", self.adapter.name, len(result.events))
        return result.more

    def run_forever(self, stop: threading.Event) -> None:
        """Poll every ``interval`` until ``stop`` is set; back off while the source is down."""
        backoff = self.interval
        while not stop.is_set():
            try:
                more = self.run_once()
            except SourceUnavailable as exc:
                self.stats.failures += 1
                backoff = min(backoff * 2, self.max_backoff)
                logger.warning("%s; retrying in %s", exc, backoff)
                stop.wait(backoff.total_seconds())
                continue
            backoff = self.interval
            if not more:
                stop.wait(self.interval.total_seconds())
            else:
                time.sleep(0)
