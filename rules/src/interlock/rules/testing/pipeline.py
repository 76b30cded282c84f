"""The live pipeline's way of feeding the engine, in simulated time.

The service's consumer (:mod:`interlock.service.pipeline.consumer`) reads the stream in
the order events were stored, feeds each batch (``engine.feed_batch``), then moves time
(``engine.advance(now, watermark)``) with the **watermark rule**: while stored events
still wait to be fed, the watermark is the time the last event fed was stored (never
past the wall clock); once none waits, it is the wall clock. Caught up, the consumer
wakes at the engine's next due time and advances to it.

:class:`SimulatedPipeline` does the same over a simulated stream, so a scenario predicts
production. Its **position** is the store time the consumer has read up to: the wall
clock when caught up. A **lag** simulates a backlog (other traffic the scenario does not
spell out): the position runs ``lag`` behind the wall clock, so each event is fed
``lag`` after it was stored and a deadline is judged ``lag`` after it passed — marked
``late`` past the engine's tolerance, instead of missed early. The position never goes
back: a lag that grows stalls the consumer until the wall clock is ``lag`` ahead; a lag
that shrinks (or ends) makes it catch up at once, in batches, as the pipeline does.
"""

from __future__ import annotations

import bisect
import itertools
from datetime import datetime, timedelta

from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing
from interlock.sdk.event import Event

__all__ = ["BATCH_SIZE", "SimulatedPipeline"]

BATCH_SIZE = 256
"""The service's default ``engine.consumer_batch_size``."""


class _Stored:
    __slots__ = ("event", "order", "stored")

    def __init__(self, stored: datetime, order: int, event: Event) -> None:
        self.stored = stored
        self.order = order
        self.event = event

    def __lt__(self, other: _Stored) -> bool:
        return (self.stored, self.order) < (other.stored, other.order)


def _stored_at(item: _Stored) -> datetime:
    return item.stored


class SimulatedPipeline:
    """A stream of stored events and the consumer that feeds them to ``engine``.

    Args:
        engine: The engine to feed (created at ``now``).
        now: The wall-clock time the simulation starts at.
        batch_size: The most events fed in one batch.
    """

    def __init__(self, engine: Engine, now: datetime, batch_size: int = BATCH_SIZE) -> None:
        self.engine = engine
        self.now = now
        self.position = now
        """The store time up to which the consumer has read the stream."""
        self.batch_size = batch_size
        self._waiting: list[_Stored] = []
        self._order = itertools.count()

    def publish(self, event: Event, stored: datetime) -> None:
        """Store ``event`` in the stream at ``stored`` (not before :attr:`now`)."""
        if stored < self.now:
            raise ValueError(f"an event cannot be stored in the past ({stored} < {self.now})")
        item = _Stored(stored, next(self._order), event)
        waiting = self._waiting
        if not waiting or waiting[-1].stored <= stored:
            waiting.append(item)  # in stored order, as a stream is read: no search
        else:
            bisect.insort(waiting, item)

    @property
    def waiting(self) -> int:
        """Events stored by now and not fed yet (the consumer's backlog)."""
        return self._count_stored_by(self.now)

    def _count_stored_by(self, moment: datetime) -> int:
        return bisect.bisect_right(self._waiting, moment, key=_stored_at)

    def _reached(self, stored: datetime, lag: timedelta) -> datetime:
        """The wall time at which the position reaches ``stored``."""
        return self.now if stored <= self.position else max(self.now, stored + lag)

    def run_until(self, target: datetime, lag: timedelta = timedelta()) -> list[Firing]:
        """Move the wall clock to ``target``, feeding and judging as the pipeline would.

        Events are fed when the position reaches their store time, in stored order, in
        batches; a due deadline is judged when the position reaches it (events stored
        at the same time are fed first).
        """
        if target < self.now:
            raise ValueError(f"time cannot go back ({target} < {self.now})")
        firings: list[Firing] = []
        while True:
            feed_at = self._reached(self._waiting[0].stored, lag) if self._waiting else None
            due = self.engine.next_due()
            judge_at = self._reached(due, lag) if due is not None else None
            if (
                feed_at is not None
                and feed_at <= target
                and (judge_at is None or feed_at <= judge_at)
            ):
                self._move(feed_at, lag)
                firings.extend(self._feed())
            elif judge_at is not None and judge_at <= target:
                self._move(judge_at, lag)
                firings.extend(self.engine.advance(self.now, self.position))
            else:
                break
        self._move(target, lag)
        firings.extend(self.engine.advance(self.now, self.position))
        return firings

    def _move(self, now: datetime, lag: timedelta) -> None:
        self.now = now
        self.position = max(self.position, now - lag)

    def _feed(self) -> list[Firing]:
        count = self._count_stored_by(self.position)
        batch = self._waiting[: min(count, self.batch_size)]
        del self._waiting[: len(batch)]
        more = self._waiting and self._waiting[0].stored <= self.position
        watermark = min(self.position, batch[-1].stored) if more else self.position
        firings = self.engine.feed_batch([item.event for item in batch])
        firings.extend(self.engine.advance(self.now, watermark))
        return firings
