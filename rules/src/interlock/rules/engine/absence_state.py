"""State of absence (SLA) triggers: calendar deadlines, "within D after X", heartbeats.

Every variant keeps, per key, the window it is watching and what has arrived in it, and
is judged when the engine's **watermark** (the event time up to which every event has
been fed) passes the window's deadline plus ``grace`` — so a consumer backlog delays the
decision instead of raising a false alarm. A window that got fewer than ``count``
expected events fires ``fired`` (a miss); the next expected event of that key fires
``resolved`` (the event came, late), whatever window it falls in.

- **Calendar**: windows are cut by the schedule (``[start, deadline)``); every key shares
  them. Watched keys are the declared ``keys``, or every key seen so far (a key that goes
  silent stays watched), or the single key ``""`` without ``for_each``. The first window
  judged is the one containing the time the rule was loaded. After each deadline the
  next window opens at once, so no period goes unwatched. An event is counted in the
  window its ``occurred`` time falls in; one that falls in an already judged window only
  resolves a miss.
- **After**: each ``after`` event of a key opens ``[t, t + within)`` unless one is open
  for the key already; expected events of the key with ``occurred`` in it count, also
  ones that were fed before the opening event: those are kept while a late opening
  event could still take them, ``within`` plus the engine's ``late_horizon`` behind the
  watermark.
- **Heartbeat**: the deadline of a key is its latest expected event plus ``every``; a
  key watched from the load time (declared keys, or no ``for_each``) counts its silence
  from no earlier than that, so a late beat from before the load changes nothing. A
  miss fires once per silence.
"""

from __future__ import annotations

import functools
import heapq
import uuid
from datetime import datetime

import msgspec

from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing, firing_id, key_of
from interlock.rules.triggers import AbsenceTrigger, AfterWindow, CalendarWindow, HeartbeatWindow
from interlock.rules.windows import schedule_for
from interlock.sdk.durations import format_duration, parse_duration
from interlock.sdk.event import Event

__all__ = ["AbsenceState", "AbsenceStateData"]


@functools.lru_cache(maxsize=1024)
def _window_texts(start: datetime, deadline: datetime) -> tuple[str, str, str, str]:
    """Texts of a window, computed once for the many keys that miss it together."""
    return str(start), str(deadline), deadline.isoformat(), format_duration(deadline - start)


class Tally(msgspec.Struct, kw_only=True):
    """A window being watched for one key."""

    start: datetime
    deadline: datetime
    arrived: int = 0
    event_ids: list[uuid.UUID] = msgspec.field(default_factory=list)


class AbsenceStateData(msgspec.Struct, kw_only=True):
    """Serializable state of an absence trigger."""

    keys: list[str] = msgspec.field(default_factory=list)
    current: Tally | None = None
    """Calendar: the earliest window not judged yet (shared by every key)."""
    open: dict[str, Tally] = msgspec.field(default_factory=dict)
    """Per key: counts in the current or later calendar windows, keyed "key|deadline";
    after-windows and heartbeats: the window of each key."""
    missed: dict[str, Tally] = msgspec.field(default_factory=dict)
    """Per key: the last missed window, until an expected event resolves it."""
    recent: dict[str, list[tuple[datetime, uuid.UUID]]] = msgspec.field(default_factory=dict)
    """After-windows: expected events fed before a window of their key opened."""
    latest: dict[str, datetime] = msgspec.field(default_factory=dict)
    """Heartbeats: the latest beat of each key (a silence is counted from it)."""


class AbsenceState:
    """Watches for expected events that do not come."""

    def __init__(self, rule: str, trigger: AbsenceTrigger, tick: Tick) -> None:
        self.rule = rule
        self.trigger = trigger
        self.count = trigger.count
        self.grace = parse_duration(trigger.grace)
        self.window = trigger.window
        self.data = AbsenceStateData()
        self._keys: set[str] = set()
        self._heap: list[tuple[datetime, str, datetime]] = []
        if isinstance(self.window, CalendarWindow):
            self.schedule = schedule_for(self.window)
            self.data.current = self._calendar_window(tick.watermark)
        if not trigger.for_each:
            self._watch("", tick)
        for key in trigger.keys or ():
            self._watch(key, tick)

    # -- keys ----------------------------------------------------------------------------

    def _watch(self, key: str, tick: Tick | None) -> None:
        """Watch ``key`` from now on; a heartbeat key given a tick is due one period later."""
        if key in self._keys:
            return
        self._keys.add(key)
        self.data.keys.append(key)
        if isinstance(self.window, HeartbeatWindow) and tick is not None:
            every = parse_duration(self.window.every)
            self.data.latest[key] = tick.watermark  # its silence starts no earlier
            self._open(key, Tally(start=tick.watermark, deadline=tick.watermark + every))

    def _may_watch(self, key: str) -> bool:
        return self.trigger.keys is None or key in self._keys

    def _open(self, key: str, tally: Tally) -> None:
        self.data.open[key] = tally
        heapq.heappush(self._heap, (tally.deadline + self.grace, key, tally.deadline))

    # -- calendar windows ----------------------------------------------------------------

    def _calendar_window(self, instant: datetime) -> Tally:
        assert isinstance(self.window, CalendarWindow)
        deadline = self.schedule.next_deadline(instant)
        window = self.schedule.window_for(deadline, self.window.start)
        return Tally(start=window.start, deadline=window.deadline)

    # -- feeding -------------------------------------------------------------------------

    def on_event(self, role: str, event: Event, tick: Tick) -> list[Firing]:
        """Take a matching event: ``role`` is ``"expect"`` or ``"after"``."""
        key = key_of(event, self.trigger.for_each)
        if key is None or not self._may_watch(key):
            return []
        if role == "after":
            self._open_after(key, event)
            return []
        judged = self.data.missed.get(key)  # read before a resolution removes it
        firings = self._resolve(key, event)
        if isinstance(self.window, CalendarWindow):
            self._watch(key, tick)
            self._count_calendar(key, event)
        elif isinstance(self.window, AfterWindow):
            self._count_after(key, event)
        else:
            self._count_heartbeat(key, event, judged)
        return firings

    def _resolve(self, key: str, event: Event) -> list[Firing]:
        missed = self.data.missed.get(key)
        if missed is None or event.occurred < missed.start:
            return []
        del self.data.missed[key]
        return [
            Firing(
                id=firing_id(self.rule, key, "resolved", missed.start, missed.deadline),
                rule=self.rule,
                key=key,
                status="resolved",
                at=event.occurred,
                window_start=missed.start,
                window_end=missed.deadline,
                event_ids=[event.id],
                expected=self.count,
                arrived=missed.arrived + 1,
                summary=f"{event.event} for {key or event.resource_id} arrived late",
            )
        ]

    def _count_calendar(self, key: str, event: Event) -> None:
        current = self.data.current
        assert current is not None
        if event.occurred < current.start:
            return  # in a window already judged: it could only resolve a miss
        window = self._calendar_window(event.occurred)
        if event.occurred < window.start:
            return  # between windows (start_of_day policy)
        slot = f"{key}|{window.deadline.isoformat()}"
        tally = self.data.open.setdefault(slot, window)
        tally.arrived += 1
        tally.event_ids.append(event.id)

    def _open_after(self, key: str, event: Event) -> None:
        assert isinstance(self.window, AfterWindow)
        if key in self.data.open:
            return  # one window per key at a time: the earliest opening stands
        within = parse_duration(self.window.within)
        tally = Tally(start=event.occurred, deadline=event.occurred + within)
        kept = []
        for occurred, event_id in self.data.recent.pop(key, []):
            if tally.start <= occurred < tally.deadline:
                tally.arrived += 1
                tally.event_ids.append(event_id)
            else:
                kept.append((occurred, event_id))  # may still count for a later window
        if kept:
            self.data.recent[key] = kept
        if tally.arrived < self.count:
            self._open(key, tally)

    def _count_after(self, key: str, event: Event) -> None:
        tally = self.data.open.get(key)
        if tally is None or not tally.start <= event.occurred < tally.deadline:
            self.data.recent.setdefault(key, []).append((event.occurred, event.id))
            return
        tally.arrived += 1
        tally.event_ids.append(event.id)
        if tally.arrived >= self.count:
            del self.data.open[key]  # satisfied; its heap entry goes stale

    def _count_heartbeat(self, key: str, event: Event, judged: Tally | None) -> None:
        assert isinstance(self.window, HeartbeatWindow)
        # A key first seen through an event is watched from that event, not from now.
        self._watch(key, None)
        every = parse_duration(self.window.every)
        latest = self.data.latest.get(key)
        self.data.latest[key] = event.occurred if latest is None else max(latest, event.occurred)
        if latest is not None and event.occurred <= latest:
            return  # no newer than the latest beat: its silence is watched, or fired once
        if judged is not None and event.occurred <= judged.start:
            return  # no newer than the silence already judged: that silence fired once
        self._open(key, Tally(start=event.occurred, deadline=event.occurred + every))

    # -- judging -------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """When the next window can be judged (event time), if any."""
        if isinstance(self.window, CalendarWindow):
            assert self.data.current is not None
            return self.data.current.deadline + self.grace
        while self._heap:
            due, key, deadline = self._heap[0]
            tally = self.data.open.get(key)
            if tally is not None and tally.deadline == deadline:
                return due
            heapq.heappop(self._heap)  # stale: satisfied or moved on
        return None

    def advance(self, tick: Tick) -> list[Firing]:
        """Judge every window whose deadline plus grace the watermark has passed."""
        if isinstance(self.window, CalendarWindow):
            return self._advance_calendar(tick)
        firings = []
        while (due := self.next_due()) is not None and due <= tick.watermark:
            _, key, _ = heapq.heappop(self._heap)
            tally = self.data.open.pop(key)
            firings.append(self._miss(key, tally, tick))
        return firings

    def prune(self, tick: Tick) -> None:
        """Forget expected events no late ``after`` event within the horizon could take."""
        if not isinstance(self.window, AfterWindow):
            return
        cutoff = tick.watermark - tick.horizon - parse_duration(self.window.within)
        for key in list(self.data.recent):
            kept = [item for item in self.data.recent[key] if item[0] >= cutoff]
            if kept:
                self.data.recent[key] = kept
            else:
                del self.data.recent[key]

    def _advance_calendar(self, tick: Tick) -> list[Firing]:
        firings = []
        current = self.data.current
        assert current is not None
        while current.deadline + self.grace <= tick.watermark:
            suffix = f"|{current.deadline.isoformat()}"
            for key in self.data.keys:
                tally = self.data.open.pop(key + suffix, None)
                arrived = tally.arrived if tally else 0
                if arrived < self.count:
                    window = Tally(start=current.start, deadline=current.deadline, arrived=arrived)
                    if tally is not None:
                        window.event_ids = tally.event_ids
                    firings.append(self._miss(key, window, tick))
            current = self._calendar_window(current.deadline)
            self.data.current = current
        return firings

    def _miss(self, key: str, tally: Tally, tick: Tick) -> Firing:
        self.data.missed[key] = tally
        start, deadline, deadline_iso, length = _window_texts(tally.start, tally.deadline)
        expected = f"{self.count} x {' or '.join(self.trigger.expect.names)}"
        who = f" for {key}" if key else ""
        if isinstance(self.window, HeartbeatWindow):
            detail = f"no {expected}{who} in {length}"
        else:
            detail = f"expected {expected}{who} by {deadline_iso}, got {tally.arrived}"
        return Firing(
            id=firing_id(self.rule, key, "fired", start, deadline),
            rule=self.rule,
            key=key,
            status="fired",
            at=tally.deadline,
            window_start=tally.start,
            window_end=tally.deadline,
            event_ids=list(tally.event_ids),
            expected=self.count,
            arrived=tally.arrived,
            late=tick.late(tally.deadline + self.grace),
            summary=detail,
        )

    # -- persistence ---------------------------------------------------------------------

    def restore(self, data: AbsenceStateData) -> None:
        """Take over exported state (the engine checks the trigger is unchanged)."""
        self.data = data
        self._keys = set(data.keys)
        self._heap = [
            (tally.deadline + self.grace, key, tally.deadline)
            for key, tally in data.open.items()
            if not isinstance(self.window, CalendarWindow)
        ]
        heapq.heapify(self._heap)
