"""State of compound triggers: all / any / at least N of several triggers within a window.

Each sub-trigger is an event trigger with its own threshold, keyed by the compound's
``for_each``. When a sub-trigger fires for a key, the time of that firing (the
``occurred`` of the event that completed it) is recorded for the key; when ``require``
distinct sub-triggers have fired within ``within`` of each other, the compound fires
with their events and the key starts afresh. A sub-trigger firing again replaces its
earlier time.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from interlock.rules.engine.context import Tick
from interlock.rules.engine.event_state import EventState, EventStateData
from interlock.rules.engine.firing import Firing, firing_id
from interlock.rules.triggers import CompoundTrigger
from interlock.sdk.durations import format_duration, parse_duration
from interlock.sdk.event import Event

__all__ = ["CompoundState", "CompoundStateData"]


class SubFiring(msgspec.Struct, kw_only=True):
    """When a sub-trigger last fired for a key, and with which events."""

    at: datetime
    event_ids: list[uuid.UUID]


class CompoundStateData(msgspec.Struct, kw_only=True):
    """Serializable state: per key, the latest firing of each sub-trigger (by index)."""

    fired: dict[str, dict[int, SubFiring]] = msgspec.field(default_factory=dict)
    subs: list[EventStateData] = msgspec.field(default_factory=list)


class CompoundState:
    """Combines sub-trigger firings per key."""

    def __init__(self, rule: str, trigger: CompoundTrigger) -> None:
        self.rule = rule
        self.within = parse_duration(trigger.within)
        count = len(trigger.triggers)
        if trigger.require == "all":
            self.required = count
        elif trigger.require == "any":
            self.required = 1
        else:
            self.required = trigger.require
        self.subs = [EventState(rule, sub, trigger.for_each) for sub in trigger.triggers]
        self.data = CompoundStateData(subs=[sub.data for sub in self.subs])

    def on_event(self, index: int, event: Event, tick: Tick) -> list[Firing]:
        """Feed an event that matched sub-trigger ``index``."""
        firings = []
        for sub_firing in self.subs[index].on_event(event, tick):
            fired = self.data.fired.setdefault(sub_firing.key, {})
            fired[index] = SubFiring(at=sub_firing.at, event_ids=sub_firing.event_ids)
            cutoff = sub_firing.at - self.within
            for stale in [i for i, item in fired.items() if item.at < cutoff]:
                del fired[stale]
            if len(fired) >= self.required:
                del self.data.fired[sub_firing.key]
                firings.append(self._fire(sub_firing.key, fired))
        return firings

    def _fire(self, key: str, fired: dict[int, SubFiring]) -> Firing:
        ordered = sorted(fired.values(), key=lambda item: item.at)
        ids = [event_id for item in ordered for event_id in item.event_ids]
        return Firing(
            id=firing_id(self.rule, key, "fired", *ids),
            rule=self.rule,
            key=key,
            status="fired",
            at=ordered[-1].at,
            window_start=ordered[0].at,
            window_end=ordered[-1].at,
            event_ids=ids,
            summary=(
                f"{len(fired)} of {len(self.subs)} triggers within {format_duration(self.within)}"
            ),
        )

    def advance(self, tick: Tick) -> list[Firing]:
        """Forget sub-trigger firings too old to combine with any future one."""
        cutoff = tick.watermark - self.within
        for key in list(self.data.fired):
            fired = self.data.fired[key]
            for stale in [i for i, item in fired.items() if item.at < cutoff]:
                del fired[stale]
            if not fired:
                del self.data.fired[key]
        for sub in self.subs:
            sub.advance(tick)
        return []

    def next_due(self) -> datetime | None:
        """Compound triggers never fire on time alone."""
        return None

    def restore(self, data: CompoundStateData) -> None:
        """Take over exported state."""
        self.data = data
        for sub, sub_data in zip(self.subs, data.subs, strict=True):
            sub.data = sub_data
