"""State of compound triggers: all / any / at least N of several event triggers within a window.

Each part is an event trigger with its own threshold, keyed by the compound's
``for_each``. When a part fires for a key, the time of that firing (the ``occurred`` of
the event that completed it) is recorded for the key; when ``require`` distinct parts
have fired within ``within`` of each other, the compound fires with their events and the
key starts afresh. A part firing again replaces its earlier time.

Events are taken in event-time order (an :class:`~.ordered_state.OrderedState`), so the
outcome does not depend on the order they were delivered in.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import msgspec

from interlock.rules.engine.context import Tick
from interlock.rules.engine.event_state import EventStateData, Threshold
from interlock.rules.engine.firing import Firing, firing_id
from interlock.rules.engine.ordered_state import Held, OrderedState
from interlock.rules.engine.trigger_state import Occurrence
from interlock.rules.triggers import CompoundTrigger, EventMatch
from interlock.sdk.durations import format_duration, parse_duration

__all__ = ["CompoundState", "CompoundStateData"]


class SubFiring(msgspec.Struct, kw_only=True):
    """When a part last fired for a key, and with which events."""

    at: datetime
    event_ids: list[uuid.UUID]


class CompoundStateData(msgspec.Struct, kw_only=True):
    """Serializable state: per key, the latest firing of each part (by index)."""

    fired: dict[str, dict[int, SubFiring]] = msgspec.field(default_factory=dict)
    subs: list[EventStateData] = msgspec.field(default_factory=list)
    held: list[Held] = msgspec.field(default_factory=list)


class CompoundState(OrderedState):
    """Combines the firings of the parts per key."""

    data_type = CompoundStateData

    def __init__(self, rule: str, trigger: CompoundTrigger, tick: Tick) -> None:
        self.rule = rule
        self.trigger = trigger
        self.within = parse_duration(trigger.within)
        count = len(trigger.triggers)
        if trigger.require == "all":
            self.required = count
        elif trigger.require == "any":
            self.required = 1
        else:
            self.required = trigger.require
        self.parts = [
            Threshold(
                rule,
                part.threshold,
                parse_duration(part.within) if part.within else timedelta(0),
            )
            for part in trigger.triggers
        ]
        self.data = CompoundStateData(subs=[part.data for part in self.parts])

    def matches(self) -> list[EventMatch]:
        """One per part, in order."""
        return [part.match for part in self.trigger.triggers]

    def take(self, roles: tuple[int, ...], occurrence: Occurrence, tick: Tick) -> list[Firing]:
        """Feed an event (in event-time order) to the parts it matched."""
        firings = []
        key = occurrence.key
        for index in roles:
            completed = self.parts[index].complete(occurrence, tick)
            if completed is None:
                continue
            at = completed[-1][0]
            fired = self.data.fired.setdefault(key, {})
            fired[index] = SubFiring(at=at, event_ids=[event_id for _, event_id in completed])
            cutoff = at - self.within
            for stale in [i for i, item in fired.items() if item.at < cutoff]:
                del fired[stale]
            if len(fired) >= self.required:
                del self.data.fired[key]
                firings.append(self._fire(key, fired))
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
                f"{len(fired)} of {len(self.parts)} triggers within {format_duration(self.within)}"
            ),
        )

    def prune(self, tick: Tick) -> bool:
        """Forget part firings too old to combine with any future one."""
        cutoff = tick.watermark - self.within
        for key in list(self.data.fired):
            fired = self.data.fired[key]
            for stale in [i for i, item in fired.items() if item.at < cutoff]:
                del fired[stale]
            if not fired:
                del self.data.fired[key]
        left = [part.prune(tick) for part in self.parts]
        return bool(self.data.fired) or any(left)

    def restore(self, data: CompoundStateData) -> None:
        """Take over exported state."""
        self.data = data
        for part, part_data in zip(self.parts, data.subs, strict=True):
            part.data = part_data
