"""Absence as a heartbeat: at least one expected event every ``every``, per key.

A key's silence starts at its latest beat (declared keys, and ``""`` without
``for_each``: no earlier than the time the rule was loaded); its window is
``[latest beat, latest beat + every)``. A beat inside the window moves it forward. A
beat after the deadline, delivered before the window is judged (within the grace), does
not: the silence was longer than ``every``, so the window misses and is resolved at once
by that beat (see :mod:`.absence_base`); the next silence starts at it. A window judged
with no beat after it fires once and the key stays silent, without further misses,
until a beat resolves it. ``count`` plays no part.

Windows are kept by due time (one bucket per instant), so thousands of keys watched
from the same load time are judged in one pass.
"""

from __future__ import annotations

import bisect
import heapq
import uuid
from collections.abc import Iterator
from datetime import datetime

import msgspec

from interlock.rules.engine.absence_base import AbsenceBase, Missed, V1Data
from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing
from interlock.rules.engine.trigger_state import Occurrence, WindowView
from interlock.rules.triggers import AbsenceTrigger, HeartbeatWindow
from interlock.sdk.durations import parse_duration

__all__ = ["HeartbeatAbsence", "HeartbeatAbsenceData"]


class HeartbeatAbsenceData(msgspec.Struct, kw_only=True):
    """Serializable state of a heartbeat absence."""

    start: dict[str, datetime] = msgspec.field(default_factory=dict)
    """Per watched key not silent, the start of its silence (its latest beat)."""
    later: dict[str, list[tuple[datetime, uuid.UUID]]] = msgspec.field(default_factory=dict)
    """Per key, beats after its current deadline, fed before the window was judged."""
    silent: dict[str, datetime] = msgspec.field(default_factory=dict)
    """Per silent key, the start of the window it missed, until a beat resolves it."""


class HeartbeatAbsence(AbsenceBase):
    """Watches each key's silence."""

    data_type = HeartbeatAbsenceData
    heartbeat = True

    def __init__(self, rule: str, trigger: AbsenceTrigger, tick: Tick) -> None:
        super().__init__(rule, trigger)
        self.resolve_when = "first"  # one beat ends a silence, whatever count says
        assert isinstance(trigger.window, HeartbeatWindow)
        self.every = parse_duration(trigger.window.every)
        self.data = HeartbeatAbsenceData()
        self._buckets: dict[datetime, list[str]] = {}
        self._dues: list[datetime] = []
        watched_from = tick.watermark
        if not trigger.for_each:
            self._start("", watched_from)
        for key in trigger.keys or ():
            self._start(key, watched_from)

    def _start(self, key: str, at: datetime) -> None:
        self.data.start[key] = at
        due = at + self.every + self.grace
        bucket = self._buckets.get(due)
        if bucket is None:
            self._buckets[due] = [key]
            heapq.heappush(self._dues, due)
        else:
            bucket.append(key)

    # -- events ----------------------------------------------------------------------------

    def on_event(self, roles: tuple[int, ...], occurrence: Occurrence, tick: Tick) -> list[Firing]:
        """A beat: move the key's window, keep it for the judgement, or resolve a miss."""
        key = occurrence.key
        if not self.declared(key):
            return []
        beat = occurrence.occurred
        silent = self.data.silent.get(key)
        if silent is not None:
            if beat < silent:
                return []  # older than the silence: it changes nothing
            missed = Missed(start=silent, deadline=silent + self.every, arrived=0)
            resolved = self.resolution(key, missed, [(beat, occurrence.id)], occurrence.name)
            assert resolved is not None  # one beat ends a silence
            del self.data.silent[key]
            self._start(key, beat)
            self._absorb(key)
            return [resolved]
        start = self.data.start.get(key)
        if start is None:
            self._start(key, beat)  # a key first seen through an event: watched from it
            return []
        if beat <= start:
            return []  # no newer than the latest beat
        if beat < start + self.every:
            self._start(key, beat)  # the window moves; the old bucket entry goes stale
            self._absorb(key)
            return []
        later = self.data.later.setdefault(key, [])
        if all(event_id != occurrence.id for _, event_id in later):
            bisect.insort(later, (beat, occurrence.id))
        return []

    def _absorb(self, key: str) -> None:
        """Beats kept for later that now fall inside the key's window move it on."""
        later = self.data.later.get(key)
        if not later:
            return
        start = self.data.start[key]
        moved = start
        while later and later[0][0] < moved + self.every:
            beat, _ = later.pop(0)
            moved = max(moved, beat)
        if not later:
            del self.data.later[key]
        if moved != start:
            self._start(key, moved)

    # -- judging ---------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest due time of a watched key's window."""
        return self._dues[0] if self._dues else None

    def judge(self, tick: Tick) -> list[Firing]:
        """Judge every window whose deadline plus grace the watermark has passed."""
        firings: list[Firing] = []
        starts = self.data.start
        span = self.every + self.grace
        while self._dues and self._dues[0] <= tick.watermark:
            due = heapq.heappop(self._dues)
            start = due - span
            misses = self.misses(start, start + self.every, tick)
            later = self.data.later
            silent = self.data.silent
            quiet: list[str] = []
            for key in self._buckets.pop(due):
                if starts.get(key) != start:
                    continue  # stale: the window moved, or the key went silent
                if key in later:
                    firings.append(misses(key))
                    firings.extend(self._resolve_at_once(key, start))
                else:
                    quiet.append(key)
                    del starts[key]
                    silent[key] = start
            firings.extend(misses.silent(quiet))
        return firings

    def _resolve_at_once(self, key: str, start: datetime) -> list[Firing]:
        """A beat after the deadline arrived during the grace: it resolves the miss now."""
        later = self.data.later.pop(key)
        missed = Missed(start=start, deadline=start + self.every, arrived=0)
        resolved = self.resolution(key, missed, later[:1], self.trigger.expect.names[0])
        assert resolved is not None  # one beat is enough to resolve a heartbeat
        if len(later) > 1:
            self.data.later[key] = later[1:]
        self._start(key, later[0][0])
        self._absorb(key)
        return [resolved]

    def windows(self) -> Iterator[WindowView]:
        """The silence of every watched key, pending or missed."""
        for key, start in self.data.start.items():
            deadline = start + self.every
            yield WindowView(
                rule=self.rule, key=key, start=start, deadline=deadline,
                due=deadline + self.grace, state="pending", expected=1, arrived=0,
            )  # fmt: skip
        for key, start in self.data.silent.items():
            deadline = start + self.every
            yield WindowView(
                rule=self.rule, key=key, start=start, deadline=deadline,
                due=deadline + self.grace, state="missed", expected=1, arrived=0,
            )  # fmt: skip

    def from_v1(self, old: V1Data) -> HeartbeatAbsenceData:
        """Version 1 kept each key's window; its start is the silence's start."""
        data = HeartbeatAbsenceData()
        for key, tally in old.open.items():
            data.start[key] = tally.start
        for key, tally in old.missed.items():
            if key not in data.start:
                data.silent[key] = tally.start
        return data

    def restore(self, data: HeartbeatAbsenceData) -> None:
        """Take over exported state."""
        self.data = data
        self._buckets = {}
        self._dues = []
        for key, start in data.start.items():
            self._start(key, start)
