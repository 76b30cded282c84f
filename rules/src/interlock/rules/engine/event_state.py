"""State of an event trigger: each matching event, or N of them within a sliding window.

With ``threshold`` 1 every matching event fires. With ``threshold`` N, matching events
are kept per key, ordered by their ``occurred`` time; when N of them lie within
``within`` of each other the trigger fires with those events and counting starts afresh
for that key. When an event is fed, the key's events more than ``within`` before the
newest one, or before the watermark, are forgotten (a late event older than that does
not count). Out-of-order events take their place by ``occurred``.
"""

from __future__ import annotations

import bisect
import uuid
from datetime import datetime, timedelta

import msgspec

from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing, firing_id, key_of
from interlock.rules.triggers import EventTrigger
from interlock.sdk.durations import format_duration, parse_duration
from interlock.sdk.event import Event

__all__ = ["EventState", "EventStateData"]


class EventStateData(msgspec.Struct, kw_only=True):
    """Serializable state: per key, the (occurred, id) of events counted so far."""

    pending: dict[str, list[tuple[datetime, uuid.UUID]]] = msgspec.field(default_factory=dict)


class EventState:
    """Counts matching events per key and fires at the threshold."""

    def __init__(self, rule: str, trigger: EventTrigger, for_each: list[str] | None = None) -> None:
        self.rule = rule
        self.threshold = trigger.threshold
        self.within = parse_duration(trigger.within) if trigger.within else timedelta(0)
        self.for_each = trigger.for_each if for_each is None else for_each
        self.data = EventStateData()

    def on_event(self, event: Event, tick: Tick) -> list[Firing]:
        """Count one matching event; return the firing it completes, if any."""
        key = key_of(event, self.for_each)
        if key is None:
            return []
        if self.threshold == 1:
            return [
                Firing(
                    id=firing_id(self.rule, key, "fired", event.id),
                    rule=self.rule,
                    key=key,
                    status="fired",
                    at=event.occurred,
                    event_ids=[event.id],
                    summary=f"{event.event} for {event.resource_id}",
                )
            ]
        entries = self.data.pending.setdefault(key, [])
        bisect.insort(entries, (event.occurred, event.id))
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
            return []
        del self.data.pending[key]
        ids = [event_id for _, event_id in entries]
        return [
            Firing(
                id=firing_id(self.rule, key, "fired", *ids),
                rule=self.rule,
                key=key,
                status="fired",
                at=newest,
                window_start=entries[0][0],
                window_end=newest,
                event_ids=ids,
                summary=f"{len(ids)} matching events within {format_duration(self.within)}",
            )
        ]

    def advance(self, tick: Tick) -> list[Firing]:
        """Forget events that can no longer be part of a threshold."""
        if self.threshold > 1:
            cutoff = tick.watermark - self.within
            for key in [
                key for key, entries in self.data.pending.items() if entries[-1][0] < cutoff
            ]:
                del self.data.pending[key]
        return []

    def next_due(self) -> datetime | None:
        """Event triggers never fire on time alone."""
        return None

    def restore(self, data: EventStateData) -> None:
        """Take over exported state."""
        self.data = data
