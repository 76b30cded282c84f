"""The engine in fake time: every trigger kind, late and out-of-order events, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from interlock.rules import (
    Rule,
    absent,
    after,
    all_of,
    at_least,
    deadline,
    heartbeat,
    notify,
    on,
    payload,
    resource,
    sequence,
    workdays,
)
from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing
from interlock.sdk import Event

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # Monday 07:00 in Berlin


def ev(name: str, resource_id: str = "r", at: datetime = T0, **payload_fields: object) -> Event:
    return Event(
        event=name,
        resource={"id": resource_id},
        payload=dict(payload_fields),
        occurred=at,
        source="test",
    )


def berlin(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def summary(firings: list[Firing]) -> list[tuple[str, str, str]]:
    return [(f.rule, f.key, f.status) for f in firings]


# -- event triggers --------------------------------------------------------------------


def test_every_matching_event_fires_once() -> None:
    engine = Engine([Rule(name="failed", when=on("job.failed", where=resource.id == "a"))], now=T0)
    first = ev("job.failed", "a")
    assert engine.feed(ev("job.failed", "b")) == []
    assert engine.feed(ev("job.ok", "a")) == []
    [firing] = engine.feed(first)
    assert (firing.rule, firing.status, firing.event_ids) == ("failed", "fired", [first.id])
    assert engine.feed(first)[0].id == firing.id  # a replayed event gives the same firing id


def fed(engine: Engine, event: Event) -> list[Firing]:
    """Feed ``event`` and advance the watermark to it, as the pipeline does per batch.

    Compounds and sequences take events in event-time order, up to the watermark.
    """
    return engine.feed(event) + engine.advance(event.occurred)


def test_threshold_counts_per_key_within_a_sliding_window() -> None:
    rule = Rule(
        name="flaky", when=on("task.failed", at_least=3, within="1h", for_each="resource.id")
    )
    engine = Engine([rule], now=T0)
    minute = timedelta(minutes=1)
    # Counted in event time once the watermark passes them, however they were delivered.
    for event in [
        ev("task.failed", "a", T0),
        ev("task.failed", "b", T0),
        ev("task.failed", "a", T0 + 61 * minute),  # the first one falls out
        ev("task.failed", "a", T0 + 90 * minute),
        ev("task.failed", "a", T0 + 70 * minute),  # delivered late, within the hour of both
    ]:
        assert engine.feed(event) == []
    [firing] = engine.advance(T0 + 90 * minute)
    assert (firing.key, firing.window_start, firing.window_end) == (
        "a",
        T0 + 61 * minute,
        T0 + 90 * minute,
    )
    assert len(firing.event_ids) == 3
    assert fed(engine, ev("task.failed", "a", T0 + 91 * minute)) == []  # counting afresh


# -- calendar absence ------------------------------------------------------------------


def sales_rule(**changes: object) -> Rule:
    fields: dict[str, object] = {
        "name": "sales-by-0900",
        "when": absent(
            "db.table.updated",
            where=resource.id == "warehouse.sales",
            by=deadline("09:00", tz="Europe/Berlin", days=workdays()),
        ),
        "then": [notify("team")],
    } | changes
    return Rule(**fields)  # type: ignore[arg-type]


def test_on_time_event_means_no_firing_and_the_next_day_is_watched() -> None:
    engine = Engine([sales_rule()], now=berlin(23, 7))
    engine.feed(ev("db.table.updated", "warehouse.sales", berlin(23, 8, 30)))
    assert engine.advance(berlin(23, 9, 1)) == []
    # Tuesday: nothing arrives; the window is Monday 09:00 to Tuesday 09:00.
    [missed] = engine.advance(berlin(24, 9, 0))
    assert missed.status == "fired"
    assert (missed.window_start, missed.window_end) == (berlin(23, 9), berlin(24, 9))
    assert (missed.expected, missed.arrived, missed.late) == (1, 0, False)
    assert "by 2026-11-24T08:00:00+00:00, got 0" in missed.summary


def test_late_event_resolves_the_miss_and_counts_for_the_next_window() -> None:
    engine = Engine([sales_rule()], now=berlin(23, 7))
    assert summary(engine.advance(berlin(23, 9))) == [("sales-by-0900", "", "fired")]
    [resolved] = engine.feed(ev("db.table.updated", "warehouse.sales", berlin(23, 9, 40)))
    assert resolved.status == "resolved"
    assert resolved.window_end == berlin(23, 9)
    assert engine.advance(berlin(24, 9, 5)) == []  # 09:40 Monday counts for Tuesday


def test_weekends_and_the_friday_window() -> None:
    engine = Engine([sales_rule()], now=berlin(27, 10))  # Friday after the deadline
    assert engine.advance(berlin(29, 23)) == []  # no deadline on the weekend
    [missed] = engine.advance(berlin(30, 9))  # Monday
    assert (missed.window_start, missed.window_end) == (berlin(27, 9), berlin(30, 9))


def test_backlog_delays_the_decision_instead_of_a_false_alarm() -> None:
    engine = Engine([sales_rule()], now=berlin(23, 7))
    # Wall clock is past the deadline, but the consumer has only reached 08:50.
    assert engine.advance(berlin(23, 9, 30), watermark=berlin(23, 8, 50)) == []
    engine.feed(ev("db.table.updated", "warehouse.sales", berlin(23, 8, 55)))
    assert engine.advance(berlin(23, 9, 31), watermark=berlin(23, 9, 31)) == []


def test_declared_keys_fire_for_tables_that_never_reported() -> None:
    tables = [f"warehouse.t{n:02d}" for n in range(12)]
    rule = Rule(
        name="twelve",
        when=absent(
            "db.table.updated",
            by=deadline("09:00", tz="Europe/Berlin"),
            for_each="resource.id",
            keys=tables,
        ),
    )
    engine = Engine([rule], now=berlin(23, 7))
    for table in tables[:9]:
        engine.feed(ev("db.table.updated", table, berlin(23, 8)))
    engine.feed(ev("db.table.updated", "warehouse.other", berlin(23, 8)))  # not declared
    assert sorted(f.key for f in engine.advance(berlin(23, 9))) == tables[9:]


def test_a_key_that_goes_silent_is_still_watched() -> None:
    rule = Rule(
        name="per-table",
        when=absent("db.table.updated", by=deadline("09:00"), for_each="resource.id"),
    )
    engine = Engine([rule], now=datetime(2026, 11, 23, 7, tzinfo=UTC))
    engine.feed(ev("db.table.updated", "t1", datetime(2026, 11, 23, 8, tzinfo=UTC)))
    engine.feed(ev("db.table.updated", "t2", datetime(2026, 11, 23, 8, tzinfo=UTC)))
    assert engine.advance(datetime(2026, 11, 23, 9, tzinfo=UTC)) == []
    engine.feed(ev("db.table.updated", "t1", datetime(2026, 11, 24, 8, tzinfo=UTC)))
    assert summary(engine.advance(datetime(2026, 11, 24, 9, tzinfo=UTC))) == [
        ("per-table", "t2", "fired")
    ]
    # t2 stays watched: it misses again the next day, and t1 does too now.
    assert sorted(f.key for f in engine.advance(datetime(2026, 11, 25, 9, tzinfo=UTC))) == [
        "t1",
        "t2",
    ]


def test_count_by_deadline() -> None:
    rule = Rule(
        name="three-files",
        when=absent(
            "s3.object.created",
            where=payload.key.startswith("landing/"),
            by=deadline("07:00"),
            at_least=3,
        ),
    )
    engine = Engine([rule], now=datetime(2026, 11, 23, 1, tzinfo=UTC))
    for n in range(2):
        engine.feed(
            ev(
                "s3.object.created",
                "b",
                datetime(2026, 11, 23, 5, n, tzinfo=UTC),
                key=f"landing/{n}.csv",
            )
        )
    engine.feed(
        ev("s3.object.created", "b", datetime(2026, 11, 23, 5, 5, tzinfo=UTC), key="other/x")
    )
    [missed] = engine.advance(datetime(2026, 11, 23, 7, tzinfo=UTC))
    assert (missed.expected, missed.arrived, len(missed.event_ids)) == (3, 2, 2)


def test_deadline_in_the_skipped_hour_fires_after_the_gap() -> None:
    rule = Rule(name="night", when=absent("x.y", by=deadline("02:30", tz="Europe/Berlin")))
    engine = Engine([rule], now=datetime(2026, 3, 28, 12, tzinfo=UTC))
    # 2026-03-29 02:30 does not exist in Berlin: the deadline shifts to 03:30 CEST (01:30 UTC).
    assert engine.advance(datetime(2026, 3, 29, 1, 29, tzinfo=UTC)) == []
    [missed] = engine.advance(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))
    assert missed.window_end == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_grace_waits_for_stragglers() -> None:
    rule = sales_rule(
        when=absent("db.table.updated", by=deadline("09:00", tz="Europe/Berlin"), grace="10m")
    )
    engine = Engine([rule], now=berlin(23, 7))
    assert engine.advance(berlin(23, 9, 5)) == []
    engine.feed(ev("db.table.updated", "warehouse.sales", berlin(23, 8, 59)))  # late delivery
    assert engine.advance(berlin(23, 9, 10)) == []


# -- after and heartbeat ----------------------------------------------------------------


def job_rule() -> Rule:
    return Rule(
        name="job-2h",
        when=absent("job.finished", by=after("job.started", within="2h"), for_each="payload.run"),
    )


def test_not_followed_within_two_hours() -> None:
    engine = Engine([job_rule()], now=T0)
    engine.feed(ev("job.started", at=T0, run="r1"))
    engine.feed(ev("job.started", at=T0, run="r2"))
    engine.feed(ev("job.finished", at=T0 + timedelta(minutes=50), run="r1"))
    assert engine.next_due() == T0 + timedelta(hours=2)
    [missed] = engine.advance(T0 + timedelta(hours=2))
    assert (missed.key, missed.window_start, missed.window_end) == (
        "r2",
        T0,
        T0 + timedelta(hours=2),
    )
    [resolved] = engine.feed(ev("job.finished", at=T0 + timedelta(hours=3), run="r2"))
    assert resolved.status == "resolved"


def test_finish_fed_before_its_start_still_counts() -> None:
    engine = Engine([job_rule()], now=T0)
    engine.feed(ev("job.finished", at=T0 + timedelta(minutes=5), run="r1"))
    engine.feed(ev("job.started", at=T0, run="r1"))
    assert engine.advance(T0 + timedelta(hours=3)) == []


def test_a_late_start_finds_its_finish_within_the_late_horizon_only() -> None:
    hour = timedelta(hours=1)
    engine = Engine([job_rule()], now=T0, late_horizon=timedelta(hours=6))
    engine.feed(ev("job.finished", at=T0 + 1 * hour, run="r1"))
    engine.feed(ev("job.finished", at=T0 + 1 * hour, run="r2"))
    engine.advance(T0 + 8 * hour)  # 7 h behind: within 2 h + 6 h, both kept
    assert engine.feed(ev("job.started", at=T0, run="r1")) == []
    assert engine.advance(T0 + 9 * hour) == []  # r1's start took its finish
    engine.advance(T0 + 10 * hour)  # 9 h behind: r2's finish is forgotten
    engine.feed(ev("job.started", at=T0, run="r2"))
    [missed] = engine.advance(T0 + 11 * hour)
    assert (missed.key, missed.late) == ("r2", True)


def test_heartbeat_fires_once_per_silence_and_resolves() -> None:
    rule = Rule(
        name="hb", when=absent("worker.heartbeat", by=heartbeat("10m"), for_each="resource.id")
    )
    engine = Engine([rule], now=T0)
    minute = timedelta(minutes=1)
    engine.feed(ev("worker.heartbeat", "w1", T0))
    engine.feed(ev("worker.heartbeat", "w1", T0 + 8 * minute))
    assert engine.advance(T0 + 17 * minute) == []
    [missed] = engine.advance(T0 + 18 * minute)
    assert (missed.key, missed.window_start) == ("w1", T0 + 8 * minute)
    assert engine.advance(T0 + 60 * minute) == []  # once per silence
    [resolved] = engine.feed(ev("worker.heartbeat", "w1", T0 + 61 * minute))
    assert resolved.status == "resolved"
    assert engine.next_due() == T0 + 71 * minute


def test_a_key_watched_from_load_ignores_beats_from_before_it() -> None:
    rule = Rule(name="hb", when=absent("worker.heartbeat", by=heartbeat("10m")))
    engine = Engine([rule], now=T0)
    minute = timedelta(minutes=1)
    assert engine.feed(ev("worker.heartbeat", at=T0 - 5 * minute)) == []
    assert engine.advance(T0 + 9 * minute) == []  # not [T0 - 5m, T0 + 5m)
    [missed] = engine.advance(T0 + 10 * minute)
    assert (missed.window_start, missed.window_end) == (T0, T0 + 10 * minute)


# -- compound and sequence --------------------------------------------------------------


def test_all_of_within_a_window() -> None:
    rule = Rule(
        name="inputs",
        when=all_of(
            on("db.table.updated", where=resource.id == "sales"),
            on("s3.object.created", where=payload.key.glob("fx/*.csv")),
            within="2h",
        ),
    )
    engine = Engine([rule], now=T0)
    assert fed(engine, ev("db.table.updated", "sales", T0)) == []
    assert fed(engine, ev("s3.object.created", "b", T0 + timedelta(hours=3), key="fx/a.csv")) == []
    [firing] = fed(engine, ev("db.table.updated", "sales", T0 + timedelta(hours=4)))
    assert firing.window_start == T0 + timedelta(hours=3)
    assert len(firing.event_ids) == 2


def test_at_least_two_of_three_per_key() -> None:
    rule = Rule(
        name="two",
        when=at_least(2, "a.done", "b.done", "c.done", within="30m", for_each="payload.day"),
    )
    engine = Engine([rule], now=T0)
    assert fed(engine, ev("a.done", at=T0, day="mon")) == []
    assert fed(engine, ev("b.done", at=T0, day="tue")) == []
    assert summary(fed(engine, ev("c.done", at=T0, day="mon"))) == [("two", "mon", "fired")]


def test_sequence_in_order_within_the_window() -> None:
    rule = Rule(
        name="etl",
        when=sequence(
            "etl.extract", "etl.load", "etl.transform", within="1h", for_each="payload.batch"
        ),
    )
    engine = Engine([rule], now=T0)
    minute = timedelta(minutes=1)
    # Delivered out of order; taken in event time once the watermark passes them.
    for event in [
        ev("etl.transform", at=T0 + 90 * minute, batch=2),
        ev("etl.load", at=T0 + 2 * minute, batch=1),
        ev("etl.extract", at=T0 + minute, batch=2),
        ev("etl.load", at=T0, batch=1),  # before its extract in event time: ignored
        ev("etl.transform", at=T0 + 3 * minute, batch=1),
        ev("etl.load", at=T0 + 70 * minute, batch=2),  # batch 2 too slow: expired
        ev("etl.extract", at=T0 + minute, batch=1),
    ]:
        assert engine.feed(event) == []
    [firing] = engine.advance(T0 + 2 * timedelta(hours=1))
    assert (firing.key, firing.window_start, firing.window_end) == (
        "1",
        T0 + minute,
        T0 + 3 * minute,
    )


# -- rules at run time and restarts ----------------------------------------------------


def test_replacing_actions_keeps_windows_changing_the_trigger_resets_them() -> None:
    rule = Rule(name="flaky", when=on("t.failed", at_least=2, within="1h"))
    engine = Engine([rule], now=T0)
    engine.feed(ev("t.failed"))
    engine.put(Rule(name="flaky", when=rule.when, then=[notify("other")]))
    assert len(engine.feed(ev("t.failed"))) == 1
    engine.feed(ev("t.failed"))
    engine.put(Rule(name="flaky", when=on("t.failed", at_least=2, within="2h")))
    assert engine.feed(ev("t.failed")) == []


def test_disabled_rules_fire_nothing_and_restart_fresh() -> None:
    engine = Engine([sales_rule()], now=berlin(23, 7))
    engine.set_enabled("sales-by-0900", False)
    assert engine.advance(berlin(25, 10)) == []
    engine.set_enabled("sales-by-0900", True)
    assert engine.advance(berlin(25, 12)) == []
    assert len(engine.advance(berlin(26, 9))) == 1


def all_kinds() -> list[Rule]:
    return [
        Rule(
            name="threshold", when=on("t.failed", at_least=3, within="1h", for_each="resource.id")
        ),
        sales_rule(),
        job_rule(),
        Rule(
            name="hb", when=absent("worker.heartbeat", by=heartbeat("10m"), for_each="resource.id")
        ),
        Rule(name="inputs", when=all_of("a.done", "b.done", within="3h")),
        Rule(name="etl", when=sequence("etl.extract", "etl.load", "etl.transform", within="3h")),
    ]


def script() -> list[tuple[str, object]]:
    """A day of events and clock advances touching every trigger kind."""
    start = berlin(23, 7)
    steps: list[tuple[str, object]] = []
    for minute in range(0, 240, 7):
        at = start + timedelta(minutes=minute)
        steps.append(("advance", at))
        if minute % 21 == 0:
            steps.append(("feed", ev("t.failed", "a", at)))
        if minute < 60:
            steps.append(("feed", ev("worker.heartbeat", "w1", at)))
        if minute == 14:
            steps += [
                ("feed", ev("job.started", at=at, run="r1")),
                ("feed", ev("a.done", at=at)),
                ("feed", ev("etl.extract", at=at)),
                ("feed", ev("job.started", at=at, run="r2")),
            ]
        if minute == 77:
            steps += [
                ("feed", ev("etl.load", at=at)),
                ("feed", ev("job.finished", at=at, run="r1")),
            ]
        if minute == 140:
            steps += [("feed", ev("b.done", at=at)), ("feed", ev("etl.transform", at=at))]
        if minute == 203:
            steps.append(("feed", ev("db.table.updated", "warehouse.sales", at)))
    steps.append(("advance", berlin(24, 10)))
    return steps


def run(engine: Engine, steps: list[tuple[str, object]]) -> list[Firing]:
    firings: list[Firing] = []
    for kind, value in steps:
        if kind == "feed":
            firings += engine.feed(value)  # type: ignore[arg-type]
        else:
            firings += engine.advance(value)  # type: ignore[arg-type]
    return firings


@pytest.mark.parametrize("cut", [5, 20, 33, 45, 60, 80])
def test_a_restart_anywhere_behaves_as_if_it_never_stopped(cut: int) -> None:
    steps = script()
    uninterrupted = run(Engine(all_kinds(), now=berlin(23, 7)), steps)
    assert {f.rule for f in uninterrupted} == {
        "threshold",
        "sales-by-0900",
        "job-2h",
        "hb",
        "inputs",
        "etl",
    }
    first = Engine(all_kinds(), now=berlin(23, 7))
    before = run(first, steps[:cut])
    state = first.export_state()
    second = Engine(all_kinds(), now=berlin(23, 7))
    assert sorted(second.import_state(state)) == sorted(r.name for r in all_kinds())
    after_restart = run(second, steps[cut:])
    assert [f.id for f in before + after_restart] == [f.id for f in uninterrupted]


def test_windows_that_expired_while_down_fire_marked_late() -> None:
    engine = Engine([sales_rule()], now=berlin(23, 7))
    state = engine.export_state()
    restarted = Engine([sales_rule()], now=berlin(23, 11))
    restarted.import_state(state)
    [missed] = restarted.advance(berlin(23, 11))
    assert missed.late
    assert missed.window_end == berlin(23, 9)
