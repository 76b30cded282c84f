"""Absence within a duration after another event: ``job.finished`` within 2 h of start.

Every ``after`` event of a key opens its own window ``[t, t + within)``; an expected
event of the key counts toward every window of the key that holds its ``occurred``
time. A window that gets ``count`` expected events is met and forgotten; one judged
with fewer misses (see :mod:`.absence_base`). So two runs started at 0 h and 1 h and one
finish at 1 h 30 meet both windows, in whatever order the three events arrive: the
outcome depends on the events, never on their delivery order.

Expected events are kept ``within`` plus the engine's ``late_horizon`` behind the
watermark, so that an opening event delivered late still finds the events of its window
(and a miss is resolved by an expected event that comes after it, without end).
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterator
from datetime import datetime

import msgspec

from interlock.rules.engine.absence_base import AbsenceBase, Missed, V1Data, missed_view
from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing
from interlock.rules.engine.trigger_state import Occurrence, WindowView
from interlock.rules.triggers import AbsenceTrigger, AfterWindow, EventMatch
from interlock.sdk.durations import parse_duration

__all__ = ["AfterAbsence", "AfterAbsenceData"]

_EXPECT = 0
_AFTER = 1
_V1_OPENER = uuid.UUID("9a3c1f0e-63b2-4b87-9d57-5f8e0f1c2b44")
"""Names the opener of a window carried over from a version-1 checkpoint."""


class Opened(msgspec.Struct, kw_only=True):
    """A window opened by an ``after`` event, and the expected events it counted."""

    by: uuid.UUID
    """The event that opened it."""
    start: datetime
    deadline: datetime
    event_ids: list[uuid.UUID] = msgspec.field(default_factory=list)


class AfterAbsenceData(msgspec.Struct, kw_only=True):
    """Serializable state of an after-window absence."""

    open: dict[str, list[Opened]] = msgspec.field(default_factory=dict)
    """Per key, its windows not judged yet and not met."""
    seen: dict[str, dict[uuid.UUID, datetime]] = msgspec.field(default_factory=dict)
    """Per key, the expected events still able to count for a window or resolve a miss."""
    openers: dict[str, dict[uuid.UUID, datetime]] = msgspec.field(default_factory=dict)
    """Per key, the ``after`` events seen within the horizon (an id opens one window)."""
    missed: dict[str, list[Missed]] = msgspec.field(default_factory=dict)


class AfterAbsence(AbsenceBase):
    """Watches one window per ``after`` event, per key."""

    data_type = AfterAbsenceData

    def __init__(self, rule: str, trigger: AbsenceTrigger, tick: Tick) -> None:
        super().__init__(rule, trigger)
        assert isinstance(trigger.window, AfterWindow)
        self.window = trigger.window
        self.within = parse_duration(trigger.window.within)
        self.data = AfterAbsenceData()
        self._heap: list[tuple[datetime, str, datetime, str]] = []

    def matches(self) -> list[EventMatch]:
        """Role 0: the expected events; role 1: the events that open a window."""
        return [self.trigger.expect, self.window.after]

    def on_event(self, roles: tuple[int, ...], occurrence: Occurrence, tick: Tick) -> list[Firing]:
        """Open a window (role 1) and/or count an expected event (role 0)."""
        key = occurrence.key
        if not self.declared(key):
            return []
        firings: list[Firing] = []
        if _AFTER in roles:
            self._open(key, occurrence)
        if _EXPECT in roles:
            firings.extend(self._expected(key, occurrence))
        return firings

    def _open(self, key: str, occurrence: Occurrence) -> None:
        openers = self.data.openers.setdefault(key, {})
        if occurrence.id in openers:
            return  # the same event again: one window
        openers[occurrence.id] = occurrence.occurred
        start = occurrence.occurred
        window = Opened(by=occurrence.id, start=start, deadline=start + self.within)
        for event_id, occurred in self.data.seen.get(key, {}).items():
            if window.start <= occurred < window.deadline:
                window.event_ids.append(event_id)
        if len(window.event_ids) >= self.count:
            return  # met already
        self.data.open.setdefault(key, []).append(window)
        self._push(key, window)

    def _push(self, key: str, window: Opened) -> None:
        heapq.heappush(
            self._heap, (window.deadline + self.grace, key, window.start, str(window.by))
        )

    def _expected(self, key: str, occurrence: Occurrence) -> list[Firing]:
        seen = self.data.seen.setdefault(key, {})
        if occurrence.id in seen:
            return []  # the same event again: it counts once
        seen[occurrence.id] = occurrence.occurred
        windows = self.data.open.get(key, [])
        for window in list(windows):
            if window.start <= occurrence.occurred < window.deadline:
                window.event_ids.append(occurrence.id)
                if len(window.event_ids) >= self.count:
                    windows.remove(window)  # met; its heap entry goes stale
        if not windows:
            self.data.open.pop(key, None)
        firings = []
        for missed in list(self.data.missed.get(key, [])):
            if occurrence.occurred >= missed.start:
                pair = [(occurrence.occurred, occurrence.id)]
                resolved = self.resolution(key, missed, pair, occurrence.name)
                if resolved is not None:
                    self._forget_miss(key, missed)
                    firings.append(resolved)
        return firings

    def _forget_miss(self, key: str, missed: Missed) -> None:
        misses = self.data.missed[key]
        misses.remove(missed)
        if not misses:
            del self.data.missed[key]

    # -- judging ---------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest deadline plus grace of an open window."""
        while self._heap:
            due, key, start, by = self._heap[0]
            if self._window(key, start, by) is not None:
                return due
            heapq.heappop(self._heap)  # stale: met
        return None

    def _window(self, key: str, start: datetime, by: str) -> Opened | None:
        windows: list[Opened] = self.data.open.get(key, [])
        for window in windows:
            if window.start == start and str(window.by) == by:
                return window
        return None

    def judge(self, tick: Tick) -> list[Firing]:
        """Judge every window whose deadline plus grace the watermark has passed."""
        firings: list[Firing] = []
        while (due := self.next_due()) is not None and due <= tick.watermark:
            _, key, start, by = heapq.heappop(self._heap)
            window = self._window(key, start, by)
            assert window is not None
            windows = self.data.open[key]
            windows.remove(window)
            if not windows:
                del self.data.open[key]
            firings.extend(self._miss_window(key, window, tick))
        return firings

    def _miss_window(self, key: str, window: Opened, tick: Tick) -> list[Firing]:
        seen = self.data.seen.get(key, {})
        ids = sorted(window.event_ids, key=lambda event_id: (seen.get(event_id), event_id))
        firings = [self.miss(key, window.start, window.deadline, len(ids), ids, tick)]
        missed = Missed(start=window.start, deadline=window.deadline, arrived=len(ids), counted=ids)
        later = [
            (occurred, event_id)
            for event_id, occurred in seen.items()
            if occurred >= window.deadline
        ]
        resolved = self.resolution(key, missed, later, self.trigger.expect.names[0])
        if resolved is not None:
            firings.append(resolved)
        else:
            self.data.missed.setdefault(key, []).append(missed)
        return firings

    def prune(self, tick: Tick) -> bool:
        """Forget expected events and openers no window within the horizon could take."""
        cutoff = tick.watermark - tick.horizon - self.within
        for kept_by_key in (self.data.seen, self.data.openers):
            for key in list(kept_by_key):
                kept = {event_id: at for event_id, at in kept_by_key[key].items() if at >= cutoff}
                if kept:
                    kept_by_key[key] = kept
                else:
                    del kept_by_key[key]
        for key in list(self.data.missed):
            self.data.missed[key] = [
                missed for missed in self.data.missed[key] if missed.deadline >= cutoff
            ]
            if not self.data.missed[key]:
                del self.data.missed[key]
        return bool(self.data.seen or self.data.openers or self.data.missed)

    def windows(self) -> Iterator[WindowView]:
        """Every open window, and every unresolved miss."""
        for key, windows in self.data.open.items():
            for window in windows:
                yield WindowView(
                    rule=self.rule, key=key, start=window.start, deadline=window.deadline,
                    due=window.deadline + self.grace, state="pending", expected=self.count,
                    arrived=len(window.event_ids),
                )  # fmt: skip
        for key, misses in self.data.missed.items():
            for missed in misses:
                yield missed_view(self, key, missed)

    def from_v1(self, old: V1Data) -> AfterAbsenceData:
        """Version 1 kept one window per key, opened by an event it did not name."""
        data = AfterAbsenceData()
        for key, events in old.recent.items():
            data.seen[key] = {event_id: occurred for occurred, event_id in events}
        for key, tally in old.open.items():
            by = uuid.uuid5(_V1_OPENER, f"{self.rule}|{key}|{tally.start.isoformat()}")
            data.open[key] = [
                Opened(
                    by=by,
                    start=tally.start,
                    deadline=tally.deadline,
                    event_ids=list(tally.event_ids),
                )
            ]
            data.openers.setdefault(key, {})[by] = tally.start
            seen = data.seen.setdefault(key, {})
            for event_id in tally.event_ids:
                seen.setdefault(event_id, tally.start)
        for key, tally in old.missed.items():
            data.missed[key] = [
                Missed(
                    start=tally.start,
                    deadline=tally.deadline,
                    arrived=tally.arrived,
                    counted=list(tally.event_ids),
                )
            ]
        return data

    def restore(self, data: AfterAbsenceData) -> None:
        """Take over exported state."""
        self.data = data
        self._heap = [
            (window.deadline + self.grace, key, window.start, str(window.by))
            for key, windows in data.open.items()
            for window in windows
        ]
        heapq.heapify(self._heap)
