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
- Threshold (N > 1): per key, the events fed since the key last fired, an id counting
  once (also an id of the key's last firing); when one is fed, those older than
  ``within`` before the newest of them, or before the watermark, are forgotten; N left
  means a firing with exactly those N, ordered by ``(occurred, id)``, and counting
  starts afresh.
- Sequence: events are taken in event-time order: one fed ahead of the watermark waits
  until an advance moves the watermark to it or past it, then all waiting events up to
  the watermark are taken in ``(occurred, id)`` order, each as if the watermark were its
  own time; one fed at or behind the watermark is taken at once. Taking: per key one
  partial. An event already in the partial is ignored. An event of the key first drops a
  partial older than ``within`` (its first step more than ``within`` before the event,
  or before the watermark). Then, if it matches the next step, is no earlier than the
  previous step and within ``within`` of the first, it advances the partial; otherwise if
  it matches the first step it starts a partial, or replaces one that has only its first
  step and started no later than it.
- Absence, shared: an event of an undeclared key (when keys are declared) is ignored.
  An id counts once. A window is judged by the first advance whose watermark reaches
  its deadline + grace; fewer than ``count`` of the key's expected events fed so far
  with ``occurred`` in ``[start, deadline)`` is a miss (``late`` when ``now`` is more
  than the tolerance after deadline + grace). A miss is resolved by expected events of
  the key with ``occurred`` at or after its start and before its resolution end:
  ``first`` — one such event (at judgement: the earliest of those fed before it, which
  also resolve at once; after it: the first fed); ``met`` — once the window's events and
  those reach ``count``, the earliest needed of them.
- Calendar: windows from the one whose deadline is the first after the load time;
  each judged in order for every key watched then (declared, ``""``, or every key fed
  so far). A miss's resolution ends where the next window starts, or, when the next
  window starts at the deadline, at the next deadline; a key keeps only its last miss.
- After: every ``after`` event (an id once) of a key opens ``[t, t + within)``, counting
  every expected event of the key fed so far or later (before its judgement) in its
  range; met at ``count``. A miss's resolution has no end, and a key keeps every miss.
- Heartbeat: per key a silence start (declared keys and ``""``: the load time; other
  keys: their first beat). A beat later than the start but before start + every moves
  the start to it. A beat at or after start + every waits for the judgement; when the
  watermark reaches start + every + grace, the window misses; if a waiting beat exists,
  the earliest resolves it at once and becomes the start (waiting beats within every of
  it move it on), otherwise the key is silent until a beat not older than the window's
  start resolves the miss and becomes the start. ``count`` plays no part.
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


def _in_event_time(
    moments: list[_Moment], wanted: Any
) -> Iterable[tuple[_Moment, Event, datetime]]:
    """The events ``wanted`` accepts, as an ordered state takes them: (moment, event, the
    watermark it is taken under)."""
    held: list[Event] = []
    for moment in moments:
        if isinstance(moment.step, Fed):
            event = moment.step.event
            if not wanted(event):
                continue
            if event.occurred <= moment.watermark:
                yield moment, event, moment.watermark
            elif all(_order(item) != _order(event) for item in held):
                held.append(event)
            continue
        ready = sorted((item for item in held if item.occurred <= moment.watermark), key=_order)
        held = [item for item in held if item.occurred > moment.watermark]
        for event in ready:
            yield moment, event, event.occurred


# -- event triggers ------------------------------------------------------------------------


def _event_trigger(
    name: str, trigger: EventTrigger, moments: list[_Moment]
) -> list[tuple[int, Row]]:
    out: list[tuple[int, Row]] = []
    if trigger.threshold == 1:
        for moment in _fed(moments, trigger.match, trigger.for_each):
            event = _event(moment)
            key = key_for(event, trigger.for_each)
            assert key is not None
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
        return out
    within = parse_duration(trigger.within) if trigger.within else timedelta(0)
    since_firing: dict[str, list[Event]] = {}
    last_fired: dict[str, set[uuid.UUID]] = {}

    def wanted(event: Event) -> bool:
        return _matches(trigger.match, event) and key_for(event, trigger.for_each) is not None

    for moment, event, watermark in _in_event_time(moments, wanted):
        key = key_for(event, trigger.for_each)
        assert key is not None
        events = since_firing.setdefault(key, [])
        if event.id in {item.id for item in events} or event.id in last_fired.get(key, set()):
            continue
        events.append(event)
        newest = max(item.occurred for item in events)
        cutoff = max(newest, watermark) - within
        kept = sorted((item for item in events if item.occurred >= cutoff), key=_order)
        since_firing[key] = kept
        if len(kept) >= trigger.threshold:
            since_firing[key] = []
            ids = [item.id for item in kept]
            last_fired[key] = set(ids)
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

    def wanted(event: Event) -> bool:
        steps = [step for step in trigger.steps if _matches(step, event)]
        return bool(steps) and key_for(event, trigger.for_each) is not None

    for moment, event, watermark in _in_event_time(moments, wanted):
        steps = [i for i, step in enumerate(trigger.steps) if _matches(step, event)]
        key = key_for(event, trigger.for_each)
        assert key is not None
        at = event.occurred
        current = partial.get(key)
        if current is not None and event.id in {item.id for item in current.events}:
            continue
        if current is not None and max(at, watermark) - current.start > within:
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
class _Miss:
    start: datetime
    deadline: datetime
    arrived: int
    until: datetime | None
    late: list[Event] = field(default_factory=list)


@dataclass
class _Absence:
    """What every absence kind shares: its parameters, its misses and their resolution."""

    name: str
    trigger: AbsenceTrigger
    load: datetime
    tolerance: timedelta
    out: list[tuple[int, Row]] = field(default_factory=list)

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
        until: datetime | None,
    ) -> _Miss:
        start, deadline = window
        late = moment.now - (deadline + self.grace) > self.tolerance
        counted = sorted(counted, key=_order)
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
        return _Miss(start, deadline, len(counted), until)

    def resolve(self, moment: _Moment, key: str, miss: _Miss, events: list[Event]) -> bool:
        """Add late events to a miss; True (and a firing) when it is resolved now."""
        for event in events:
            if event.id not in {item.id for item in miss.late}:
                miss.late.append(event)
        miss.late.sort(key=_order)
        if not miss.late:
            return False
        if self.trigger.resolve == "met" and not isinstance(self.trigger.window, HeartbeatWindow):
            needed = self.trigger.count - miss.arrived
            if len(miss.late) < needed:
                return False
            resolving = miss.late[: max(needed, 1)]
        else:
            resolving = miss.late[:1]
        self.out.append(
            (
                moment.index,
                _row(
                    self.name,
                    key,
                    "resolved",
                    resolving[-1].occurred,
                    identity=[miss.start, miss.deadline],
                    window=(miss.start, miss.deadline),
                    event_ids=[item.id for item in resolving],
                    expected=self.trigger.count,
                    arrived=miss.arrived + len(resolving),
                ),
            )
        )
        return True


def _unique(events: Iterable[tuple[str, Event]]) -> list[tuple[str, Event]]:
    seen: set[uuid.UUID] = set()
    kept = []
    for key, event in events:
        if event.id not in seen:
            seen.add(event.id)
            kept.append((key, event))
    return kept


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
    missed: dict[str, _Miss] = {}
    for moment in moments:
        step = moment.step
        if isinstance(step, Fed):
            key = absence.key(step.event)
            if key is None or not _matches(absence.trigger.expect, step.event):
                continue
            if key not in watched:
                watched.append(key)
            if any(event.id == step.event.id for _, event in fed):
                continue
            fed.append((key, step.event))
            miss = missed.get(key)
            event = step.event
            if (
                miss is not None
                and event.occurred >= miss.start
                and (miss.until is None or event.occurred < miss.until)
                and absence.resolve(moment, key, miss, [event])
            ):
                del missed[key]
            continue
        while nth(judged)[1] + absence.grace <= moment.watermark:
            start, deadline = nth(judged)
            following = nth(judged + 1)
            until = following[0] if following[0] > deadline else following[1]
            for key in watched:
                of_key = [e for k, e in _unique(fed) if k == key]
                counted = [e for e in of_key if start <= e.occurred < deadline]
                if len(counted) >= absence.trigger.count:
                    continue
                miss = absence.miss(moment, key, (start, deadline), counted, until)
                missed[key] = miss
                later = [e for e in of_key if deadline <= e.occurred < until]
                if later and absence.resolve(moment, key, miss, later):
                    del missed[key]
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
    opened: list[tuple[str, _Open]] = []
    openers: set[uuid.UUID] = set()
    fed: list[tuple[str, Event]] = []
    missed: list[tuple[str, _Miss]] = []
    for moment in moments:
        step = moment.step
        if isinstance(step, Advanced):
            due = [
                (key, item)
                for key, item in opened
                if item.deadline + absence.grace <= moment.watermark
            ]
            for key, item in due:
                opened.remove((key, item))
                miss = absence.miss(moment, key, (item.start, item.deadline), item.counted, None)
                later = [e for k, e in fed if k == key and e.occurred >= item.deadline]
                if not (later and absence.resolve(moment, key, miss, later)):
                    missed.append((key, miss))
            continue
        event = step.event
        key = absence.key(event)
        if key is None:
            continue
        if _matches(window.after, event) and event.id not in openers:
            openers.add(event.id)
            item = _Open(event.occurred, event.occurred + within, [])
            item.counted = [e for k, e in fed if k == key and item.holds(e)]
            if len(item.counted) < count:
                opened.append((key, item))
        if _matches(absence.trigger.expect, event) and all(e.id != event.id for _, e in fed):
            fed.append((key, event))
            for of_key, item in list(opened):
                if of_key == key and item.holds(event):
                    item.counted.append(event)
                    if len(item.counted) >= count:
                        opened.remove((of_key, item))
            for of_key, miss in list(missed):
                if (
                    of_key == key
                    and event.occurred >= miss.start
                    and absence.resolve(moment, key, miss, [event])
                ):
                    missed.remove((of_key, miss))


def _heartbeat(absence: _Absence, window: HeartbeatWindow, moments: list[_Moment]) -> None:
    every = parse_duration(window.every)
    start: dict[str, datetime] = dict.fromkeys(absence.start_keys(), absence.load)
    waiting: dict[str, list[Event]] = {}
    silent: dict[str, _Miss] = {}

    def move_on(key: str) -> None:
        beats = sorted(waiting.get(key, []), key=_order)
        while beats and beats[0].occurred < start[key] + every:
            start[key] = max(start[key], beats.pop(0).occurred)
        waiting[key] = beats

    for moment in moments:
        step = moment.step
        if isinstance(step, Fed):
            key = absence.key(step.event)
            if key is None or not _matches(absence.trigger.expect, step.event):
                continue
            beat = step.event
            if key in silent:
                miss = silent[key]
                if beat.occurred >= miss.start and absence.resolve(moment, key, miss, [beat]):
                    del silent[key]
                    start[key] = beat.occurred
                    move_on(key)
                continue
            if key not in start:
                start[key] = beat.occurred
            elif start[key] < beat.occurred < start[key] + every:
                start[key] = beat.occurred
                move_on(key)
            elif beat.occurred >= start[key] + every and all(
                item.id != beat.id for item in waiting.get(key, [])
            ):
                waiting.setdefault(key, []).append(beat)
            continue
        judging = True
        while judging:
            judging = False
            for key in sorted(start, key=lambda k: (start[k], k)):
                begun = start[key]
                if begun + every + absence.grace > moment.watermark:
                    continue
                miss = absence.miss(moment, key, (begun, begun + every), [], None)
                beats = sorted(waiting.pop(key, []), key=_order)
                if not beats:
                    del start[key]
                    silent[key] = miss
                    continue
                absence.resolve(moment, key, miss, beats[:1])
                start[key] = beats[0].occurred
                waiting[key] = beats[1:]
                move_on(key)
                judging = True


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
