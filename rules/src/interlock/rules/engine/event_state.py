"""State of an event trigger: each matching event, or N of them within a sliding window.

With ``threshold`` 1 every matching event fires, as it arrives. With ``threshold`` N,
events are taken in event-time order (an :class:`~.ordered_state.OrderedState`, so the
firings do not depend on delivery order) and kept per key; when N of them lie within
``within`` of each other the trigger fires with those events and counting starts afresh
for that key. When an event is taken, the key's events more than ``within`` before the
newest one, or before the watermark, are forgotten (a late event older than that does
not count). An event id counts once, also against the key's last firing: a re-delivered
event (two replicas of an adapter, a re-send after the stream's de-duplication window)
does not count twice.
"""

from __future__ import annotations

import bisect
import uuid
from datetime import datetime, timedelta

import msgspec

from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing, firing_id
from interlock.rules.engine.ordered_state import Held, OrderedState
from interlock.rules.engine.trigger_state import Occurrence
from interlock.rules.triggers import EventMatch, EventTrigger
from interlock.sdk.durations import format_duration, parse_duration

__all__ = ["EventState", "EventStateData", "Threshold"]


class EventStateData(msgspec.Struct, kw_only=True):
    """Serializable state: per key, the (occurred, id) of events counted so far."""

    pending: dict[str, list[tuple[datetime, uuid.UUID]]] = msgspec.field(default_factory=dict)
    fired: dict[str, list[uuid.UUID]] = msgspec.field(default_factory=dict)
    """Per key, the events of its last firing (a re-delivery of one does not count)."""
    held: list[Held] = msgspec.field(default_factory=list)


class Threshold:
    """N events within a window, per key.

    The counting that event triggers and the parts of a compound share.
    """

    def __init__(self, rule: str, threshold: int, within: timedelta) -> None:
        self.rule = rule
        self.threshold = threshold
        self.within = within
        self.data = EventStateData()

    def count(self, occurrence: Occurrence, tick: Tick) -> Firing | None:
        """Count one event; the firing it completes, if any."""
        key = occurrence.key
        if self.threshold == 1:
            return Firing(
                id=firing_id(self.rule, key, "fired", occurrence.id),
                rule=self.rule,
                key=key,
                status="fired",
                at=occurrence.occurred,
                event_ids=[occurrence.id],
                summary=f"{occurrence.name} for {occurrence.resource_id}",
            )
        completed = self.complete(occurrence, tick)
        if completed is None:
            return None
        ids = [event_id for _, event_id in completed]
        return Firing(
            id=firing_id(self.rule, key, "fired", *ids),
            rule=self.rule,
            key=key,
            status="fired",
            at=completed[-1][0],
            window_start=completed[0][0],
            window_end=completed[-1][0],
            event_ids=ids,
            summary=f"{len(ids)} matching events within {format_duration(self.within)}",
        )

    def complete(
        self, occurrence: Occurrence, tick: Tick
    ) -> list[tuple[datetime, uuid.UUID]] | None:
        """Count one event; the events of the threshold it completes, oldest first."""
        key = occurrence.key
        if self.threshold == 1:
            return [(occurrence.occurred, occurrence.id)]
        entries = self.data.pending.setdefault(key, [])
        if any(event_id == occurrence.id for _, event_id in entries) or (
            occurrence.id in self.data.fired.get(key, ())
        ):
            if not entries:
                del self.data.pending[key]
            return None  # the same event again (a re-delivery): it counts once
        bisect.insort(entries, (occurrence.occurred, occurrence.id))
        newest = entries[-1][0]
        # Events more than `within` before the newest, or before the watermark, can no
        # longer count: deciding this at every event (not at the periodic prune) keeps
        # the outcome independent of how often the engine is advanced.
        cutoff = max(newest, tick.watermark) - self.within
        while entries and entries[0][0] < cutoff:
            entries.pop(0)
        if len(entries) < self.threshold:
            if not entries:
                del self.data.pending[key]
            return None
        del self.data.pending[key]
        self.data.fired[key] = [event_id for _, event_id in entries]
        return entries

    def prune(self, tick: Tick) -> bool:
        """Forget events that can no longer be part of a threshold; whether any are left."""
        if self.threshold > 1:
            cutoff = tick.watermark - self.within
            for key in [
                key for key, entries in self.data.pending.items() if entries[-1][0] < cutoff
            ]:
                del self.data.pending[key]
            self.data.fired.clear()  # a re-delivery this much later counts anew
        return bool(self.data.pending)


class EventState(OrderedState):
    """Counts matching events per key and fires at the threshold."""

    data_type = EventStateData

    def __init__(self, rule: str, trigger: EventTrigger, tick: Tick) -> None:
        self.rule = rule
        self.trigger = trigger
        within = parse_duration(trigger.within) if trigger.within else timedelta(0)
        self.counter = Threshold(rule, trigger.threshold, within)
        self.data = self.counter.data

    def matches(self) -> list[EventMatch]:
        """One: the trigger's match."""
        return [self.trigger.match]

    def on_event(self, roles: tuple[int, ...], occurrence: Occurrence, tick: Tick) -> list[Firing]:
        """Fire on each event (threshold 1), or hold it to be counted in event-time order."""
        if self.counter.threshold == 1:
            return self.take(roles, occurrence, tick)
        return super().on_event(roles, occurrence, tick)

    def take(self, roles: tuple[int, ...], occurrence: Occurrence, tick: Tick) -> list[Firing]:
        """Count one matching event; return the firing it completes, if any."""
        firing = self.counter.count(occurrence, tick)
        return [firing] if firing is not None else []

    def prune(self, tick: Tick) -> bool:
        """Forget events that can no longer be part of a threshold."""
        return self.counter.prune(tick)

    def restore(self, data: EventStateData) -> None:
        """Take over exported state."""
        self.data = self.counter.data = data
