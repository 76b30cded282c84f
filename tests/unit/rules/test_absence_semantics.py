"""Grace, resolution and duplicate ids, case by case, for every absence kind (fake time).

One meaning of grace everywhere: how long to wait for late data before judging a window.
An event that occurred before the deadline and arrives within the grace counts; one that
occurred after it never does, and resolves the miss — at once, when it arrived before the
judgement. ``resolve="first"`` resolves with the first later event, ``"met"`` once the
window's and the later events reach the count. An event id counts once.

Each case: a rule, events (minutes after 08:00 UTC, delivered in the order given, all
before the watermark reaches them unless marked late), the time the clock moves to, and
the firings expected as (status, window start, deadline, at) in minutes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from interlock.rules import Rule, absent, after, deadline, heartbeat
from interlock.rules.engine.engine import Engine
from interlock.sdk import Event

T8 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday; the deadline is 09:00


def at(minutes: float) -> datetime:
    return T8 + timedelta(minutes=minutes)


def minutes(instant: datetime | None) -> float | None:
    return None if instant is None else (instant - T8) / timedelta(minutes=1)


Case = tuple[Any, list[tuple[str, float, int]], float, list[tuple[str, float, float, float]]]


def run(when: Any, events: list[tuple[str, float, int]], until: float) -> list[tuple[Any, ...]]:
    """Feed ``events`` (name, minutes, id) one by one, moving the clock to each as the
    pipeline does, then to ``until``; the firings as (status, start, deadline, at)."""
    engine = Engine([Rule(name="sla", when=when)], now=T8)
    produced = []
    for name, minute, n in events:
        event = Event(
            id=uuid.UUID(int=n), event=name, resource={"id": "sales"}, occurred=at(minute)
        )
        produced += engine.feed(event)
        produced += engine.advance(max(engine.watermark, at(minute)))
    produced += engine.advance(at(until))
    return [
        (f.status, minutes(f.window_start), minutes(f.window_end), minutes(f.at)) for f in produced
    ]


NINE = deadline("09:00")
CALENDAR: list[tuple[str, Case]] = [
    ("on time", (absent("t.up", by=NINE), [("t.up", 50, 1)], 70, [])),
    ("missed, then late", (absent("t.up", by=NINE), [("t.up", 65, 1)], 70,
                           [("fired", -1380, 60, 60), ("resolved", -1380, 60, 65)])),
    ("grace: late data counts", (absent("t.up", by=NINE, grace="15m"), [("t.up", 59, 1)], 80, [])),
    ("grace: an update at 09:05 fires and resolves at 09:15",
     (absent("t.up", by=NINE, grace="15m"), [("t.up", 65, 1)], 80,
      [("fired", -1380, 60, 60), ("resolved", -1380, 60, 65)])),
    ("grace: nothing fires before it ends",
     (absent("t.up", by=NINE, grace="15m"), [], 74, [])),
    ("a duplicate counts once",
     (absent("t.up", by=NINE, at_least=2), [("t.up", 10, 1), ("t.up", 10, 1)], 70,
      [("fired", -1380, 60, 60)])),
    ("first: one of two late resolves",
     (absent("t.up", by=NINE, at_least=3), [("t.up", 10, 1), ("t.up", 65, 2)], 70,
      [("fired", -1380, 60, 60), ("resolved", -1380, 60, 65)])),
    ("met: resolved only when the count is reached",
     (absent("t.up", by=NINE, at_least=3, resolve="met"),
      [("t.up", 10, 1), ("t.up", 65, 2), ("t.up", 66, 3)], 70,
      [("fired", -1380, 60, 60), ("resolved", -1380, 60, 66)])),
    ("met: not reached, not resolved",
     (absent("t.up", by=NINE, at_least=3, resolve="met"), [("t.up", 10, 1), ("t.up", 65, 2)], 70,
      [("fired", -1380, 60, 60)])),
    ("met: a duplicate of a counted event does not resolve",
     (absent("t.up", by=NINE, at_least=2, resolve="met"), [("t.up", 10, 1), ("t.up", 10, 1)], 70,
      [("fired", -1380, 60, 60)])),
    ("start_of_day: the next day's first update does not resolve yesterday's miss",
     (absent("t.up", by=deadline("09:00", start="start_of_day")), [("t.up", 24 * 60 - 7 * 60, 1)],
      24 * 60 + 70, [("fired", -480, 60, 60)])),  # Tue 01:00: Tuesday's, in time
]  # fmt: skip

AFTER: list[tuple[str, Case]] = [
    ("met within", (absent("j.end", by=after("j.start", within="1h")),
                    [("j.start", 0, 1), ("j.end", 30, 2)], 200, [])),
    ("missed", (absent("j.end", by=after("j.start", within="1h")), [("j.start", 0, 1)], 200,
                [("fired", 0, 60, 60)])),
    ("grace: late data counts",
     (absent("j.end", by=after("j.start", within="1h"), grace="10m"),
      [("j.start", 0, 1), ("j.end", 59, 2)], 200, [])),
    ("grace: an end at 1h05 fires and resolves at once",
     (absent("j.end", by=after("j.start", within="1h"), grace="10m"),
      [("j.start", 0, 1), ("j.end", 65, 2)], 200, [("fired", 0, 60, 60), ("resolved", 0, 60, 65)])),
    ("two starts, one end in both windows",
     (absent("j.end", by=after("j.start", within="2h")),
      [("j.start", 0, 1), ("j.start", 60, 2), ("j.end", 90, 3)], 400, [])),
    ("two starts, the end only in the second",
     (absent("j.end", by=after("j.start", within="1h")),
      [("j.start", 0, 1), ("j.start", 50, 2), ("j.end", 100, 3)], 400,
      [("fired", 0, 60, 60), ("resolved", 0, 60, 100)])),
    ("a re-delivered start opens one window",
     (absent("j.end", by=after("j.start", within="1h")), [("j.start", 0, 1), ("j.start", 0, 1)],
      200, [("fired", 0, 60, 60)])),
    ("a duplicate end counts once toward two",
     (absent("j.end", by=after("j.start", within="1h"), at_least=2),
      [("j.start", 0, 1), ("j.end", 10, 2), ("j.end", 10, 2)], 200, [("fired", 0, 60, 60)])),
]  # fmt: skip

HEARTBEAT: list[tuple[str, Case]] = [
    ("beats in time", (absent("hb", by=heartbeat("10m")), [("hb", 8, 1), ("hb", 16, 2)], 25, [])),
    ("silence", (absent("hb", by=heartbeat("10m")), [("hb", 5, 1)], 30, [("fired", 5, 15, 15)])),
    ("a miss fires once per silence",
     (absent("hb", by=heartbeat("10m")), [], 60, [("fired", 0, 10, 10)])),
    ("the next beat resolves", (absent("hb", by=heartbeat("10m")), [("hb", 5, 1), ("hb", 40, 2)],
                                45, [("fired", 5, 15, 15), ("resolved", 5, 15, 40)])),
    ("grace: a beat just before the deadline, delivered late, counts",
     (absent("hb", by=heartbeat("10m"), grace="5m"), [("hb", 9, 1)], 16, [])),
    ("grace: a late beat inside the grace fires and resolves (it no longer hides the miss)",
     (absent("hb", by=heartbeat("10m"), grace="5m"), [("hb", 12, 1)], 16,
      [("fired", 0, 10, 10), ("resolved", 0, 10, 12)])),
    ("a duplicate beat changes nothing",
     (absent("hb", by=heartbeat("10m")), [("hb", 8, 1), ("hb", 8, 1)], 25,
      [("fired", 8, 18, 18)])),
]  # fmt: skip


def _ids(cases: list[tuple[str, Case]]) -> list[str]:
    return [name for name, _ in cases]


@pytest.mark.parametrize(("name", "case"), CALENDAR, ids=_ids(CALENDAR))
def test_calendar(name: str, case: Case) -> None:
    when, events, until, expected = case
    assert run(when, events, until) == expected


@pytest.mark.parametrize(("name", "case"), AFTER, ids=_ids(AFTER))
def test_after(name: str, case: Case) -> None:
    when, events, until, expected = case
    assert run(when, events, until) == expected


@pytest.mark.parametrize(("name", "case"), HEARTBEAT, ids=_ids(HEARTBEAT))
def test_heartbeat(name: str, case: Case) -> None:
    when, events, until, expected = case
    assert run(when, events, until) == expected


def test_the_windows_the_sla_board_lists() -> None:
    rules = [
        Rule(name="cal", when=absent("t.up", by=deadline("09:00"), at_least=2,
                                     for_each="resource.id", keys=["a", "b"])),
        Rule(name="hb", when=absent("hb", by=heartbeat("10m"))),
        Rule(name="after", when=absent("j.end", by=after("j.start", within="1h"),
                                       for_each="resource.id")),
    ]  # fmt: skip
    engine = Engine(rules, now=T8)
    for name, rid, minute in (("t.up", "a", 5), ("j.start", "x", 1)):
        engine.feed(Event(event=name, resource={"id": rid}, occurred=at(minute)))
    engine.advance(at(20))  # the heartbeat silence [0, 10) misses
    views = sorted(
        (v.rule, v.key, v.state, minutes(v.start), minutes(v.deadline), v.arrived, v.expected)
        for v in engine.windows()
    )
    assert views == [
        ("after", "x", "pending", 1, 61, 0, 1),
        ("cal", "a", "pending", -1380, 60, 1, 2),
        ("cal", "b", "pending", -1380, 60, 0, 2),
        ("hb", "", "missed", 0, 10, 0, 1),
    ]
    assert [v.key for v in engine.windows("cal")] == ["a", "b"]
