"""What every absence (SLA) state shares: judging a window, grace, misses and resolutions.

The semantics, the same for every kind of window (calendar, after, heartbeat):

- **Counting.** An expected event counts toward the window of its key whose
  ``[start, deadline)`` holds its ``occurred`` time. An event id counts once.
- **Grace** is how long to wait for late data before judging: a window is judged when
  the watermark (the event time up to which every event has been fed) passes its
  ``deadline + grace``. It absorbs delivery delay — an event that occurred before the
  deadline and arrives before the judgement counts — and never moves the deadline.
- **A miss.** A window judged with fewer than ``count`` expected events fires ``fired``
  (the ``late`` flag says the judgement itself came late: a backlog, a restart).
- **Resolution.** A miss is resolved by expected events of its key that occurred after
  the window's start, within its *resolution period* (calendar: until the next window
  opens — or, when windows tile time, until the next deadline; heartbeat and after: no
  end). ``resolve="first"`` (the default): the first such event resolves; ``"met"``:
  resolved once the window's events and those reach ``count``. The ``resolved`` firing
  names the events and how late they came. When they arrived during the grace, before
  the judgement, the miss fires and resolves at once.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec

from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing, WindowIds, firing_id
from interlock.rules.engine.trigger_state import TriggerState, WindowView
from interlock.rules.triggers import AbsenceTrigger, EventMatch
from interlock.sdk.durations import format_duration, parse_duration

__all__ = ["AbsenceBase", "Missed", "WindowMisses", "missed_view"]


@functools.lru_cache(maxsize=1024)
def _window_texts(start: datetime, deadline: datetime) -> tuple[str, str, str, str]:
    """Texts of a window, computed once for the many keys that miss it together."""
    return str(start), str(deadline), deadline.isoformat(), format_duration(deadline - start)


class Missed(msgspec.Struct, kw_only=True):
    """A missed window of one key, until it is resolved (or its resolution period ends)."""

    start: datetime
    deadline: datetime
    arrived: int
    """Expected events counted in the window."""
    counted: list[uuid.UUID] = msgspec.field(default_factory=list)
    """Their ids (an event counted in the window does not resolve its miss)."""
    until: datetime | None = None
    """The end of the resolution period (``None``: no end)."""
    late: list[tuple[datetime, uuid.UUID]] = msgspec.field(default_factory=list)
    """Expected events since the judgement (``resolve="met"`` counts them)."""


class V1Tally(msgspec.Struct, kw_only=True):
    """A window as state version 1 kept it."""

    start: datetime
    deadline: datetime
    arrived: int = 0
    event_ids: list[uuid.UUID] = msgspec.field(default_factory=list)


class V1Data(msgspec.Struct, kw_only=True):
    """An absence's state as version 1 exported it (one shape for every window kind)."""

    keys: list[str] = msgspec.field(default_factory=list)
    current: V1Tally | None = None
    open: dict[str, V1Tally] = msgspec.field(default_factory=dict)
    missed: dict[str, V1Tally] = msgspec.field(default_factory=dict)
    recent: dict[str, list[tuple[datetime, uuid.UUID]]] = msgspec.field(default_factory=dict)
    latest: dict[str, datetime] = msgspec.field(default_factory=dict)


class AbsenceBase(TriggerState):
    """Shared behaviour of absence states; subclasses cut and judge the windows."""

    def __init__(self, rule: str, trigger: AbsenceTrigger) -> None:
        self.rule = rule
        self.trigger = trigger
        self.count = trigger.count
        self.grace = parse_duration(trigger.grace)
        self.resolve_when = trigger.resolve
        self._expected_text = f"{self.count} x {' or '.join(trigger.expect.names)}"

    def decode(self, raw: bytes, version: int) -> Any:
        """Exported data; version 1's single shape converted to this kind's."""
        if version == 1:
            return self.from_v1(msgspec.json.decode(raw, type=V1Data))
        return msgspec.json.decode(raw, type=self.data_type)

    def from_v1(self, old: V1Data) -> Any:
        """This kind's data from a version-1 export."""
        raise NotImplementedError

    def matches(self) -> list[EventMatch]:
        """Role 0: the expected events (an after-window adds role 1, its opening events)."""
        return [self.trigger.expect]

    def declared(self, key: str) -> bool:
        """Whether events of ``key`` are watched (all are, unless keys are declared)."""
        keys = self.trigger.keys
        return keys is None or key in self._declared

    @functools.cached_property
    def _declared(self) -> frozenset[str]:
        return frozenset(self.trigger.keys or ())

    # -- firings -------------------------------------------------------------------------

    def miss(  # noqa: PLR0917 - a window's parts, always named at the call
        self,
        key: str,
        start: datetime,
        deadline: datetime,
        arrived: int,
        event_ids: list[uuid.UUID],
        tick: Tick,
    ) -> Firing:
        """The ``fired`` firing of a window judged with too few events."""
        start_text, deadline_text, deadline_iso, length = _window_texts(start, deadline)
        who = f" for {key}" if key else ""
        if self.heartbeat:
            detail = f"no {self._expected_text}{who} in {length}"
        else:
            detail = f"expected {self._expected_text}{who} by {deadline_iso}, got {arrived}"
        return Firing(
            id=firing_id(self.rule, key, "fired", start_text, deadline_text),
            rule=self.rule,
            key=key,
            status="fired",
            at=deadline,
            window_start=start,
            window_end=deadline,
            event_ids=event_ids,
            expected=self.count,
            arrived=arrived,
            late=tick.late(deadline + self.grace),
            summary=detail,
        )

    heartbeat = False
    """Heartbeat misses read "no ... in 10m"."""

    def misses(self, start: datetime, deadline: datetime, tick: Tick) -> WindowMisses:
        """The misses of one window, for many keys at once."""
        return WindowMisses(self, start, deadline, tick)

    def resolution(
        self, key: str, missed: Missed, events: list[tuple[datetime, uuid.UUID]], name: str
    ) -> Firing | None:
        """Add expected events that came after a miss; the ``resolved`` firing, if now due.

        ``events`` are (occurred, id) of expected events of ``key`` that occurred after
        the missed window's start and within its resolution period, in any order.
        """
        seen = {event_id for _, event_id in missed.late}
        seen.update(missed.counted)
        for occurred, event_id in events:
            if event_id not in seen:
                missed.late.append((occurred, event_id))
                seen.add(event_id)
        missed.late.sort()
        if not missed.late:
            return None
        if self.resolve_when == "met":
            needed = self.count - missed.arrived
            if len(missed.late) < needed:
                return None
            resolving = missed.late[: max(needed, 1)]
        else:
            resolving = missed.late[:1]
        at = resolving[-1][0]
        late_by = at - missed.deadline
        when = (
            f"{format_duration(late_by)} after the deadline"
            if late_by > timedelta(0)
            else "before the deadline, but after it was judged"
        )
        start_text, deadline_text, _, _ = _window_texts(missed.start, missed.deadline)
        return Firing(
            id=firing_id(self.rule, key, "resolved", start_text, deadline_text),
            rule=self.rule,
            key=key,
            status="resolved",
            at=at,
            window_start=missed.start,
            window_end=missed.deadline,
            event_ids=[event_id for _, event_id in resolving],
            expected=self.count,
            arrived=missed.arrived + len(resolving),
            summary=f"{name} for {key or 'the rule'} arrived late: {when}",
        )


def missed_view(state: AbsenceBase, key: str, missed: Missed) -> WindowView:
    """An unresolved miss as the SLA board shows it."""
    return WindowView(
        rule=state.rule,
        key=key,
        start=missed.start,
        deadline=missed.deadline,
        due=missed.deadline + state.grace,
        state="missed",
        expected=state.count,
        arrived=missed.arrived + len(missed.late),
    )


class WindowMisses:
    """The ``fired`` firings of one window for many keys: what they share computed once.

    A deadline judged for 10,000 keys (a calendar) or a bucket of heartbeats due together
    makes its firings here, each costing a hash, a string and a struct.
    """

    __slots__ = ("_by", "_deadline", "_expected", "_ids", "_late", "_length", "_rule", "_start")

    def __init__(self, state: AbsenceBase, start: datetime, deadline: datetime, tick: Tick) -> None:
        start_text, deadline_text, deadline_iso, length = _window_texts(start, deadline)
        self._rule = state.rule
        self._start = start
        self._deadline = deadline
        self._ids = WindowIds(state.rule, "fired", start_text, deadline_text)
        self._late = tick.late(deadline + state.grace)
        self._expected = state.count
        expected = state._expected_text
        if state.heartbeat:
            self._length = f"no {expected}", f" in {length}"
        else:
            self._length = f"expected {expected}", f" by {deadline_iso}, got "
        self._by = state.heartbeat

    def __call__(
        self, key: str, arrived: int = 0, event_ids: list[uuid.UUID] | None = None
    ) -> Firing:
        """The firing of ``key``'s miss."""
        head, tail = self._length
        who = f" for {key}" if key else ""
        summary = f"{head}{who}{tail}" if self._by else f"{head}{who}{tail}{arrived}"
        return Firing(
            id=self._ids(key),
            rule=self._rule,
            key=key,
            status="fired",
            at=self._deadline,
            window_start=self._start,
            window_end=self._deadline,
            event_ids=event_ids if event_ids is not None else [],
            expected=self._expected,
            arrived=arrived,
            late=self._late,
            summary=summary,
        )

    def silent(self, keys: list[str]) -> list[Firing]:
        """The firings of many keys that got nothing (a heartbeat bucket): the fast path."""
        head, tail = self._length
        ids = self._ids.many(keys)
        rule, start, deadline = self._rule, self._start, self._deadline
        expected, late = self._expected, self._late
        arrived = "" if self._by else "0"
        return [
            Firing(
                id=firing_id_,
                rule=rule,
                key=key,
                status="fired",
                at=deadline,
                window_start=start,
                window_end=deadline,
                event_ids=[],
                expected=expected,
                arrived=0,
                late=late,
                summary=f"{head} for {key}{tail}{arrived}" if key else f"{head}{tail}{arrived}",
            )
            for key, firing_id_ in zip(keys, ids, strict=True)
        ]
