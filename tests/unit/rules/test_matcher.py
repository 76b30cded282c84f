"""Matcher: same answers as Predicate.matches, and durable_rules' hazards handled.

The facts about durable_rules 2.0.28 the matcher relies on are asserted here too, against
durable itself, so an upgrade that changes them fails loudly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import durable_rules_engine as durable  # type: ignore[import-not-found]
import pytest
from durable import engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.rules.engine import Matcher, MatchSpec, durable_limits
from interlock.rules.fields import Field
from interlock.rules.names import pattern_matches
from interlock.rules.predicates import (
    AllOf,
    AnyOf,
    AnyPredicate,
    Compare,
    Contains,
    Exists,
    Glob,
    Not,
    OneOf,
    Regex,
    RelatedTo,
)
from interlock.sdk.event import Event


def expected(specs: list[MatchSpec], event: Event) -> list[str]:
    return [
        spec.id
        for spec in specs
        if any(pattern_matches(pattern, event.event) for pattern in spec.names)
        and (spec.where is None or spec.where.matches(event))
    ]


def ev(name: str = "db.table.updated", rid: str = "warehouse.sales", **payload: Any) -> Event:
    return Event(event=name, resource={"id": rid}, payload=payload)


def eq(path: str, value: Any) -> Compare:
    return Compare(path=path, op="==", value=value)


@pytest.fixture
def matcher() -> Iterator[Matcher]:
    with Matcher() as m:
        yield m


@pytest.fixture
def durable_matcher() -> Iterator[Matcher]:
    """A matcher leaving durable every predicate it can narrow (no Python index)."""
    with Matcher(index=False) as m:
        yield m


# -- the API ----------------------------------------------------------------------------


def test_ids_come_in_registration_order_and_replace_keeps_the_place(matcher: Matcher) -> None:
    matcher.add(MatchSpec("late", ("db.>",)))
    matcher.add(MatchSpec("sales", ("db.table.updated",), eq("resource.id", "warehouse.sales")))
    matcher.add(MatchSpec("rows", ("db.table.*",), Compare(path="payload.rows", op=">", value=5)))
    assert matcher.match(ev(rows=10)) == ["late", "sales", "rows"]
    assert matcher.match(ev(rows=1)) == ["late", "sales"]
    assert matcher.match(ev(name="s3.object.created")) == []

    matcher.replace(MatchSpec("late", ("db.table.updated",), eq("payload.rows", 1)))
    assert matcher.match(ev(rows=1)) == ["late", "sales"]
    assert matcher.match(ev(name="db.view.updated")) == []
    matcher.remove("sales")
    assert matcher.match_batch([ev(rows=1), ev(rows=10)]) == [["late"], ["rows"]]


def test_mistakes_are_refused_before_anything_changes(matcher: Matcher) -> None:
    matcher.add(MatchSpec("a", ("db.table.updated",)))
    with pytest.raises(ValueError, match="already registered"):
        matcher.add(MatchSpec("a", ("db.table.updated",)))
    with pytest.raises(ValueError, match=r"'b'.*last token"):
        matcher.add(MatchSpec("b", ("db.>.x",)))
    with pytest.raises(ValueError, match="no event-name pattern"):
        matcher.add(MatchSpec("c", ()))
    with pytest.raises(KeyError, match="'nope'"):
        matcher.remove("nope")
    with pytest.raises(KeyError, match="use add"):
        matcher.replace(MatchSpec("nope", ("x",)))
    with pytest.raises(ValueError, match="rules_per_ruleset"):
        Matcher(rules_per_ruleset=0)
    assert matcher.match(ev()) == ["a"]


def test_removing_everything_drops_every_ruleset(durable_matcher: Matcher) -> None:
    matcher = durable_matcher
    for index in range(300):
        matcher.add(MatchSpec(f"s{index}", ("db.table.updated",), eq("resource.id", f"t{index}")))
    assert matcher.stats.rulesets == 2
    for index in range(300):
        matcher.remove(f"s{index}")
    assert matcher.stats.rulesets == matcher.stats.durable_rules == matcher.stats.specs == 0
    assert matcher.match(ev(rid="t1")) == []


@pytest.mark.timeout(30)
def test_specs_added_one_by_one_are_loaded_once(matcher: Matcher) -> None:
    for i in range(5000):  # each add only marks its ruleset; the next match loads it
        matcher.add(MatchSpec(f"s{i}", (f"app{i % 50}.done",), eq("resource.id", f"t{i}")))
    assert matcher.match(ev("app7.done", rid="t4957")) == ["s4957"]


def test_a_closed_matcher_refuses_work() -> None:
    matcher = Matcher([MatchSpec("a", ("db.table.updated",), eq("payload.rows", 1))])
    matcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        matcher.match(ev(rows=1))


def test_stats_tell_routed_from_short_circuited(durable_matcher: Matcher) -> None:
    matcher = durable_matcher
    matcher.add(MatchSpec("named", ("job.started",)))
    matcher.add(MatchSpec("regex", ("job.failed",), Regex(path="payload.log", pattern="OOM")))
    matcher.add(MatchSpec("rows", ("db.table.updated",), eq("payload.rows", 3)))
    matcher.match_batch(
        [ev("job.started"), ev("job.failed", log="OOM!"), ev("x.y"), ev(rows=3), ev(rows=4)]
    )
    stats = matcher.stats
    assert (stats.events, stats.routed, stats.short_circuited, stats.posts) == (5, 2, 3, 2)
    assert stats.python_only_specs == 1  # the lone regex: durable cannot narrow it


# -- the contract: exactly Predicate.matches --------------------------------------------

PATHS = ["resource.id", "resource.env", "payload.a", "payload.b", "payload.n.x", "payload.l.0"]
PATHS += ["event", "source", "payload"]
STRINGS = ["", "a", "ab", "ab!", "ab ", 'q"t', "b\\s", "é", "日本", "\ud800", "x\ny", "warehouse.a"]
STRINGS += ["a*", "A", "ab\n", "warehouse.ab"]
NUMBERS = [0, 1, -1, 5, 2**53, 2**53 + 1, -(2**60), 2**70, 0.5, -1.5, 1.0, 1e-7, 1e20]
NUMBERS += [float("nan"), float("inf"), 5e-324, 2.5]
scalars = st.one_of(
    st.sampled_from(STRINGS), st.sampled_from(NUMBERS), st.integers(-3, 3), st.booleans(), st.none()
)
paths = st.sampled_from(PATHS)
leaves = st.one_of(
    st.builds(
        Compare, path=paths, op=st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), value=scalars
    ),
    st.builds(OneOf, path=paths, values=st.lists(scalars, max_size=4).map(tuple)),
    st.builds(Exists, path=paths),
    st.builds(Contains, path=paths, value=scalars),
    st.builds(Glob, path=paths, pattern=st.sampled_from(["a*", "a", "*", "ab?", "[ab]*", "é"])),
    st.builds(Regex, path=paths, pattern=st.sampled_from(["^a", "b$", "a|b", "!"])),
    # shapes the Python index takes: literal starts, anchored regexes, numeric ranges
    st.builds(
        Glob,
        path=paths,
        pattern=st.sampled_from(["ab*", "a[*]*", "warehouse.*", "warehouse.a?*", "[[]*", "a**"]),
    ),
    st.builds(
        Regex,
        path=paths,
        pattern=st.sampled_from(["^ab", r"\Aa", "(?m)^a", "^a$", r"^warehouse\.a(b|$)", "^a|b"]),
    ),
    st.builds(lambda path, prefix: Field(path).startswith(prefix), paths, st.sampled_from(STRINGS)),
    st.builds(
        lambda path, low, high: AllOf(
            items=(Compare(path=path, op=">=", value=low), Compare(path=path, op="<", value=high))
        ),
        paths,
        st.sampled_from(NUMBERS),
        st.sampled_from(NUMBERS),
    ),
    st.builds(
        RelatedTo,
        role=st.sampled_from([None, "finance", "daily"]),
        where=st.none() | st.builds(eq, st.sampled_from(["id", "tier"]), st.sampled_from(STRINGS)),
    ),
)
predicates: st.SearchStrategy[AnyPredicate] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(AllOf, items=st.lists(inner, max_size=3).map(tuple)),
        st.builds(AnyOf, items=st.lists(inner, max_size=3).map(tuple)),
        st.builds(Not, item=inner),
    ),
    max_leaves=8,
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner),
    max_leaves=5,
)
NAMES = ["db.table.updated", "db.table.created", "s3.object.created", "job.started"]
PATTERNS = [*NAMES, "db.table.*", "db.>", "*.object.*", ">"]
events = st.builds(
    lambda name, rid, env, payload, related: Event(
        event=name,
        resource={"id": rid} if env is None else {"id": rid, "env": env},
        payload=payload,
        related=related,
    ),
    st.sampled_from(NAMES),
    st.sampled_from(STRINGS[1:]),
    st.none() | st.sampled_from(STRINGS),
    st.dictionaries(st.sampled_from(["a", "b", "n", "l", "z"]), values, max_size=5),
    st.lists(
        st.fixed_dictionaries(
            {"id": st.sampled_from(["a", "b"]), "role": st.sampled_from(["finance", "daily"])},
            optional={"tier": st.sampled_from(STRINGS)},
        ),
        max_size=2,
    ),
)
specs = st.lists(
    st.builds(
        lambda names, where: (tuple(names), where),
        st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2),
        st.none() | predicates,
    ),
    min_size=1,
    max_size=8,
).map(lambda drawn: [MatchSpec(f"s{i}", names, where) for i, (names, where) in enumerate(drawn)])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=specs,
    replacements=st.lists(predicates, max_size=3),
    removed=st.sets(st.integers(0, 7), max_size=2),
    events=st.lists(events, min_size=1, max_size=6),
    rules_per_ruleset=st.sampled_from([1, 2, 256]),
    index=st.booleans(),
)
def test_matches_exactly_what_predicates_match(
    specs: list[MatchSpec],
    replacements: list[AnyPredicate],
    removed: set[int],
    events: list[Event],
    rules_per_ruleset: int,
    index: bool,
) -> None:
    half = len(specs) // 2
    with Matcher(specs[:half], rules_per_ruleset=rules_per_ruleset, index=index) as matcher:
        for spec in specs[half:]:
            matcher.add(spec)
        live = {spec.id: spec for spec in specs}
        for index, where in enumerate(replacements):
            old = specs[index % len(specs)]
            live[old.id] = MatchSpec(old.id, old.names, where)
            matcher.replace(live[old.id])
        for index in removed & set(range(len(specs))):
            matcher.remove(specs[index].id)
            del live[specs[index].id]
        order = [spec.id for spec in specs if spec.id in live]
        for event in events:
            assert matcher.match(event) == expected([live[i] for i in order], event)


# -- durable_rules' hazards -------------------------------------------------------------


@pytest.mark.timeout(60)
def test_ten_thousand_specs_with_two_thousand_on_one_name_load_and_match() -> None:
    hot = [
        MatchSpec(f"hot/{i}", ("db.table.updated",), eq("resource.id", f"t{i}"))
        for i in range(2000)
    ]
    cold = [
        MatchSpec(
            f"cold/{i}", (f"app{i % 400}.job.*",), Compare(path="payload.rows", op=">=", value=i)
        )
        for i in range(8000)
    ]
    with Matcher([*hot, *cold], index=False) as matcher:
        assert matcher.match(ev(rid="t1234")) == ["hot/1234"]
        assert matcher.match(ev(rid="t0")) == ["hot/0"]
        assert matcher.match(ev(rid="t2000")) == []
        # app7.job.x reaches cold/7, cold/407, ...: rows=4000 satisfies those with i <= 4000
        assert matcher.match(ev("app7.job.done", rows=4000)) == [
            f"cold/{i}" for i in range(7, 4001, 400)
        ]
        stats = matcher.stats
        assert stats.specs == 10_000
        assert stats.rulesets >= 10_000 // 256
        assert stats.fallbacks == 0


@pytest.mark.timeout(60)
def test_more_alternatives_on_one_node_than_durable_holds() -> None:
    # 600 two-way ORs on one name put 1,200 alternatives under one durable node (it hangs
    # at 512): the rulesets are split; a 600-value OneOf is narrowed by type, then Python.
    specs = [
        MatchSpec(
            f"or/{i}",
            ("db.table.updated",),
            AnyOf(items=(eq("resource.id", f"a{i}"), eq("resource.id", f"b{i}"))),
        )
        for i in range(600)
    ]
    specs.append(
        MatchSpec(
            "in",
            ("db.table.updated",),
            OneOf(path="resource.id", values=tuple(f"b{i}" for i in range(600))),
        )
    )
    with Matcher(specs, index=False) as matcher:
        assert matcher.match(ev(rid="a599")) == ["or/599"]
        assert matcher.match(ev(rid="b17")) == ["or/17", "in"]
        assert matcher.stats.rulesets == 5  # 256 + 256 + 88 rules; each 256 split in two
        assert matcher.stats.python_only_specs == 1


def test_identical_conditions_share_one_durable_rule(durable_matcher: Matcher) -> None:
    matcher = durable_matcher
    # durable keeps rules ending on one node in a 256-slot list (the 257th overflows it)
    for i in range(300):
        matcher.add(MatchSpec(f"s{i}", ("db.table.updated",), eq("payload.rows", 3)))
    assert matcher.stats.durable_rules == 1
    assert matcher.match(ev(rows=3)) == [f"s{i}" for i in range(300)]


def test_many_overlapping_ranges_stay_within_durables_evaluation_stack(
    durable_matcher: Matcher,
) -> None:
    matcher = durable_matcher
    # an event satisfying 100 sibling tests would overflow durable's 64-entry stack (303)
    for i in range(100):
        matcher.add(
            MatchSpec(f"s{i}", ("db.table.updated",), Compare(path="payload.n", op=">", value=i))
        )
    assert matcher.match(ev(n=1000)) == [f"s{i}" for i in range(100)]
    assert matcher.match(ev(n=50)) == [f"s{i}" for i in range(50)]
    assert matcher.stats.rulesets >= 3
    assert matcher.stats.durable_errors == 0


def test_a_durable_error_is_answered_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(durable_limits, "MAX_STACK", 10_000)  # let the stack overflow happen
    specs = [
        MatchSpec(f"s{i}", ("x.y",), Compare(path="payload.n", op=">", value=i)) for i in range(100)
    ]
    with Matcher(specs, index=False) as matcher:
        assert matcher.match(ev("x.y", n=1000)) == [f"s{i}" for i in range(100)]
        assert matcher.stats.durable_errors == 1
        assert matcher.match(ev("x.y", n=2)) == ["s0", "s1"]  # durable again, from a clean state
        assert matcher.stats.durable_errors == 1


def test_five_thousand_resource_ids_share_one_durable_sid(durable_matcher: Matcher) -> None:
    matcher = durable_matcher
    # durable holds at most 1,024 sids (the 1,025th: MemoryError, then a segfault)
    matcher.add(
        MatchSpec("rows", ("db.table.updated",), Compare(path="payload.rows", op=">", value=0))
    )
    results = matcher.match_batch([ev(rid=f"warehouse.t{i}", rows=i) for i in range(5000)])
    assert results == [[]] + [["rows"]] * 4999


def test_one_rule_per_table_posts_an_event_only_to_its_tables_ruleset() -> None:
    rows = Compare(path="payload.rows", op=">=", value=1)
    specs = [
        MatchSpec(f"t{i}", ("db.table.updated",), AllOf(items=(eq("resource.id", f"t{i}"), rows)))
        for i in range(1000)
    ]
    with Matcher(specs, rules_per_ruleset=64, index=False) as matcher:
        assert matcher.stats.rulesets == 16
        batch = [ev(rid=f"t{i}", rows=1) for i in range(0, 1000, 7)]
        assert matcher.match_batch(batch) == [[event.resource["id"]] for event in batch]
        assert matcher.stats.posts == len(batch)  # one ruleset each, not sixteen
        assert matcher.match(ev(rid="t1000", rows=1)) == []
        assert matcher.stats.posts == len(batch)  # no table's rules can fire: not posted

        # A rule that names no table shares a ruleset: that ruleset takes every event.
        matcher.add(MatchSpec("big", ("db.table.updated",), Compare("payload.rows", ">", 100)))
        events = [ev(rid="t3", rows=500), ev(rid="t999", rows=1), ev(rid="t1000", rows=101)]
        live = [*specs, MatchSpec("big", ("db.table.updated",), Compare("payload.rows", ">", 100))]
        assert matcher.match_batch(events) == [expected(live, event) for event in events]
        assert matcher.match_batch(events) == [["t3", "big"], ["t999"], ["big"]]


def test_a_keyed_path_holding_no_string_reaches_no_keyed_ruleset() -> None:
    specs = [
        MatchSpec(f"t{i}", ("db.table.updated",), eq("payload.table", f"t{i}")) for i in range(8)
    ]
    with Matcher(specs, rules_per_ruleset=2, index=False) as matcher:
        odd = [5, ["t5"], {"t5": 1}, None, True, 5.0]
        events = [ev(table=value) for value in odd] + [ev(), ev(table="t5")]
        assert matcher.match_batch(events) == [expected(specs, event) for event in events]
        assert matcher.match_batch(events)[-1] == ["t5"]
        assert matcher.stats.posts == 2  # the two "t5": its ruleset only


def test_an_event_with_a_thousand_payload_keys_still_matches(durable_matcher: Matcher) -> None:
    matcher = durable_matcher
    # durable refuses messages of more than 254 properties: only the read paths are sent
    matcher.add(
        MatchSpec(
            "k",
            ("db.table.updated",),
            AllOf(items=(eq("payload.k500", 500), Exists(path="payload.k999"))),
        )
    )
    payload = {f"k{i}": i for i in range(1000)}
    assert matcher.match(
        Event(event="db.table.updated", resource={"id": "r"}, payload=payload)
    ) == ["k"]
    assert matcher.stats.fallbacks == 0


def test_rules_reading_many_paths_are_spread_over_rulesets(durable_matcher: Matcher) -> None:
    matcher = durable_matcher
    # a durable message holds at most 254 properties, two per path the rules read
    for i in range(300):
        matcher.add(MatchSpec(f"k{i}", ("db.table.updated",), eq(f"payload.k{i}", i)))
    keys = {f"k{i}": i for i in range(300)}
    event = Event(event="db.table.updated", resource={"id": "r"}, payload=keys)
    assert matcher.match(event) == [f"k{i}" for i in range(300)]
    assert matcher.stats.rulesets >= 3
    assert matcher.stats.fallbacks == 0


def test_values_durable_cannot_hold_are_decided_in_python(durable_matcher: Matcher) -> None:
    matcher = durable_matcher

    class Label(str):
        pass

    big = Compare(path="payload.n", op=">", value=2**60)  # a constant durable cannot hold
    matcher.add(MatchSpec("big", ("db.table.updated",), big))
    matcher.add(MatchSpec("num", ("db.table.updated",), Compare(path="payload.n", op=">", value=5)))
    matcher.add(MatchSpec("str", ("db.table.updated",), eq("payload.s", "x")))
    assert matcher.stats.python_only_specs == 1
    assert matcher.match(ev(n=6, s="x")) == ["num", "str"]
    assert matcher.stats.fallbacks == 0
    assert matcher.match(ev(n=2**60 + 1)) == ["big", "num"]  # values durable cannot hold:
    assert matcher.match(ev(n=float("nan"))) == []
    assert matcher.match(ev(s="\ud800")) == []  # a lone surrogate has no UTF-8 form
    assert matcher.match(ev(s=Label("x"))) == []  # a str subclass is not a str to Compare
    assert matcher.stats.fallbacks == 4


def test_only_the_owning_thread_may_use_a_matcher(matcher: Matcher) -> None:
    matcher.add(MatchSpec("a", ("db.table.updated",)))
    errors: list[BaseException] = []

    def elsewhere() -> None:
        for call in (lambda: matcher.match(ev()), lambda: matcher.add(MatchSpec("b", ("x",)))):
            try:
                call()
            except RuntimeError as exc:
                errors.append(exc)

    thread = threading.Thread(target=elsewhere, name="intruder")
    thread.start()
    thread.join()
    assert len(errors) == 2
    assert "belongs to thread 'MainThread'" in str(errors[0])
    assert matcher.match(ev()) == ["a"]


def test_no_durable_timers_and_no_threads() -> None:
    before = threading.active_count()
    spec = MatchSpec("a", ("db.table.updated",), eq("resource.id", "r"))
    with Matcher([spec], index=False) as matcher:
        assert matcher.match(ev(rid="r")) == ["a"]
        assert matcher.stats.posts == 1
        assert threading.active_count() == before


@pytest.mark.timeout(120)
def test_nothing_lingers_in_durable_after_many_matches(durable_matcher: Matcher) -> None:
    matcher = durable_matcher
    matcher.add(MatchSpec("a", ("db.table.updated",), Compare(path="payload.n", op=">=", value=0)))
    matcher.add(
        MatchSpec("b", ("db.table.updated",), Compare(path="payload.n", op="<", value=50_000))
    )
    events = [ev(n=i) for i in range(100_000)]
    assert sum(len(found) for found in matcher.match_batch(events)) == 150_000
    for ruleset in matcher._pool.rulesets:  # durable's own view of its state
        assert durable.get_facts(ruleset.handle, "0") == "[]"
        assert durable.get_events(ruleset.handle, "0") == "[]"


# -- durable_rules 2.0.28 facts the matcher is built on ---------------------------------

RULES = {
    "small": {"all": [{"m": {"$and": [{"g0": 1}, {"$lt": {"n0": 10}}]}}]},
    "positive": {"all": [{"m": {"$and": [{"g0": 1}, {"$gt": {"n0": 0}}]}}]},
    "either": {"all": [{"m": {"$and": [{"g0": 1}, {"$or": [{"n0": 5}, {"$gt": {"n0": 1}}]}]}}]},
}


@pytest.fixture
def handle() -> Iterator[int]:
    created = durable.create_ruleset("facts", json.dumps(RULES))
    yield created
    durable.delete_ruleset(created)


def drain(handle: int, state: int) -> list[str]:
    fired = []
    result = durable.start_action_for_state(handle, state)
    while result is not None:
        fired.append(next(iter(json.loads(result[1] if type(result) is tuple else result))))
        result = durable.complete_and_start_action(handle, state)
    return fired


def test_fact_fires_every_matching_rule_an_event_only_the_first(handle: int) -> None:
    fact = '{"g0": 1, "n0": 5}'
    code, state = durable.assert_fact(handle, fact)
    assert code == 0
    assert sorted(drain(handle, state)) == ["either", "either", "positive", "small"]  # both ORs
    durable.retract_fact(handle, fact)
    code, state = durable.assert_event(handle, '{"g0": 1, "n0": 5}')
    assert len(drain(handle, state)) == 1  # an event is consumed by the first rule
    assert durable.get_facts(handle, "0") == durable.get_events(handle, "0") == "[]"


def test_no_match_is_code_1_and_durable_deduplicates_only_what_it_holds(handle: int) -> None:
    assert durable.assert_fact(handle, '{"g0": 2, "n0": 5}')[0] == 1  # stored nowhere
    message = '{"id": "same", "g0": 1, "n0": 5}'
    code, state = durable.assert_event(handle, message)
    assert code == 0
    assert durable.assert_event(handle, message)[0] == 2  # refused while held...
    drain(handle, state)
    assert durable.assert_event(handle, message)[0] == 0  # ...accepted again once consumed


def test_durable_limits_and_parsing_quirks(handle: int) -> None:
    ranges = {
        f"r{i}": {"all": [{"m": {"$and": [{"g0": 1}, {"$gt": {"n0": i}}]}}]} for i in range(65)
    }
    many = durable.create_ruleset("stack", json.dumps(ranges))
    try:
        with pytest.raises(durable.error, match="error code: 303"):  # a 64-entry stack
            durable.assert_fact(many, '{"g0": 1, "n0": 100}')
    finally:
        durable.delete_ruleset(many)
    with pytest.raises(durable.error, match="error code: 204"):  # no exponent without '.'
        durable.assert_fact(handle, '{"g0": 1, "n0": 1e-7}')
    order = durable.create_ruleset(
        "order", json.dumps({"lt": {"all": [{"m": {"$lt": {"s": "ab!"}}}]}})
    )
    try:
        assert durable.assert_fact(order, '{"s": "ab"}')[0] == 1  # raw text: "ab" is not < "ab!"
    finally:
        durable.delete_ruleset(order)


def test_the_python_api_raises_for_no_match_and_swallows_action_errors() -> None:
    class NoTimers(engine.Host):  # type: ignore[misc]  # Host starts timer threads that dispatch every 0.2 s
        def _run(self) -> None:
            pass

    def broken(closure: Any) -> None:
        raise ValueError("lost")

    host = NoTimers({"api": {"r": {"all": [{"m": {"x": 1}}], "run": broken}}})
    with pytest.raises(engine.MessageNotHandledException):
        host.post("api", {"x": 2})
    assert "lost" in host.post("api", {"x": 1})["exception"]  # no exception reaches us


def test_slot_names_have_distinct_durable_hashes() -> None:
    def fnv1a(name: str) -> int:
        value = 0x811C9DC5
        for byte in name.encode():
            value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
        return value

    names = [f"g{i}" for i in range(4096)] + [f"{k}{i}" for k in "esnbz" for i in range(1024)]
    names += ["id", "sid", "$s", "$forward", "$i"]
    assert fnv1a("id") == 926444256  # durable's HASH_ID
    assert len({fnv1a(name) for name in names}) == len(names)
