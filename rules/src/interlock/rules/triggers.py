"""Triggers: what makes a rule fire, as plain declarative data.

Four kinds, tagged by ``kind`` in JSON:

- :class:`EventTrigger` — matching events, optionally ``threshold`` of them ``within`` a
  sliding window, per key (``for_each``).
- :class:`AbsenceTrigger` — an expected event does *not* come: by a calendar deadline
  (:class:`CalendarWindow`), within a duration after another event
  (:class:`AfterWindow`), or as a heartbeat (:class:`HeartbeatWindow`); at least
  ``count`` of them; per key, optionally over a declared set of ``keys``.
- :class:`CompoundTrigger` — all / any / at least ``n`` of several event triggers within
  a window.
- :class:`SequenceTrigger` — steps in order within a window, correlated on a key.

Durations are kept as written (``"2h"``) and times of day as ``"HH:MM"``, so the JSON
reads like the DSL; validation (:mod:`interlock.rules.validation`) checks them.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from interlock.rules.holiday_calendars import HolidayEntry
from interlock.rules.predicates import AnyPredicate

__all__ = [
    "AbsenceTrigger",
    "AfterWindow",
    "AnyTrigger",
    "AnyWindow",
    "CalendarWindow",
    "CompoundTrigger",
    "EventMatch",
    "EventTrigger",
    "HeartbeatWindow",
    "SequenceTrigger",
]


class EventMatch(msgspec.Struct, frozen=True, kw_only=True):
    """Which events count: name patterns and an optional predicate.

    Name patterns use NATS wildcards: ``*`` is one token (``s3.object.*``), ``>`` is
    one or more trailing tokens (``airflow.>``).
    """

    names: list[str]
    where: AnyPredicate | None = None


class EventTrigger(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="event"):
    """Fires on matching events: each one, or ``threshold`` of them ``within`` a window."""

    match: EventMatch
    threshold: int = 1
    within: str | None = None
    """Sliding window for the threshold (required when ``threshold`` > 1)."""
    for_each: list[str] = msgspec.field(default_factory=list)
    """Paths forming the key: thresholds are counted per key (``resource.id``)."""


class CalendarWindow(msgspec.Struct, frozen=True, kw_only=True, tag_field="window", tag="calendar"):
    """Periods cut by a calendar: a time of day on some days, or a cron expression."""

    at: str | None = None
    """Deadline time of day, ``HH:MM`` (with ``days``); or use ``cron``."""
    cron: str | None = None
    tz: str = "UTC"
    days: list[str] = msgspec.field(default_factory=list)
    """Weekday names (``mon``..``sun``); empty means every day."""
    holidays: list[HolidayEntry] = msgspec.field(default_factory=list)
    """ISO dates (local) on which there is no deadline, and countries' or regions'
    calendars (``{"country": "DE", "subdiv": "BE"}``)."""
    start: Literal["previous_deadline", "start_of_day"] = "previous_deadline"
    """Where each window begins: at the previous deadline (windows tile time), or at
    local midnight of the deadline's day."""


class AfterWindow(msgspec.Struct, frozen=True, kw_only=True, tag_field="window", tag="after"):
    """A window opened by each ``after`` event, closing ``within`` later."""

    after: EventMatch
    within: str


class HeartbeatWindow(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="window", tag="heartbeat"
):
    """At least one expected event every ``every``, counted from the last one."""

    every: str


AnyWindow = CalendarWindow | AfterWindow | HeartbeatWindow


class AbsenceTrigger(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="absence"):
    """Fires when fewer than ``count`` expected events arrive in a window (an SLA)."""

    expect: EventMatch
    window: AnyWindow
    count: int = 1
    for_each: list[str] = msgspec.field(default_factory=list)
    keys: list[str] | None = None
    """Declared keys, watched from the start even if they never send an event."""
    grace: str = "0s"
    """How long to wait for late data before judging a window (delivery delay): an event
    that occurred before the deadline and arrives within the grace counts. It never moves
    the deadline: an event that occurred after it resolves the miss instead."""
    resolve: Literal["first", "met"] = "first"
    """What resolves a miss: the ``first`` expected event after it, or the expectation
    ``met`` (the window's events and the later ones reach ``count``)."""


class CompoundTrigger(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="compound"):
    """Fires when ``require`` of the sub-triggers have fired within ``within`` (per key)."""

    triggers: list[EventTrigger]
    require: Literal["all", "any"] | int = "all"
    within: str
    for_each: list[str] = msgspec.field(default_factory=list)


class SequenceTrigger(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="sequence"):
    """Fires when the steps happen in order, the last within ``within`` of the first."""

    steps: list[EventMatch]
    within: str
    for_each: list[str] = msgspec.field(default_factory=list)


AnyTrigger = EventTrigger | AbsenceTrigger | CompoundTrigger | SequenceTrigger
