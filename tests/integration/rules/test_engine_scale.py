"""The engine at scale: many rules on one event name, absences over thousands of keys, and
events far wider than durable_rules holds (255 properties per object).

Behaviour only; how fast is ``tests/perf/bench_engine.py``'s business. The timeouts guard
against durable_rules' failure modes, which hang instead of raising (a node with 512
alternatives spins forever on the first post, 513 never finish loading).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from interlock.rules import (
    Rule,
    absent,
    after,
    at_least,
    deadline,
    heartbeat,
    on,
    payload,
    resource,
)
from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing
from interlock.sdk import Event

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # Monday 07:00 in Berlin
HOT = "db.table.updated"


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def ev(name: str, resource_id: str, at: datetime = T0, **fields: object) -> Event:
    return Event(event=name, resource={"id": resource_id}, payload=fields, occurred=at, source="t")


def fired(firings: list[Firing]) -> list[tuple[str, str]]:
    return sorted((f.rule, f.key) for f in firings)


# -- 10,000 rules, 2,000 on one event name ---------------------------------------------


def ten_thousand_rules() -> list[Rule]:
    """2,000 rules on ``HOT``, one per table; 8,000 more, ten per other event name."""
    rules = [
        Rule(name=f"hot-{i}", when=on(HOT, where=resource.id == f"dw.t{i}")) for i in range(2000)
    ]
    for i in range(8000):
        where = (resource.id == f"job{i}") & (payload.rows >= 1)
        if i % 4 == 0:
            where = where & resource.env.one_of(["prod", "staging"])
        rules.append(Rule(name=f"cold-{i}", when=on(f"etl.e{i // 10}.done", where=where)))
    return rules


@pytest.mark.slow  # loads 10,000 rules: a few seconds
@pytest.mark.timeout(300)
def test_two_thousand_rules_on_one_name_among_ten_thousand_match_exactly() -> None:
    engine = Engine(ten_thousand_rules(), now=T0)
    assert len(engine.rules) == 10_000

    # Every one of the 2,000 tables reaches exactly its own rule, in one batch.
    hot = [ev(HOT, f"dw.t{i}") for i in range(2000)]
    firings = engine.feed_batch(hot)
    assert [f.rule for f in firings] == [f"hot-{i}" for i in range(2000)]
    assert [f.event_ids for f in firings] == [[e.id] for e in hot]

    # Spot checks one at a time, mixed with near misses and the other 8,000 rules.
    rng = random.Random(20261123)
    for i in rng.sample(range(2000), 300):
        assert [f.rule for f in engine.feed(ev(HOT, f"dw.t{i}"))] == [f"hot-{i}"]
        assert engine.feed(ev(HOT, f"dw.t{i}x")) == []  # a table no rule watches
        assert engine.feed(ev(HOT.replace("updated", "dropped"), f"dw.t{i}")) == []
    for i in rng.sample(range(8000), 300):
        name, rid = f"etl.e{i // 10}.done", f"job{i}"

        def cold(env: str, rows: int, name: str = name, rid: str = rid) -> Event:
            return Event(
                event=name, resource={"id": rid, "env": env}, payload={"rows": rows}, occurred=T0
            )

        assert [f.rule for f in engine.feed(cold("prod", 5))] == [f"cold-{i}"]
        assert engine.feed(cold("prod", 0)) == []  # the payload test fails
        # every fourth rule also wants env prod or staging
        assert [f.rule for f in engine.feed(cold("dev", 5))] == (
            [] if i % 4 == 0 else [f"cold-{i}"]
        )
        assert engine.feed(ev(HOT, rid, rows=5)) == []  # right resource, wrong name


@pytest.mark.slow  # loads 10,000 rules: a few seconds
@pytest.mark.timeout(300)
def test_changing_rules_among_ten_thousand_at_run_time() -> None:
    engine = Engine(ten_thousand_rules(), now=T0)
    assert len(engine.feed(ev(HOT, "dw.t7"))) == 1  # loaded and matched once

    engine.remove("hot-5")
    engine.put(Rule(name="hot-6", when=on(HOT, where=resource.id == "dw.moved")))
    engine.set_enabled("hot-8", False)
    engine.put(Rule(name="hot-new", when=on(HOT, where=resource.id == "dw.t9")))  # shares a test

    assert engine.feed(ev(HOT, "dw.t5")) == []
    assert engine.feed(ev(HOT, "dw.t6")) == []
    assert [f.rule for f in engine.feed(ev(HOT, "dw.moved"))] == ["hot-6"]
    assert engine.feed(ev(HOT, "dw.t8")) == []
    assert sorted(f.rule for f in engine.feed(ev(HOT, "dw.t9"))) == ["hot-9", "hot-new"]
    firings = engine.feed_batch([ev(HOT, f"dw.t{i}") for i in range(2000)])
    expected = [f"hot-{i}" for i in range(2000) if i not in {5, 6, 8}] + ["hot-new"]
    assert sorted(f.rule for f in firings) == sorted(expected)


# -- an absence over 5,000 keys --------------------------------------------------------

TABLES = [f"warehouse.t{n:04d}" for n in range(5000)]


def tables_rule() -> Rule:
    return Rule(
        name="tables-by-0900",
        when=absent(
            "db.table.loaded",
            by=deadline("09:00", tz="Europe/Berlin"),
            for_each="resource.id",
            keys=TABLES,
        ),
    )


def restarted(engine: Engine, rules: list[Rule], now: datetime) -> Engine:
    """A fresh engine that took over ``engine``'s exported state."""
    state = engine.export_state()
    fresh = Engine(rules, now=now)
    assert sorted(fresh.import_state(state)) == sorted(rule.name for rule in rules)
    assert fresh.export_state() == state  # the round trip loses nothing
    return fresh


@pytest.mark.timeout(120)
def test_declared_keys_are_all_judged_at_the_deadline_and_survive_a_restart() -> None:
    rules = [tables_rule()]
    engine = Engine(rules, now=berlin(23, 7))
    # Two of three tables report before 09:00; every third never does.
    reported = [t for n, t in enumerate(TABLES) if n % 3]
    engine.feed_batch(
        [ev("db.table.loaded", t, berlin(23, 8, n % 59)) for n, t in enumerate(reported)]
    )
    engine.feed(ev("db.table.loaded", "warehouse.undeclared", berlin(23, 8)))  # not watched
    engine.advance(berlin(23, 8, 59))

    second = restarted(engine, rules, now=berlin(23, 8, 59))
    assert second.next_due() == engine.next_due() == berlin(23, 9)
    assert engine.advance(berlin(23, 8, 59)) == second.advance(berlin(23, 8, 59)) == []

    missed = engine.advance(berlin(23, 9))
    assert sorted(f.key for f in missed) == [t for n, t in enumerate(TABLES) if n % 3 == 0]
    assert all(f.status == "fired" and f.arrived == 0 and not f.late for f in missed)
    assert all(f.window_end == berlin(23, 9) for f in missed)
    assert [f.id for f in second.advance(berlin(23, 9))] == [f.id for f in missed]

    # A restart after the deadline: the misses are remembered, so late events resolve.
    third = restarted(second, rules, now=berlin(23, 9, 30))
    [resolved] = third.feed(ev("db.table.loaded", TABLES[0], berlin(23, 9, 20)))
    assert (resolved.status, resolved.key) == ("resolved", TABLES[0])
    assert third.feed(ev("db.table.loaded", TABLES[1], berlin(23, 9, 21))) == []  # was on time

    # Tuesday: nothing more arrives — every table is judged again, including those never
    # heard of; the two that reported after Monday's deadline counted for Tuesday.
    tuesday = third.advance(berlin(24, 9))
    assert sorted(f.key for f in tuesday) == TABLES[2:]
    assert all(f.window_start == berlin(23, 9) and f.arrived == 0 for f in tuesday)


@pytest.mark.timeout(120)
def test_five_thousand_heartbeats_and_runs_survive_a_restart_mid_window() -> None:
    rules = [
        Rule(
            name="hb", when=absent("worker.heartbeat", by=heartbeat("10m"), for_each="resource.id")
        ),
        Rule(
            name="runs",
            when=absent(
                "job.finished", by=after("job.started", within="1h"), for_each="payload.run"
            ),
        ),
    ]
    engine = Engine(rules, now=T0)
    sec = timedelta(seconds=1)
    engine.feed_batch(
        [ev("worker.heartbeat", f"w{n}", T0 + n % 300 * sec) for n in range(5000)]
        + [ev("job.started", "sched", T0 + n % 600 * sec, run=f"r{n}") for n in range(5000)]
    )
    # Half the runs finish; workers w0..w999 beat again.
    engine.feed_batch(
        [
            ev("job.finished", "sched", T0 + timedelta(minutes=30), run=f"r{n}")
            for n in range(0, 5000, 2)
        ]
        + [ev("worker.heartbeat", f"w{n}", T0 + timedelta(minutes=8)) for n in range(1000)]
    )
    engine.advance(T0 + timedelta(minutes=9))
    second = restarted(engine, rules, now=T0 + timedelta(minutes=9))

    firings = {}
    for name, eng in (("original", engine), ("restarted", second)):
        firings[name] = eng.advance(T0 + timedelta(minutes=30)) + eng.advance(
            T0 + timedelta(hours=2)
        )
    assert [f.id for f in firings["restarted"]] == [f.id for f in firings["original"]]
    got = firings["original"]
    assert fired([f for f in got if f.rule == "hb"]) == sorted(("hb", f"w{n}") for n in range(5000))
    late_workers = {f.key: f.window_start for f in got if f.rule == "hb"}
    assert late_workers["w0"] == T0 + timedelta(minutes=8)
    assert late_workers["w4999"] == T0 + 4999 % 300 * sec
    assert fired([f for f in got if f.rule == "runs"]) == sorted(
        ("runs", f"r{n}") for n in range(1, 5000, 2)
    )
    assert engine.next_due() is None
    assert second.next_due() is None


# -- wide events -----------------------------------------------------------------------

WIDE = "wide.record.updated"


def wide_event(**changes: object) -> Event:
    fields: dict[str, object] = {f"k{n}": n for n in range(1000)}
    fields["nested"] = {f"n{n}": f"v{n}" for n in range(1000)}
    fields.update(changes)
    labels = {f"label{n}": f"l{n}" for n in range(63)}  # the wire contract allows 64 entries
    return Event(event=WIDE, resource={"id": "w", **labels}, payload=fields, occurred=T0)


@pytest.mark.timeout(120)
def test_events_with_a_thousand_payload_keys_still_match() -> None:
    rules = [
        Rule(name="last-key", when=on(WIDE, where=payload.k999 == 999)),
        Rule(name="first-and-last", when=on(WIDE, where=(payload.k0 == 0) & (payload.k999 > 998))),
        Rule(name="nested", when=on(WIDE, where=payload.nested.n777 == "v777")),
        Rule(name="label", when=on(WIDE, where=resource.label62 == "l62")),
        Rule(name="name-only", when=on(WIDE)),
        Rule(name="three", when=on(WIDE, where=payload.k500 == 500, at_least=3, within="1h")),
        Rule(name="never", when=on(WIDE, where=payload.k999 == 1)),
        Rule(
            name="pair",
            when=at_least(2, on(WIDE, where=payload.k10 == 10), "other.event", within="1h"),
        ),
    ]
    engine = Engine(rules, now=T0)
    wide = wide_event()
    names = ["first-and-last", "label", "last-key", "name-only", "nested"]
    assert sorted(f.rule for f in engine.feed(wide)) == names
    assert sorted(f.rule for f in engine.feed(wide_event())) == names
    assert sorted(f.rule for f in engine.feed(wide_event())) == sorted([*names, "three"])
    changed = wide_event(k999=5, nested={"n777": "other"})
    assert sorted(f.rule for f in engine.feed(changed)) == ["label", "name-only"]
    [pair] = engine.feed(ev("other.event", "w"))
    assert pair.rule == "pair"


@pytest.mark.timeout(120)
def test_a_thousand_rules_each_reading_another_key_of_one_wide_event() -> None:
    """More distinct paths under one name than durable holds in one fact (254)."""
    rules = [Rule(name=f"k{n}", when=on(WIDE, where=payload[f"k{n}"] == n)) for n in range(1000)]
    engine = Engine(rules, now=T0)
    assert sorted(f.rule for f in engine.feed(wide_event())) == sorted(f"k{n}" for n in range(1000))
    odd = wide_event(**{f"k{n}": -1 for n in range(1, 1000, 2)})
    assert sorted(f.rule for f in engine.feed(odd)) == sorted(f"k{n}" for n in range(0, 1000, 2))
    assert engine.feed(Event(event=WIDE, resource={"id": "w"}, occurred=T0)) == []
