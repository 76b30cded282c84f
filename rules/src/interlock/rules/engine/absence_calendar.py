"""Absence by a calendar deadline: ``by 09:00 Europe/Berlin on workdays``, or a cron.

Windows are cut by the schedule (``[start, deadline)``, tiling time or starting at local
midnight: ``start=``) and shared by every key. Watched keys are the declared ``keys``,
or every key seen so far (a key that goes silent stays watched), or the single key ``""``
without ``for_each``. The first window judged is the one containing the time the rule
was loaded; after each judgement the next window is watched, so no period goes
unwatched. An event counts in the window its ``occurred`` time falls in; one in a window
already judged can only resolve a miss (see :mod:`.absence_base` for grace and
resolution; a miss's resolution period ends when the next window starts, or, when
windows tile time, at the next deadline).

Per key only the expected events not yet judged are kept (their time and id: an id
counts once), so keys that send nothing cost nothing but their name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import msgspec

from interlock.rules.calendar import Window
from interlock.rules.engine.absence_base import (
    AbsenceBase,
    Missed,
    V1Data,
    WindowMisses,
    missed_view,
)
from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing
from interlock.rules.engine.trigger_state import Occurrence, WindowView
from interlock.rules.triggers import AbsenceTrigger, CalendarWindow
from interlock.rules.windows import schedule_for

__all__ = ["CalendarAbsence", "CalendarAbsenceData"]


class Span(msgspec.Struct, array_like=True):
    """A window: ``[start, deadline)``."""

    start: datetime
    deadline: datetime


class CalendarAbsenceData(msgspec.Struct, kw_only=True):
    """Serializable state of a calendar absence."""

    keys: list[str] = msgspec.field(default_factory=list)
    current: Span | None = None
    """The earliest window not judged yet (shared by every key)."""
    pending: dict[str, dict[uuid.UUID, datetime]] = msgspec.field(default_factory=dict)
    """Per key, the expected events not judged yet (at or after the current start)."""
    missed: dict[str, Missed] = msgspec.field(default_factory=dict)
    """Per key, its last miss, until resolved or its resolution period ends."""


class CalendarAbsence(AbsenceBase):
    """Watches calendar windows for every key."""

    data_type = CalendarAbsenceData

    def __init__(self, rule: str, trigger: AbsenceTrigger, tick: Tick) -> None:
        super().__init__(rule, trigger)
        assert isinstance(trigger.window, CalendarWindow)
        self.window = trigger.window
        self.schedule = schedule_for(trigger.window)
        self.data = CalendarAbsenceData(current=self._span_after(tick.watermark))
        self._keys: set[str] = set()
        if not trigger.for_each:
            self._watch("")
        for key in trigger.keys or ():
            self._watch(key)

    def _watch(self, key: str) -> None:
        if key not in self._keys:
            self._keys.add(key)
            self.data.keys.append(key)

    def _span_after(self, instant: datetime) -> Span:
        deadline = self.schedule.next_deadline(instant)
        window = self.schedule.window_for(deadline, self.window.start)
        return Span(window.start, window.deadline)

    def _next(self, span: Span) -> Window:
        deadline = self.schedule.next_deadline(span.deadline)
        return self.schedule.window_for(deadline, self.window.start)

    # -- events ----------------------------------------------------------------------------

    def on_event(self, roles: tuple[int, ...], occurrence: Occurrence, tick: Tick) -> list[Firing]:
        """Count an expected event, or resolve a miss with it."""
        key = occurrence.key
        if not self.declared(key):
            return []
        self._watch(key)
        firings = []
        missed = self.data.missed.get(key)
        if missed is not None and self._resolves(missed, occurrence.occurred):
            resolved = self.resolution(
                key, missed, [(occurrence.occurred, occurrence.id)], occurrence.name
            )
            if resolved is not None:
                del self.data.missed[key]
                firings.append(resolved)
        current = self.data.current
        assert current is not None
        if occurrence.occurred >= current.start:
            self.data.pending.setdefault(key, {})[occurrence.id] = occurrence.occurred
        return firings

    @staticmethod
    def _resolves(missed: Missed, occurred: datetime) -> bool:
        return occurred >= missed.start and (missed.until is None or occurred < missed.until)

    # -- judging ---------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The current window's deadline plus grace."""
        current: Span | None = self.data.current
        assert current is not None
        return current.deadline + self.grace

    def judge(self, tick: Tick) -> list[Firing]:
        """Judge every window whose deadline plus grace the watermark has passed."""
        firings: list[Firing] = []
        current = self.data.current
        assert current is not None
        while current.deadline + self.grace <= tick.watermark:
            following = self._next(current)
            until = following.start if following.start > current.deadline else following.deadline
            misses = self.misses(current.start, current.deadline, tick)
            for key in self.data.keys:
                firings.extend(self._judge_key(key, current, following, until, misses))
            current = Span(following.start, following.deadline)
            self.data.current = current
        return firings

    def _judge_key(
        self, key: str, window: Span, following: Window, until: datetime, misses: WindowMisses
    ) -> list[Firing]:
        pending = self.data.pending.get(key)
        inside: list[tuple[datetime, uuid.UUID]] = []
        after: list[tuple[datetime, uuid.UUID]] = []
        if pending:
            keep: dict[uuid.UUID, datetime] = {}
            for event_id, occurred in pending.items():
                if occurred < window.deadline:
                    if occurred >= window.start:
                        inside.append((occurred, event_id))
                elif occurred < until:
                    after.append((occurred, event_id))
                if occurred >= following.start:
                    keep[event_id] = occurred
            if keep:
                self.data.pending[key] = keep
            else:
                del self.data.pending[key]
        missed = self.data.missed.get(key)
        if missed is not None and missed.until is not None and missed.until <= window.deadline:
            del self.data.missed[key]  # its resolution period is over: it stays unresolved
        if len(inside) >= self.count:
            return []
        inside.sort()
        ids = [event_id for _, event_id in inside]
        firings = [misses(key, len(inside), ids)]
        missed = Missed(
            start=window.start,
            deadline=window.deadline,
            arrived=len(inside),
            counted=ids,
            until=until,
        )
        self.data.missed[key] = missed
        if after:
            resolved = self.resolution(key, missed, after, self.trigger.expect.names[0])
            if resolved is not None:
                del self.data.missed[key]
                firings.append(resolved)
        return firings

    def windows(self) -> Iterator[WindowView]:
        """The current window of every watched key, and each key's unresolved miss."""
        current = self.data.current
        assert current is not None
        due = current.deadline + self.grace
        for key in self.data.keys:
            pending = self.data.pending.get(key, {})
            arrived = sum(1 for at in pending.values() if current.start <= at < current.deadline)
            yield WindowView(
                rule=self.rule, key=key, start=current.start, deadline=current.deadline,
                due=due, state="pending", expected=self.count, arrived=arrived,
            )  # fmt: skip
        for key, missed in self.data.missed.items():
            yield missed_view(self, key, missed)

    def from_v1(self, old: V1Data) -> CalendarAbsenceData:
        """This kind's data from a version-1 export.

        Version 1 kept counts per window ("key|deadline") without event times: each
        counted event is taken as occurring at its window's start.
        """
        assert old.current is not None
        data = CalendarAbsenceData(
            keys=list(old.keys), current=Span(old.current.start, old.current.deadline)
        )
        for slot, tally in old.open.items():
            key, _, deadline = slot.rpartition("|")
            window = self.schedule.window_for(datetime.fromisoformat(deadline), self.window.start)
            pending = data.pending.setdefault(key, {})
            for event_id in tally.event_ids:
                pending[event_id] = window.start
        for key, tally in old.missed.items():
            following = self._next(Span(tally.start, tally.deadline))
            until = following.start if following.start > tally.deadline else following.deadline
            data.missed[key] = Missed(
                start=tally.start,
                deadline=tally.deadline,
                arrived=tally.arrived,
                counted=list(tally.event_ids),
                until=until,
            )
        return data

    def restore(self, data: CalendarAbsenceData) -> None:
        """Take over exported state."""
        self.data = data
        self._keys = set(data.keys)
