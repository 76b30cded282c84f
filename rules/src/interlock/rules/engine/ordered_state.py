"""States that see events in event-time order, whatever order they were delivered in.

A sequence (A, then B, then C) and a compound (all of A, B, C within a window) decide on
the *order* of events; deciding as events arrive would make the outcome depend on
delivery (A, C, B in event time delivered as A, B, C, or the other way round). An
:class:`OrderedState` holds an event back until the watermark reaches its ``occurred``
time — then every event of that time or earlier has been fed — and takes the held events
in ``(occurred, id)`` order. So every delivery order of events fed before the watermark
passes them gives the same firings.

In the service this costs no latency: the pipeline feeds a batch and then advances the
watermark to the time the batch was stored (or now, when caught up), so a batch's events
are taken in the same step. An event whose ``occurred`` is ahead of the watermark (a
producer's clock running fast) waits until the watermark reaches it
(:meth:`OrderedState.next_due`). An event already behind the watermark when it arrives
(late data) is taken at once: what was decided before it stays decided.

Held events are part of the exported state, so a restart loses none.
"""

from __future__ import annotations

import bisect
import dataclasses
from abc import abstractmethod
from datetime import datetime

import msgspec

from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing
from interlock.rules.engine.trigger_state import Occurrence, TriggerState

__all__ = ["Held", "OrderedState"]


class Held(msgspec.Struct, frozen=True, array_like=True):
    """An event held back until the watermark reaches it, with the roles it matched."""

    occurred: datetime
    id: str
    """The event id as text: orders events of the same instant the same way every time."""
    roles: tuple[int, ...]
    occurrence: Occurrence


def _occurred(item: Held) -> datetime:
    return item.occurred


def _order(item: Held) -> tuple[datetime, str]:
    return item.occurred, item.id


class OrderedState(TriggerState):
    """A trigger state fed in event-time order (see the module documentation).

    Subclasses implement :meth:`take` (an event, in order) and keep their held events in
    ``self.data.held`` (a sorted list of :class:`Held`).
    """

    @abstractmethod
    def take(self, roles: tuple[int, ...], occurrence: Occurrence, tick: Tick) -> list[Firing]:
        """Take one event, in event-time order."""

    def on_event(self, roles: tuple[int, ...], occurrence: Occurrence, tick: Tick) -> list[Firing]:
        """Hold the event until the watermark reaches it; late events are taken at once."""
        if occurrence.occurred <= tick.watermark:
            return self.take(roles, occurrence, tick)
        held: list[Held] = self.data.held
        item = Held(occurrence.occurred, str(occurrence.id), roles, occurrence)
        at = bisect.bisect_left(held, _order(item), key=_order)
        if at < len(held) and _order(held[at]) == _order(item):
            return []  # the same event again (a re-delivery): held once
        held.insert(at, item)
        return []

    def judge(self, tick: Tick) -> list[Firing]:
        """Take the held events the watermark has reached, in order."""
        held: list[Held] = self.data.held
        ready = bisect.bisect_right(held, tick.watermark, key=_occurred)
        if not ready:
            return []
        taken, self.data.held = held[:ready], held[ready:]
        firings: list[Firing] = []
        for item in taken:
            # Taken as if the watermark had just reached it: what the later events the
            # batch brought cannot yet have expired.
            at_it = dataclasses.replace(tick, watermark=item.occurred)
            firings.extend(self.take(item.roles, item.occurrence, at_it))
        return firings

    def next_due(self) -> datetime | None:
        """The time of the earliest held event."""
        held: list[Held] = self.data.held
        return held[0].occurred if held else None
