"""Delivery order changes nothing: every permutation of the same events gives the same firings.

Events delivered before the watermark passes them are decided in event time, whatever
order they arrive in (issue 15: thresholds, after-windows, sequences and compounds; and
the calendar and heartbeat absences, which were order-free already). Each example draws
rules of one kind and a set of events, feeds the set in two orders while the watermark
waits at the load time, then moves the clock past every window: the firings must be the
same, ids included.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.rules import (
    Rule,
    absent,
    after,
    all_of,
    any_of,
    at_least,
    cron,
    heartbeat,
    on,
    payload,
    sequence,
)
from interlock.rules.engine.engine import Engine
from interlock.sdk import Event

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
UNIT = timedelta(seconds=30)
RESOURCES = ("a", "b")
KEYINGS: tuple[Any, ...] = ((), "resource.id")


def rule(when: Any, index: int = 0) -> Rule:
    return Rule(name=f"r{index}", when=when)


thresholds = st.builds(
    lambda at_least_, within, for_each: rule(
        on("job.failed", at_least=at_least_, within=within, for_each=for_each)
    ),
    st.integers(2, 3),
    st.sampled_from(("2m", "5m")),
    st.sampled_from(KEYINGS),
)
sequences = st.builds(
    lambda steps, within, for_each: rule(sequence(*steps, within=within, for_each=for_each)),
    st.permutations(("job.a", "job.b", "job.c")),
    st.sampled_from(("3m", "10m")),
    st.sampled_from(KEYINGS),
)
compounds = st.builds(
    lambda kind, within, for_each: rule(
        {
            "all": lambda: all_of(
                on("job.a"), on("job.b", at_least=2, within="5m"), within=within, for_each=for_each
            ),
            "any": lambda: any_of("job.a", "job.c", within=within, for_each=for_each),
            "two": lambda: at_least(
                2, "job.a", "job.b", on("job.c", where=payload.n >= 1), within=within,
                for_each=for_each,
            ),
        }[kind]()
    ),
    st.sampled_from(("all", "any", "two")),
    st.sampled_from(("2m", "10m")),
    st.sampled_from(KEYINGS),
)  # fmt: skip
afters = st.builds(
    lambda within, count, grace, for_each: rule(
        absent(
            "job.b", by=after("job.a", within=within), at_least=count, grace=grace,
            for_each=for_each,
        )
    ),
    st.sampled_from(("2m", "5m")),
    st.integers(1, 2),
    st.sampled_from(("0s", "1m")),
    st.sampled_from(KEYINGS),
)  # fmt: skip
calendars = st.builds(
    lambda count, grace, resolve: rule(
        absent(
            "job.b", by=cron("*/5 * * * *"), at_least=count, grace=grace, resolve=resolve,
            for_each="resource.id", keys=list(RESOURCES),
        )
    ),
    st.integers(1, 2),
    st.sampled_from(("0s", "1m")),
    st.sampled_from(("first", "met")),
)  # fmt: skip
heartbeats = st.builds(
    lambda every, grace: rule(
        absent("job.b", by=heartbeat(every), grace=grace, for_each="resource.id",
               keys=list(RESOURCES))
    ),
    st.sampled_from(("2m", "5m")),
    st.sampled_from(("0s", "1m")),
)  # fmt: skip


@st.composite
def events(draw: st.DrawFn) -> list[Event]:
    """Up to 14 events of a few names and resources, some sharing times, some repeated."""
    drawn = draw(
        st.lists(
            st.tuples(
                st.sampled_from(("job.a", "job.b", "job.c", "job.failed")),
                st.sampled_from(RESOURCES),
                st.integers(1, 40),
                st.integers(0, 2),
            ),
            max_size=14,
        )
    )
    made = [
        Event(
            id=uuid.UUID(int=index + 1),
            event=name,
            resource={"id": resource},
            payload={"n": n},
            occurred=T0 + t * UNIT,
            source="test",
        )
        for index, (name, resource, t, n) in enumerate(drawn)
    ]
    repeats = draw(st.lists(st.sampled_from(made), max_size=2)) if made else []
    return made + repeats  # a re-delivered event: same id, same time


def firings(rules: list[Rule], stream: list[Event]) -> list[tuple[Any, ...]]:
    engine = Engine(rules, now=T0)
    produced = []
    for event in stream:
        produced += engine.feed(event)
    produced += engine.advance(T0 + 60 * UNIT)
    produced += engine.advance(T0 + 200 * UNIT)
    return sorted(
        (f.id, f.rule, f.key, f.status, f.at, f.window_start, f.window_end, tuple(f.event_ids))
        for f in produced
    )


ORDER = settings(deadline=None, max_examples=150, derandomize=True)


def check(rules: list[Rule], stream: list[Event], shuffled: list[Event]) -> None:
    assert firings(rules, stream) == firings(rules, shuffled)


@ORDER
@given(thresholds, st.data())
def test_thresholds_do_not_depend_on_delivery_order(when: Rule, data: st.DataObject) -> None:
    stream = data.draw(events())
    check([when], stream, data.draw(st.permutations(stream)))


@ORDER
@given(sequences, st.data())
def test_sequences_do_not_depend_on_delivery_order(when: Rule, data: st.DataObject) -> None:
    stream = data.draw(events())
    check([when], stream, data.draw(st.permutations(stream)))


@ORDER
@given(compounds, st.data())
def test_compounds_do_not_depend_on_delivery_order(when: Rule, data: st.DataObject) -> None:
    stream = data.draw(events())
    check([when], stream, data.draw(st.permutations(stream)))


@ORDER
@given(afters, st.data())
def test_after_windows_do_not_depend_on_delivery_order(when: Rule, data: st.DataObject) -> None:
    stream = data.draw(events())
    check([when], stream, data.draw(st.permutations(stream)))


@ORDER
@given(calendars, st.data())
def test_calendar_windows_do_not_depend_on_delivery_order(when: Rule, data: st.DataObject) -> None:
    stream = data.draw(events())
    check([when], stream, data.draw(st.permutations(stream)))


@ORDER
@given(heartbeats, st.data())
def test_heartbeats_do_not_depend_on_delivery_order(when: Rule, data: st.DataObject) -> None:
    stream = data.draw(events())
    check([when], stream, data.draw(st.permutations(stream)))


def test_the_issues_after_window_example_fires_in_no_order() -> None:
    """start 0h, start 1h, finish 1h30, per resource: no order of the three fires."""
    rules = [
        rule(absent("job.finished", by=after("job.started", within="2h"), for_each="resource.id"))
    ]
    hour = timedelta(hours=1)

    def made(name: str, at: timedelta, n: int) -> Event:
        return Event(id=uuid.UUID(int=n), event=name, resource={"id": "etl"}, occurred=T0 + at)

    three = [made("job.started", 0 * hour, 1), made("job.started", hour, 2),
             made("job.finished", 1.5 * hour, 3)]  # fmt: skip
    orders = [[three[i] for i in order] for order in
              ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))]  # fmt: skip
    for stream in orders:
        engine = Engine(rules, now=T0)
        for event in stream:
            assert engine.feed(event) == []
        assert engine.advance(T0 + 5 * hour) == [], [e.event for e in stream]


def test_the_issues_sequence_example_fires_in_every_order() -> None:
    """A, B, C in event time, delivered A, C, B (and every other order): it fires once."""
    rules = [rule(sequence("job.a", "job.b", "job.c", within="1h"))]
    made = [
        Event(id=uuid.UUID(int=n), event=f"job.{name}", resource={"id": "x"},
              occurred=T0 + n * UNIT)
        for n, name in ((1, "a"), (2, "b"), (3, "c"))
    ]  # fmt: skip
    for order in ((0, 2, 1), (2, 1, 0), (1, 0, 2), (0, 1, 2)):
        engine = Engine(rules, now=T0)
        for index in order:
            engine.feed(made[index])
        [fired] = engine.advance(T0 + 10 * UNIT)
        assert fired.event_ids == [event.id for event in made]
