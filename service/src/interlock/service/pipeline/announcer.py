"""Announcing stored firings as ``interlock.rule.fired`` / ``interlock.rule.resolved``.

The pipeline hands each batch's stored firings to an :class:`Announcer` and goes on to
the next batch; the announcer publishes them from its own task. Waiting for JetStream to
acknowledge the announcements inside the pipeline's loop made every batch that fired
one round trip longer — and the pipeline judges deadlines between batches, so with
thousands of deadlines due at once that wait became lateness.

Announcements go through the service's :class:`~interlock.sdk.Publisher`, which spools
them to disk while NATS is away; each carries its firing's id as ``Nats-Msg-Id``, so a
firing replayed after a restart is announced once. The queue is bounded: when the
announcer falls ``limit`` firings behind, :meth:`Announcer.submit` waits (the pipeline
slows down instead of holding an unbounded backlog in memory).

A publish that fails (the spool full, an event the publisher refuses) follows the policy
of long-running loops (:mod:`interlock.sdk.retry`): logged, counted
(:attr:`Announcer.failures`), and the next batch waits for the backoff. Its
announcements are not sent again: the firings are stored, only their events are lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from interlock.rules.engine.firing import Firing
from interlock.sdk import Event, Publisher
from interlock.sdk.errors import SpoolError
from interlock.sdk.retry import Retry
from interlock.sdk.vocabulary import rule_event_name

__all__ = ["Announcer"]

logger = logging.getLogger(__name__)

ANNOUNCE_LINGER = 0.02
"""Seconds firings wait for others before they are announced: at a steady trickle, one
publish of several ``interlock.rule.*`` events instead of one each (a burst fills the
queue and goes at once)."""


class Announcer:
    """Publishes one event per stored firing, in the order the firings were submitted.

    Args:
        publisher: The service's publisher (source ``interlock``).
        limit: Firings waiting to be published before :meth:`submit` waits.
    """

    def __init__(self, publisher: Publisher, *, limit: int = 10_000) -> None:
        self.publisher = publisher
        self.limit = limit
        self.published = 0
        self.failures = 0
        """Publish calls that failed (their announcements lost)."""
        self._retry = Retry(logger, "announcer", expected=(SpoolError,))
        self._waiting: list[Firing] = []
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the publishing task (idempotent)."""
        if self._task is None or self._task.done():
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="interlock-announcer")

    async def submit(self, firings: Sequence[Firing]) -> None:
        """Queue ``firings`` for announcement; waits while the queue is full."""
        if not firings:
            return
        while len(self._waiting) >= self.limit and self._task and not self._task.done():
            self._room.clear()
            await self._room.wait()
        self._waiting.extend(firings)
        self._ready.set()

    async def close(self) -> None:
        """Publish what is queued, then stop the task."""
        task = self._task
        if task is None:
            return
        self._closing = True
        self._ready.set()
        try:
            await task
        finally:
            self._task = None

    def cancel(self) -> None:
        """Stop the task now, dropping what is queued (the pipeline was cancelled)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._room.set()

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            if not self._closing and len(self._waiting) < self.limit:
                await asyncio.sleep(ANNOUNCE_LINGER)  # a trickle's firings, one publish
            self._ready.clear()
            while self._waiting:
                firings, self._waiting = self._waiting, []
                self._room.set()
                await self._publish(firings)
            if self._closing:
                return

    async def _publish(self, firings: Sequence[Firing]) -> None:
        try:
            await self.publisher.publish_many([self._event(firing) for firing in firings])
        except Exception as exc:  # noqa: BLE001 - an announcement must never stop the pipeline
            self.failures += 1
            logger.error("announcing %d firings failed; their events are lost", len(firings))
            await self._retry.pause(exc)
        else:
            self.published += len(firings)
            self._retry.succeeded()

    def _event(self, firing: Firing) -> Event:
        return self.publisher.event(
            rule_event_name(firing.status),
            firing.rule,
            payload={
                "firing_id": str(firing.id),
                "key": firing.key,
                "at": firing.at.isoformat(),
                "window_start": firing.window_start.isoformat() if firing.window_start else None,
                "window_end": firing.window_end.isoformat() if firing.window_end else None,
                "late": firing.late,
                "summary": firing.summary,
                "event_ids": [str(event_id) for event_id in firing.event_ids],
            },
            id=firing.id,
        )
