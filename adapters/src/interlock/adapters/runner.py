"""Running a polling adapter: poll, publish, checkpoint; back off while the source is down.

:class:`AdapterRunner` is what ``interlock adapter run`` and the service's scheduler
drive:

- :meth:`~AdapterRunner.run_once` polls from the saved checkpoint, publishes the events
  (acknowledged by JetStream or spooled on disk: never lost), and only then saves the
  new checkpoint and acknowledges the poll to the adapter (a queue-backed adapter
  deletes its messages there);
- :meth:`~AdapterRunner.drain` polls until the source has nothing more right away (a
  poll stopped at a page limit says it has more); a poll that fails is counted
  (:attr:`RunStats.failures`) and raised;
- :meth:`~AdapterRunner.run_forever` drains every ``interval``, following the policy of
  long-running loops (:mod:`interlock.sdk.retry`): while the source is unavailable it
  backs off from twice the interval, doubling up to ``max_backoff``; an unexpected error
  is logged with its traceback and counted, and it goes on; it stops on a refusal
  (:class:`~interlock.adapters.base.SourceRefused`) or a configuration error.

Checkpoints are kept by a :class:`~interlock.adapters.checkpoints.CheckpointStore`.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import msgspec

from interlock.adapters.base import PollingAdapter, SourceError, SourceRefused
from interlock.adapters.checkpoints import CheckpointStore
from interlock.sdk.errors import ConfigurationError
from interlock.sdk.retry import Backoff, Retry
from interlock.sdk.sync import SyncPublisher

__all__ = ["AdapterRunner", "RunStats"]

logger = logging.getLogger(__name__)


class RunStats(msgspec.Struct, kw_only=True):
    """Counters of one runner."""

    polls: int = 0
    events: int = 0
    spooled: int = 0
    failures: int = 0
    """Drains that ended in an error (the source down, or anything else)."""


class AdapterRunner:
    """Polls one adapter and publishes what it finds."""

    def __init__(
        self,
        adapter: PollingAdapter,
        publisher: SyncPublisher,
        checkpoints: CheckpointStore,
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

    def drain(self, stop: threading.Event | None = None) -> int:
        """Poll until the source has nothing more right away (or ``stop`` is set).

        Returns the number of polls made.

        Raises:
            Exception: what a poll raised, counted in :attr:`RunStats.failures` first.
        """
        polls = 0
        try:
            while True:
                polls += 1
                if not self.run_once() or (stop is not None and stop.is_set()):
                    return polls
        except Exception:
            self.stats.failures += 1
            raise

    def run_forever(self, stop: threading.Event) -> None:
        """Drain every ``interval`` until ``stop`` is set; back off while the source is down.

        Raises:
            SourceRefused: the source refused (credentials, a missing bucket or table).
            ConfigurationError: an option or the saved checkpoint is invalid.
        """
        first = max(min(self.interval * 2, self.max_backoff).total_seconds(), 0.01)
        retry = Retry(
            logger,
            f"adapter {self.adapter.name}",
            expected=(SourceError,),
            backoff=Backoff(first, max(first, self.max_backoff.total_seconds()), jitter=False),
        )
        while not stop.is_set():
            try:
                self.drain(stop)
            except (SourceRefused, ConfigurationError):
                raise
            except Exception as exc:  # noqa: BLE001 - the loop's boundary: Retry logs it
                stop.wait(retry.failed(exc))
                continue
            retry.succeeded()
            stop.wait(self.interval.total_seconds())
