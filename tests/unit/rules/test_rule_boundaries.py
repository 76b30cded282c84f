"""One rule cannot stop the others: refused at once, or quarantined, never a crash or a hang.

- DSL arguments of the wrong kind are taken as what they mean (``for_each=resource.id``)
  or refused at once with ``TypeError`` naming the function.
- What the engine cannot run is refused by validation with the field's path.
- Whatever validation accepts, the engine builds and runs (hypothesis).
- A rule that fails anyway is quarantined as broken; the others, and the event that
  broke it, go on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.rules import (
    Rule,
    RuleDefinitionError,
    absent,
    after,
    all_of,
    any_of,
    at_least,
    cron,
    deadline,
    heartbeat,
    on,
    payload,
    resource,
    sequence,
)
from interlock.rules.engine.engine import Engine
from interlock.rules.rule import dump_rules, load_rules
from interlock.rules.triggers import CompoundTrigger
from interlock.sdk import Event

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def ev(name: str, resource_id: str = "r", at: datetime = T0, **fields: object) -> Event:
    return Event(event=name, resource={"id": resource_id}, payload=fields, occurred=at)


# -- the DSL -----------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_for_each_given_a_field_is_its_path() -> None:
    # It used to iterate Field(...)[0], [1], ... forever, memory growing, until killed.
    assert on("a.b", for_each=resource.id).for_each == ["resource.id"]
    assert absent("a.b", by=heartbeat("1h"), for_each=[resource.id, "payload.x"]).for_each == [
        "resource.id",
        "payload.x",
    ]
    assert all_of("a.b", "c.d", within="1h", for_each=resource.id).for_each == ["resource.id"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: on(resource.id), "on\\(\\): event names are strings"),
        (lambda: on("a.b", where=resource.id), "where= takes a condition"),
        (lambda: on("a.b", where=True), "where= takes a condition"),
        (lambda: on("a.b", at_least="3"), "at_least must be a whole number"),
        (lambda: on("a.b", within=[1]), "within must be a duration"),
        (lambda: on("a.b", for_each=3), "for_each takes a path"),
        (lambda: absent("a.b", by="09:00"), "by= takes deadline"),
        (lambda: absent("a.b", by=heartbeat("1h"), keys="k"), "keys must be a list"),
        (lambda: heartbeat(resource.id), "every must be a duration"),
        (lambda: sequence(on("a.b", at_least=3, within="1h"), "c.d", within="1h"), "step 1"),
        (lambda: sequence("a.b", 5, within="1h"), "step 2 must be an event name"),
        (lambda: list(resource.id), "is not a list"),
        (lambda: bool(resource.id), "has no truth value"),
    ],
)
def test_dsl_arguments_of_the_wrong_kind_fail_at_once(build: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        build()


# -- validation: what the engine cannot run ------------------------------------------------

UNRUNNABLE = [
    (
        lambda: all_of(
            on("job.a.done"),
            on("job.b.done"),
            absent("job.c.done", by=heartbeat("10m")),
            within="6h",
        ),
        "when.triggers[2]",
        "an absence cannot be part of a compound trigger",
    ),
    (
        lambda: all_of(all_of("a.b", "c.d", within="1h"), on("e.f"), within="6h"),
        "when.triggers[0]",
        "compound triggers cannot be nested",
    ),
    (
        lambda: any_of(sequence("a.b", "c.d", within="1h"), "e.f", within="6h"),
        "when.triggers[0]",
        "a sequence cannot be part of a compound trigger",
    ),
    (
        lambda: at_least(1, on("a.b", for_each="resource.id"), "c.d", within="1h"),
        "when.triggers[0].for_each",
        "takes its key from the compound",
    ),
]


@pytest.mark.parametrize(("build", "path", "message"), UNRUNNABLE)
def test_what_the_engine_cannot_run_is_refused_with_its_path(
    build: Any, path: str, message: str
) -> None:
    with pytest.raises(RuleDefinitionError) as refused:
        Rule(name="x", when=build())
    [issue] = refused.value.issues
    assert (issue.path, issue.rule) == (path, "x")
    assert message in issue.message


@pytest.mark.parametrize(("build", "path", "message"), UNRUNNABLE)
def test_the_same_shapes_are_refused_from_json(build: Any, path: str, message: str) -> None:
    document = {"schema_version": 1, "rules": [{"name": "x", "when": msgspec.to_builtins(build())}]}
    with pytest.raises(RuleDefinitionError) as refused:
        load_rules(msgspec.json.encode(document))
    [issue] = refused.value.issues
    assert issue.path == path
    assert message in issue.message


def test_parts_of_a_python_built_rule_of_the_wrong_type_are_refused() -> None:
    trigger = on("a.b", at_least=2, within="1h")
    msgspec.structs.force_setattr(trigger, "threshold", "2")
    with pytest.raises(RuleDefinitionError, match=r"when\.threshold: expected `int`"):
        Rule(name="x", when=trigger)


# -- whatever validation accepts, the engine runs --------------------------------------------

names = st.sampled_from(["a.b", "a.c", "s3.object.*", "job.>"])
predicates = st.sampled_from(
    [None, resource.id == "r", payload.n > 2, resource.id.glob("r*"), payload.s.matches("^x")]
)
durations = st.sampled_from(["1m", "10m", "1h"])
keys = st.sampled_from([(), "resource.id", ["resource.id", "payload.s"]])


def events_strategy() -> st.SearchStrategy[Any]:
    return st.builds(
        on,
        names,
        predicates,
        at_least=st.integers(1, 3),
        within=durations,
        for_each=keys,
    )


windows = st.one_of(
    st.builds(heartbeat, durations),
    st.builds(after, names, within=durations),
    st.builds(
        deadline, st.sampled_from(["09:00", "23:30"]), tz=st.sampled_from(["UTC", "Europe/Berlin"])
    ),
    st.builds(cron, st.sampled_from(["*/5 * * * *", "0 9 * * mon-fri"])),
)
absences = st.builds(
    absent, names, predicates, by=windows, at_least=st.integers(1, 2), for_each=keys
)
parts = st.one_of(events_strategy(), absences)  # absences among the parts: refused
compounds = st.builds(
    lambda kind, triggers, within, for_each: (
        all_of(*triggers, within=within, for_each=for_each)
        if kind == "all"
        else any_of(*triggers, within=within, for_each=for_each)
    ),
    st.sampled_from(["all", "any"]),
    st.lists(parts, min_size=2, max_size=3),
    durations,
    keys,
)
sequences = st.builds(
    lambda steps, within, for_each: sequence(*steps, within=within, for_each=for_each),
    st.lists(names, min_size=2, max_size=3),
    durations,
    keys,
)
triggers = st.one_of(events_strategy(), absences, compounds, sequences)
feed = st.lists(
    st.tuples(
        st.sampled_from(["a.b", "a.c", "s3.object.created", "job.x.done"]),
        st.sampled_from(["r", "r2", "x"]),
        st.integers(0, 7200),
        st.integers(0, 5),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(when=triggers, events=feed)
def test_every_rule_validation_accepts_the_engine_builds_and_runs(when: Any, events: Any) -> None:
    try:
        rule = Rule(name="fuzzed", when=when)
    except RuleDefinitionError:
        return
    (reloaded,) = load_rules(dump_rules([rule]))  # the stored form runs the same
    engine = Engine([reloaded], now=T0)
    for name, resource_id, seconds, n in sorted(events, key=lambda item: item[2]):
        at = T0 + timedelta(seconds=seconds)
        engine.feed(ev(name, resource_id, at, n=n, s=f"x{n}"))
        engine.advance(at)
    engine.advance(T0 + timedelta(days=2))
    assert engine.broken == {}
    restored = Engine([reloaded], now=T0)
    restored.import_state(engine.export_state())
    assert restored.broken == {}


# -- quarantine: a rule that fails anyway -------------------------------------------------------


def explode(engine: Engine, name: str) -> None:
    """Fault injection: rule ``name``'s state raises when fed, judged or pruned (no real
    trigger state does; the boundary is for the bugs nobody found yet)."""
    state: Any = engine._loaded[name].state

    def on_event(*args: Any) -> list[Any]:
        raise ZeroDivisionError("a bug in a trigger state")

    def judge(*args: Any) -> list[Any]:
        raise KeyError("a bug while judging")

    state.on_event = on_event
    state.judge = judge
    state.prune = judge


def test_a_rule_whose_evaluation_raises_is_quarantined_and_the_event_reaches_the_others() -> None:
    first = Rule(name="first", when=on("job.done"))
    broken = Rule(name="broken", when=on("job.done"))
    last = Rule(name="last", when=on("job.done"))
    engine = Engine([first, broken, last], now=T0)
    explode(engine, "broken")
    firings = engine.feed(ev("job.done"))
    assert sorted(f.rule for f in firings) == ["first", "last"]
    assert "ZeroDivisionError: a bug in a trigger state" in engine.broken["broken"]
    assert engine.broken_reason("broken") == engine.broken["broken"]
    assert engine.broken_reason("first") is None
    assert engine.broken_reason("no-such-rule") is None
    assert [name for name, _ in engine.take_broken()] == ["broken"]
    assert engine.take_broken() == []  # reported once
    assert sorted(f.rule for f in engine.feed(ev("job.done"))) == ["first", "last"]
    assert "broken" not in msgspec.json.decode(engine.export_state())["rules"]
    engine.put(Rule(name="broken", when=on("job.done"), description="fixed"))
    assert engine.broken == {}
    assert engine.broken_reason("broken") is None
    assert sorted(f.rule for f in engine.feed(ev("job.done"))) == ["broken", "first", "last"]


def test_a_rule_whose_judging_raises_is_quarantined_and_the_others_are_judged() -> None:
    silent = Rule(name="silent", when=absent("job.done", by=heartbeat("10m")))
    failing = Rule(name="failing", when=absent("job.done", by=heartbeat("5m")))
    engine = Engine([silent, failing], now=T0)
    explode(engine, "failing")
    firings = engine.advance(T0 + timedelta(minutes=11))
    assert [f.rule for f in firings] == ["silent"]
    assert "KeyError" in engine.broken["failing"]


def test_a_rule_the_engine_cannot_build_is_loaded_broken_and_the_others_run() -> None:
    # As a stored rule from before validation refused this shape would be.
    bad = Rule(name="bad", when=all_of("job.a.done", "job.b.done", within="6h"))
    absence = absent("job.c.done", by=heartbeat("10m"))
    assert isinstance(bad.when, CompoundTrigger)
    msgspec.structs.force_setattr(bad.when, "triggers", [*bad.when.triggers, absence])
    good = Rule(name="good", when=on("job.a.done"))
    engine = Engine([bad, good], now=T0)
    assert "cannot be built: AttributeError" in engine.broken["bad"]
    assert [f.rule for f in engine.feed(ev("job.a.done"))] == ["good"]
    assert engine.advance(T0 + timedelta(hours=1)) == []


def test_a_matching_failure_is_isolated_to_the_rule_whose_condition_raises() -> None:
    rules = [
        Rule(name="plain", when=on("job.done")),
        Rule(name="filtered", when=on("job.done", where=payload.n > 2)),
        Rule(name="faulty", when=on("job.done", where=payload.n > 1)),
    ]
    engine = Engine(rules, now=T0)
    matcher = engine._matcher

    def failing_batch(events: Any) -> Any:
        raise RuntimeError("durable returned garbage")  # fault injection: a matcher bug

    matcher.match_batch = failing_batch  # type: ignore[method-assign]
    matcher.match = failing_batch  # type: ignore[method-assign]
    faulty = matcher._entries[f"faulty{chr(0x1F)}0"]
    msgspec.structs.force_setattr(faulty.spec, "where", _RaisingPredicate())
    firings = engine.feed_batch([ev("job.done", n=5)])
    assert sorted(f.rule for f in firings) == ["filtered", "plain"]
    assert "its condition failed" in engine.broken["faulty"]


class _RaisingPredicate:
    def matches(self, event: Any) -> bool:
        raise ValueError("a predicate bug")


def test_a_checkpoint_that_cannot_be_restored_starts_that_rule_afresh() -> None:
    rule = Rule(name="hb", when=absent("job.done", by=heartbeat("10m")))
    engine = Engine([rule], now=T0)
    saved = msgspec.json.decode(engine.export_state())
    saved["rules"]["hb"]["state"] = {"start": "not a mapping"}
    fresh = Engine([rule], now=T0)
    assert fresh.import_state(msgspec.json.encode(saved)) == []
    assert fresh.broken == {}
    assert [f.rule for f in fresh.advance(T0 + timedelta(minutes=11))] == ["hb"]
    with pytest.raises(ValueError, match="cannot be read"):
        fresh.import_state(b"{not json")
