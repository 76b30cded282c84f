"""A reference evaluator of the rule model: small, slow and meant to be obviously right.

It keeps the whole history (every event fed and every ``advance(now, watermark)``) and
answers :meth:`Reference.firings` by replaying that history from the start each time it
is asked, with plain lists and no pruning, heaps or incremental bookkeeping. It shares
nothing with the engine's trigger states: it reads the rule model (triggers, predicates),
the calendar (:func:`~interlock.rules.windows.schedule_for`, tested on its own) and the
firing id (:func:`~interlock.rules.engine.firing.firing_id`), nothing else.

Covered: event triggers (threshold, within, for_each), absences (calendar deadline,
after-window, heartbeat; count, for_each, declared keys, grace) and sequences. The
semantics, read from the engine's docstrings, where they left something open:

- Clocks: ``now`` and the watermark start at the load time and never go back; an
  advance without a watermark moves it to ``now``. Only an advance judges a window.
- Threshold (N > 1): per key, the events fed since the key last fired; when one is fed,
  those older than ``within`` before the newest of them, or before the watermark, are
  forgotten (the watermark part applied at once, as the docstring says, not
  periodically); N left means a firing with exactly those N, ordered by
  ``(occurred, id)``, and counting starts afresh.
- Sequence: per key one partial. An event of the key first drops a partial older than
  ``within`` (its first step more than ``within`` before the event, or before the
  watermark). Then, if it matches the next step, is no earlier than the previous step
  and within ``within`` of the first, it advances the partial; otherwise if it matches
  the first step it starts a partial, or replaces one that has only its first step and
  started no later than it ("moves the start forward").
- Absence, shared: an event of an undeclared key (when keys are declared) is ignored
  altogether. An expected event first resolves the key's last miss if it occurred at or
  after that window's start (an older event is not "the event came, late"), then counts.
  A miss is ``late`` when ``now`` at judging is more than the tolerance after its
  deadline plus grace.
- Calendar: windows from the one whose deadline is the first after the load time; each
  is judged, in order, by the first advance whose watermark reaches deadline + grace,
  for every key watched then (declared, ``""``, or every key fed so far). It got the
  expected events of the key fed before it was judged whose ``occurred`` lies in
  ``[start, deadline)``.
- After: an ``after`` event of a key opens ``[t, t + within)`` when no window of the key
  is open. It counts the expected events of the key in its range that no window counted
  yet: those already fed and those fed while it is open. It closes when it has
  ``count`` (no firing), or misses when judged.
- Heartbeat: the silence of a key starts at its latest expected ``occurred`` (declared
  keys and ``""``: no earlier than the load time); each silence is judged once, when the
  watermark reaches its start + every + grace. ``count`` plays no part.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from interlock.rules.calendar import Schedule
from interlock.rules.engine.firing import Firing, firing_id
from interlock.rules.rule import Rule
from interlock.rules.triggers import (
    AbsenceTrigger,
    AfterWindow,
    CalendarWindow,
    EventMatch,
    EventTrigger,
    HeartbeatWindow,
    SequenceTrigger,
)
from interlock.rules.windows import schedule_for
from interlock.sdk.durations import parse_duration
from interlock.sdk.event import Event

__all__ = ["Advanced", "Fed", "Reference", "Row", "key_for", "name_matches", "row"]


@dataclass(frozen=True)
class Fed:
    """An event was fed."""

    event: Event


@dataclass(frozen=True)
class Advanced:
    """Time moved."""

    now: datetime
    watermark: datetime | None = None


Step = Fed | Advanced

Row = tuple[Any, ...]
"""A firing as compared: id, rule, key, status, at, window, event ids, counts, late."""


def row(firing: Firing) -> Row:
    """The comparable form of an engine firing (everything but the summary)."""
    return (
        firing.id,
        firing.rule,
        firing.key,
        firing.status,
        firing.at,
        firing.window_start,
        firing.window_end,
        tuple(firing.event_ids),
        firing.expected,
        firing.arrived,
        firing.late,
    )


def _row(
    rule: str,
    key: str,
    status: str,
    at: datetime,
    *,
    identity: Iterable[object],
    window: tuple[datetime, datetime] | None = None,
    event_ids: Iterable[uuid.UUID] = (),
    expected: int | None = None,
    arrived: int | None = None,
    late: bool = False,
) -> Row:
    start, end = window if window is not None else (None, None)
    return (
        firing_id(rule, key, status, *identity),
        rule,
        key,
        status,
        at,
        start,
        end,
        tuple(event_ids),
        expected,
        arrived,
        late,
    )


# -- matching ------------------------------------------------------------------------------


def name_matches(pattern: str, name: str) -> bool:
    """NATS wildcards: ``*`` is one token, a trailing ``>`` one or more tokens."""
    want, have = pattern.split("."), name.split(".")
    if want[-1] == ">":
        return len(have) >= len(want) and all(
            w in ("*", h) for w, h in zip(want[:-1], have, strict=False)
        )
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have, strict=True))


def _matches(match: EventMatch, event: Event) -> bool:
    if not any(name_matches(pattern, event.event) for pattern in match.names):
        return False
    return match.where is None or match.where.matches(event)


def key_for(event: Event, paths: list[str]) -> str | None:
    """Values at ``paths`` joined by ``|``; None when one is missing or not a scalar."""
    values = []
    for path in paths:
        head, _, rest = path.partition(".")
        value: Any
        if head == "resource":
            value = event.resource.get(rest)
        elif head == "payload":
            value = event.payload
            for token in rest.split("."):
                value = value.get(token) if isinstance(value, dict) else None
        elif head in ("event", "source") and not rest:
            value = getattr(event, head)
        else:
            raise NotImplementedError(f"the reference does not resolve {path!r}")
        if value is None or isinstance(value, dict | list):
            return None
        values.append(value if isinstance(value, str) else str(value))
    return "|".join(values)


# -- the history ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Moment:
    """One step of the history with the clocks in force while it happened."""

    index: int
    step: Step
    now: datetime
    watermark: datetime


def _moments(load: datetime, steps: list[Step]) -> list[_Moment]:
    now = watermark = load
    moments = []
    for index, step in enumerate(steps):
        if isinstance(step, Advanced):
            now = max(now, step.now)
            watermark = max(watermark, step.now if step.watermark is None else step.watermark)
        moments.append(_Moment(index, step, now, watermark))
    return moments


def _fed(moments: list[_Moment], match: EventMatch, paths: list[str]) -> Iterable[_Moment]:
    """The moments feeding an event that matches and has a key."""
    for moment in moments:
        step = moment.step
        if (
            isinstance(step, Fed)
            and _matches(match, step.event)
            and key_for(step.event, paths) is not None
        ):
            yield moment


def _event(moment: _Moment) -> Event:
    assert isinstance(moment.step, Fed)
    return moment.step.event


def _order(event: Event) -> tuple[datetime, uuid.UUID]:
    return (event.occurred, event.id)


# -- event triggers ------------------------------------------------------------------------


def _event_trigger(
    name: str, trigger: EventTrigger, moments: list[_Moment]
) -> list[tuple[int, Row]]:
    out: list[tuple[int, Row]] = []
    within = parse_duration(trigger.within) if trigger.within else timedelta(0)
    since_firing: dict[str, list[Event]] = {}
    for moment in _fed(moments, trigger.match, trigger.for_each):
        event = _event(moment)
        key = key_for(event, trigger.for_each)
        assert key is not None
        if trigger.threshold == 1:
            out.append(
                (
                    moment.index,
                    _row(
                        name,
                        key,
                        "fired",
                        event.occurred,
                        identity=[event.id],
                        event_ids=[event.id],
                    ),
                )
            )
            continue
        events = since_firing.setdefault(key, [])
        events.append(event)
        newest = max(item.occurred for item in events)
        cutoff = max(newest, moment.watermark) - within
        kept = sorted((item for item in events if item.occurred >= cutoff), key=_order)
        if len(kept) >= trigger.threshold:
            since_firing[key] = []
            ids = [item.id for item in kept]
            out.append(
                (
                    moment.index,
                    _row(
                        name,
                        key,
                        "fired",
                        kept[-1].occurred,
                        identity=ids,
                        window=(kept[0].occurred, kept[-1].occurred),
                        event_ids=ids,
                    ),
                )
            )
    return out


# -- sequences -----------------------------------------------------------------------------


@dataclass
class _Partial:
    events: list[Event]

    @property
    def start(self) -> datetime:
        return self.events[0].occurred

    @property
    def last(self) -> datetime:
        return self.events[-1].occurred


def _sequence(name: str, trigger: SequenceTrigger, moments: list[_Moment]) -> list[tuple[int, Row]]:
    out: list[tuple[int, Row]] = []
    within = parse_duration(trigger.within)
    partial: dict[str, _Partial] = {}
    for moment in moments:
        if not isinstance(moment.step, Fed):
            continue
        event = moment.step.event
        steps = [i for i, step in enumerate(trigger.steps) if _matches(step, event)]
        key = key_for(event, trigger.for_each)
        if not steps or key is None:
            continue
        at = event.occurred
        current = partial.get(key)
        if current is not None and max(at, moment.watermark) - current.start > within:
            del partial[key]
            current = None
        if (
            current is not None
            and len(current.events) in steps
            and at >= current.last
            and at - current.start <= within
        ):
            current.events.append(event)
            if len(current.events) == len(trigger.steps):
                del partial[key]
                ids = [item.id for item in current.events]
                out.append(
                    (
                        moment.index,
                        _row(
                            name,
                            key,
                            "fired",
                            current.last,
                            identity=ids,
                            window=(current.start, current.last),
                            event_ids=ids,
                        ),
                    )
                )
        elif 0 in steps and (current is None or (len(current.events) == 1 and at >= current.start)):
            partial[key] = _Partial([event])
    return out


# -- absences ------------------------------------------------------------------------------


@dataclass
class _Absence:
    """What every absence kind shares: its parameters, its misses and their resolution."""

    name: str
    trigger: AbsenceTrigger
    load: datetime
    tolerance: timedelta
    out: list[tuple[int, Row]] = field(default_factory=list)
    missed: dict[str, tuple[datetime, datetime, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.grace = parse_duration(self.trigger.grace)

    def key(self, event: Event) -> str | None:
        """The key of an event, or None when the rule ignores it."""
        key = key_for(event, self.trigger.for_each)
        if key is None or (self.trigger.keys is not None and key not in self.trigger.keys):
            return None
        return key

    def start_keys(self) -> list[str]:
        """Keys watched from the load time."""
        return list(self.trigger.keys or []) if self.trigger.for_each else [""]

    def miss(
        self,
        moment: _Moment,
        key: str,
        window: tuple[datetime, datetime],
        counted: list[Event],
    ) -> None:
        start, deadline = window
        self.missed[key] = (start, deadline, len(counted))
        late = moment.now - (deadline + self.grace) > self.tolerance
        self.out.append(
            (
                moment.index,
                _row(
                    self.name,
                    key,
                    "fired",
                    deadline,
                    identity=[start, deadline],
                    window=window,
                    event_ids=[item.id for item in counted],
                    expected=self.trigger.count,
                    arrived=len(counted),
                    late=late,
                ),
            )
        )

    def resolve(self, moment: _Moment, key: str, event: Event) -> None:
        missed = self.missed.get(key)
        if missed is None or event.occurred < missed[0]:
            return
        start, deadline, arrived = missed
        del self.missed[key]
        self.out.append(
            (
                moment.index,
                _row(
                    self.name,
                    key,
                    "resolved",
                    event.occurred,
                    identity=[start, deadline],
                    window=(start, deadline),
                    event_ids=[event.id],
                    expected=self.trigger.count,
                    arrived=arrived + 1,
                ),
            )
        )


def _calendar(
    absence: _Absence, window: CalendarWindow, schedule: Schedule, moments: list[_Moment]
) -> None:
    windows: list[tuple[datetime, datetime]] = []

    def nth(index: int) -> tuple[datetime, datetime]:
        while len(windows) <= index:
            after = windows[-1][1] if windows else absence.load
            cut = schedule.window_for(schedule.next_deadline(after), window.start)
            windows.append((cut.start, cut.deadline))
        return windows[index]

    judged = 0
    watched = absence.start_keys()
    fed: list[tuple[str, Event]] = []
    for moment in moments:
        step = moment.step
        if isinstance(step, Fed):
            key = absence.key(step.event)
            if key is None or not _matches(absence.trigger.expect, step.event):
                continue
            absence.resolve(moment, key, step.event)
            if key not in watched:
                watched.append(key)
            fed.append((key, step.event))
            continue
        while nth(judged)[1] + absence.grace <= moment.watermark:
            start, deadline = nth(judged)
            for key in watched:
                counted = [e for k, e in fed if k == key and start <= e.occurred < deadline]
                if len(counted) < absence.trigger.count:
                    absence.miss(moment, key, (start, deadline), counted)
            judged += 1


@dataclass
class _Open:
    start: datetime
    deadline: datetime
    counted: list[Event]

    def holds(self, event: Event) -> bool:
        return self.start <= event.occurred < self.deadline


def _after(absence: _Absence, window: AfterWindow, moments: list[_Moment]) -> None:
    within = parse_duration(window.within)
    count = absence.trigger.count
    opened: dict[str, _Open] = {}
    fed: list[tuple[str, Event]] = []
    used: set[uuid.UUID] = set()
    for moment in moments:
        step = moment.step
        if isinstance(step, Advanced):
            for due_key, due in list(opened.items()):
                if due.deadline + absence.grace <= moment.watermark:
                    del opened[due_key]
                    absence.miss(moment, due_key, (due.start, due.deadline), due.counted)
            continue
        event = step.event
        key = absence.key(event)
        if key is None:
            continue
        if _matches(window.after, event) and key not in opened:
            item = _Open(event.occurred, event.occurred + within, [])
            item.counted = [e for k, e in fed if k == key and e.id not in used and item.holds(e)]
            used.update(e.id for e in item.counted)
            if len(item.counted) < count:
                opened[key] = item
        if _matches(absence.trigger.expect, event):
            absence.resolve(moment, key, event)
            fed.append((key, event))
            current = opened.get(key)
            if current is not None and current.holds(event):
                current.counted.append(event)
                used.add(event.id)
                if len(current.counted) >= count:
                    del opened[key]


def _heartbeat(absence: _Absence, window: HeartbeatWindow, moments: list[_Moment]) -> None:
    every = parse_duration(window.every)
    latest = dict.fromkeys(absence.start_keys(), absence.load)
    judged: dict[str, datetime] = {}
    for moment in moments:
        step = moment.step
        if isinstance(step, Fed):
            key = absence.key(step.event)
            if key is None or not _matches(absence.trigger.expect, step.event):
                continue
            absence.resolve(moment, key, step.event)
            latest[key] = max(latest.get(key, step.event.occurred), step.event.occurred)
            continue
        for key, start in latest.items():
            if start + every + absence.grace <= moment.watermark and judged.get(key) != start:
                judged[key] = start
                absence.miss(moment, key, (start, start + every), [])


# -- the evaluator -------------------------------------------------------------------------


class Reference:
    """Records events and advances; :meth:`firings` replays all of them from scratch."""

    def __init__(
        self,
        rules: Iterable[Rule],
        *,
        now: datetime,
        lateness_tolerance: timedelta = timedelta(seconds=30),
    ) -> None:
        self.rules = list(rules)
        self.schedules = {
            rule.name: schedule_for(rule.when.window)
            for rule in self.rules
            if isinstance(rule.when, AbsenceTrigger)
            and isinstance(rule.when.window, CalendarWindow)
        }
        self.load = now
        self.tolerance = lateness_tolerance
        self.history: list[Step] = []

    def feed(self, event: Event) -> None:
        """Record an event (it returns nothing: ask :meth:`firings`)."""
        self.history.append(Fed(event))

    def advance(self, now: datetime, watermark: datetime | None = None) -> None:
        """Record a move of time (it returns nothing: ask :meth:`firings`)."""
        self.history.append(Advanced(now, watermark))

    def firings(self) -> list[tuple[int, Row]]:
        """Every firing the history calls for, with the index of the step producing it."""
        moments = _moments(self.load, self.history)
        out: list[tuple[int, Row]] = []
        for rule in self.rules:
            if rule.enabled:
                out.extend(self._of(rule, moments))
        return sorted(out, key=repr)

    def _of(self, rule: Rule, moments: list[_Moment]) -> list[tuple[int, Row]]:
        trigger = rule.when
        if isinstance(trigger, EventTrigger):
            return _event_trigger(rule.name, trigger, moments)
        if isinstance(trigger, SequenceTrigger):
            return _sequence(rule.name, trigger, moments)
        if not isinstance(trigger, AbsenceTrigger):
            raise NotImplementedError(f"the reference does not evaluate {type(trigger).__name__}")
        absence = _Absence(rule.name, trigger, self.load, self.tolerance)
        if isinstance(trigger.window, CalendarWindow):
            _calendar(absence, trigger.window, self.schedules[rule.name], moments)
        elif isinstance(trigger.window, AfterWindow):
            _after(absence, trigger.window, moments)
        else:
            _heartbeat(absence, trigger.window, moments)
        return absence.out
