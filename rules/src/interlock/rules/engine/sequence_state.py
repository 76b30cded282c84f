"""State of sequence triggers: steps in order, within a window, correlated on a key.

Per key one partial match is kept: the next step expected, when the first step happened,
and the events so far. An event matching the next step, no earlier than the previous
step and within ``within`` of the first, advances it; the last step fires. An event
matching the first step starts a partial, or moves the start of one that has only its
first step forward (so a repeated first step never makes a sequence look older than it
is). A partial whose first step is more than ``within`` before the event, or before the
watermark, is dropped. Events of other steps are ignored, and an event already part of
the partial (a re-delivery) counts once.

Events are taken in event-time order (an :class:`~.ordered_state.OrderedState`): A, B, C
in event time fire however they were delivered, as long as they arrive before the
watermark passes them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing, firing_id
from interlock.rules.engine.ordered_state import Held, OrderedState
from interlock.rules.engine.trigger_state import Occurrence
from interlock.rules.triggers import EventMatch, SequenceTrigger
from interlock.sdk.durations import format_duration, parse_duration

__all__ = ["SequenceState", "SequenceStateData"]


class Partial(msgspec.Struct, kw_only=True):
    """A sequence under way for one key."""

    step: int
    """Index of the next step expected."""
    start: datetime
    last: datetime
    event_ids: list[uuid.UUID]


class SequenceStateData(msgspec.Struct, kw_only=True):
    """Serializable state: the partial sequence of each key, and the held events."""

    partial: dict[str, Partial] = msgspec.field(default_factory=dict)
    held: list[Held] = msgspec.field(default_factory=list)


class SequenceState(OrderedState):
    """Follows each key through the steps."""

    data_type = SequenceStateData

    def __init__(self, rule: str, trigger: SequenceTrigger, tick: Tick) -> None:
        self.rule = rule
        self.trigger = trigger
        self.steps = len(trigger.steps)
        self.within = parse_duration(trigger.within)
        self.data = SequenceStateData()

    def matches(self) -> list[EventMatch]:
        """One per step, in order."""
        return list(self.trigger.steps)

    def take(self, roles: tuple[int, ...], occurrence: Occurrence, tick: Tick) -> list[Firing]:
        """Feed an event (in event-time order) that matched the given steps."""
        key = occurrence.key
        at = occurrence.occurred
        partial = self.data.partial.get(key)
        if partial is not None and occurrence.id in partial.event_ids:
            return []  # a re-delivery: it counts once
        if partial is not None and max(at, tick.watermark) - partial.start > self.within:
            del self.data.partial[key]
            partial = None
        if partial is not None and partial.step in roles and at >= partial.last:
            partial.step += 1
            partial.last = at
            partial.event_ids.append(occurrence.id)
            if partial.step == self.steps:
                del self.data.partial[key]
                return [self._fire(key, partial)]
            return []
        if 0 in roles and (partial is None or (partial.step == 1 and at >= partial.start)):
            self.data.partial[key] = Partial(step=1, start=at, last=at, event_ids=[occurrence.id])
        return []

    def _fire(self, key: str, partial: Partial) -> Firing:
        return Firing(
            id=firing_id(self.rule, key, "fired", *partial.event_ids),
            rule=self.rule,
            key=key,
            status="fired",
            at=partial.last,
            window_start=partial.start,
            window_end=partial.last,
            event_ids=list(partial.event_ids),
            summary=(
                f"{self.steps} steps in order within {format_duration(self.within)}"
                + (f" for {key}" if key else "")
            ),
        )

    def prune(self, tick: Tick) -> bool:
        """Drop partial sequences that can no longer complete in time."""
        cutoff = tick.watermark - self.within
        for key in [key for key, item in self.data.partial.items() if item.start < cutoff]:
            del self.data.partial[key]
        return bool(self.data.partial)
