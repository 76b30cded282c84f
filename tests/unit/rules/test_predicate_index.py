"""The matcher's Python index: necessary conditions extracted right, answers still exact.

Each key :func:`index_keys` extracts must hold on every event its predicate matches (and
an exact key only on those), for prefixes of globs (``startswith`` included) and anchored
regexes, numeric intervals and string equalities; and a matcher using the index answers
exactly what ``Predicate.matches`` answers, on values of every type, missing paths and
subclasses of ``str``, ``int`` and ``float``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.rules.engine import Matcher, MatchSpec
from interlock.rules.engine.predicate_index import (
    Equal,
    Key,
    Prefix,
    Range,
    glob_prefix,
    index_keys,
    regex_prefix,
)
from interlock.rules.fields import Field
from interlock.rules.names import pattern_matches
from interlock.rules.predicates import (
    MISSING,
    AllOf,
    AnyOf,
    AnyPredicate,
    Compare,
    Exists,
    Glob,
    Not,
    OneOf,
    Regex,
    resolve,
)
from interlock.sdk.event import Event


class Text(str):
    """A str subclass: Glob and Regex take it, ``==`` against a str does not."""

    __slots__ = ()


class Whole(int):
    __slots__ = ()


class Real(float):
    __slots__ = ()


def expected(specs: list[MatchSpec], event: Event) -> list[str]:
    return [
        spec.id
        for spec in specs
        if any(pattern_matches(pattern, event.event) for pattern in spec.names)
        and (spec.where is None or spec.where.matches(event))
    ]


def holds(key: Key, event: Event) -> bool:
    """Whether ``key`` holds on ``event``, read the slow and obvious way."""
    value = resolve(event, key.path)
    if value is MISSING:
        return False
    if isinstance(key, Equal):
        return isinstance(value, str) and str.__eq__(value, key.value)
    if isinstance(key, Prefix):
        return isinstance(value, str) and str.startswith(value, key.prefix)
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        return False
    number = float(value) if isinstance(value, float) else int(value)
    if key.low is not None and not (number >= key.low if key.low_closed else number > key.low):
        return False
    return key.high is None or (number <= key.high if key.high_closed else number < key.high)


def plain(value: object) -> bool:
    """Not a subclass (for which an exact key is not relied upon)."""
    return type(value) in {str, int, float, bool, type(None), list, dict}


# -- prefixes ---------------------------------------------------------------------------

GLOB_TOKENS = ["a", "b", ".", "*", "?", "[", "]", "!", "-", "^", "\\", "é", "\n"]
GLOB_TOKENS += ["[a]", "[*]", "[?]", "[[]", "[!a]", "[]]", "[a-b]", "[^]", "[\\]", "[-]"]
TEXT = st.text(alphabet="ab.*?[]!-^\\é\n", max_size=6)


@settings(max_examples=1500, deadline=None)
@given(
    pattern=st.lists(st.sampled_from(GLOB_TOKENS), max_size=6).map("".join), texts=st.lists(TEXT)
)
def test_a_globs_literal_start_is_necessary_and_exact_when_only_stars_follow(
    pattern: str, texts: list[str]
) -> None:
    prefix, rest = glob_prefix(pattern)
    glob = Glob(path="payload.s", pattern=pattern)
    for text in [*texts, pattern, prefix, prefix + "a", prefix + "*", prefix[:-1]]:
        matched = glob.matches({"payload": {"s": text}})
        if matched:
            assert text.startswith(prefix)
        if not rest:
            assert matched == (text == prefix)
        elif rest == "*" * len(rest):
            assert matched == text.startswith(prefix)


def test_what_is_and_is_not_a_glob_prefix() -> None:
    cases = {
        "dw.t0042*": ("dw.t0042", "*"),
        "a[*]b[?]c[[]*": ("a*b?c[", "*"),  # how startswith escapes
        "ab": ("ab", ""),
        "a?b*": ("a", "?b*"),
        "a[!]": ("a", "[!]"),  # a literal "[!]" in fnmatch: left unindexed past "a"
        "a[!]]": ("a", "[!]]"),  # any character but "]"
        "a[]]": ("a", "[]]"),
        "a[^]": ("a", "[^]"),
        "a[-]": ("a", "[-]"),
        "a[\\]": ("a", "[\\]"),
        "a[bc]": ("a", "[bc]"),
        "*.csv": ("", "*.csv"),
        "a[": ("a", "["),
    }
    for pattern, expected in cases.items():
        assert glob_prefix(pattern) == expected, pattern
        prefix, _ = expected
        glob = Glob(path="payload.s", pattern=pattern)
        for text in (pattern, prefix, prefix + "]", prefix + "!", "a[!]", "a]", "a!"):
            assert not glob.matches({"payload": {"s": text}}) or text.startswith(prefix)


@settings(max_examples=300, deadline=None)
@given(prefix=st.text(max_size=5), texts=st.lists(st.text(max_size=7)))
def test_startswith_is_an_exact_prefix(prefix: str, texts: list[str]) -> None:
    predicate = Field("payload.s").startswith(prefix)
    keys = index_keys(predicate)  # type: ignore[arg-type]
    if prefix:
        assert keys == (Prefix("payload.s", prefix, exact=True),)
    else:
        assert keys is None  # "starts with nothing": any string, nothing to index
    for text in [*texts, prefix + "x"]:
        assert predicate.matches({"payload": {"s": text}}) == text.startswith(prefix)


REGEX_TOKENS = ["^", "\\A", "a", "b", "\\.", ".", "|", "(", ")", "(?:", "*", "+", "?", "{2}"]
REGEX_TOKENS += ["$", "\\Z", "[ab]", "(?i)", "(?m)", "(?s)", "(?x)", "(?i:", " ", "\\b", "é"]
REGEX_TOKENS += ["(?=a)", "(?!a)", "(?P<g>", "\\n", "\\\\", "a*?", "\\d", "[.]"]


def compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    pattern=st.lists(st.sampled_from(REGEX_TOKENS), max_size=7).map("".join).filter(compiles),
    texts=st.lists(st.text(alphabet="abAB.\né 1", max_size=6)),
)
def test_a_regexs_anchored_literal_start_is_necessary_and_exact_when_alone(
    pattern: str, texts: list[str]
) -> None:
    prefix, whole = regex_prefix(pattern)
    regex = Regex(path="payload.s", pattern=pattern)
    for text in [*texts, pattern, prefix, prefix + "a", "\n" + prefix, prefix.upper()]:
        matched = regex.matches({"payload": {"s": text}})
        if matched:
            assert text.startswith(prefix)
        if prefix and whole:
            assert matched == text.startswith(prefix)


def test_what_is_and_is_not_a_regex_prefix() -> None:
    assert regex_prefix(r"^dw\.t0042(\.|$)") == ("dw.t0042", False)
    assert regex_prefix(r"^dw\.t00") == ("dw.t00", True)
    assert regex_prefix(r"\Aab") == ("ab", True)
    assert regex_prefix(r"(?m)\Aab") == ("ab", True)
    assert regex_prefix(r"^(?:ab)(c)d") == ("abcd", True)
    assert regex_prefix(r"^ab*") == ("a", False)
    for unanchored in (r"dw\.t", r"^ab|cd", r"(?m)^ab", r"(?i)^ab", r"^(?i:a)b", r"\bab", "["):
        assert regex_prefix(unanchored)[0] == ""


def test_what_the_keys_of_a_predicate_are() -> None:
    rows, rid = Field("payload.rows"), Field("resource.id")
    assert index_keys(rid.glob("dw.t42*") & (rows >= 1)) == (  # type: ignore[arg-type]
        Prefix("resource.id", "dw.t42", exact=False),
    )
    assert index_keys((rows >= 10) & (rows < 15)) == (  # type: ignore[arg-type]
        Range("payload.rows", 10, True, 15, False, exact=True),
    )
    assert index_keys(rid.glob("a*") | rid.one_of(["b", 3])) == (  # type: ignore[arg-type]
        Prefix("resource.id", "a", exact=True),
        Equal("resource.id", "b", exact=True),
        Range("resource.id", 3, True, 3, True, exact=True),
    )
    assert index_keys(Not(item=Not(item=Compare(path="payload.n", op=">", value=1)))) == (
        Range("payload.n", 1, False, None, False, exact=True),
    )
    for nothing in (
        rid.glob("*.csv"),
        rid.matches("sales"),
        rows != 1,
        ~(rows > 1),
        rows.exists(),
        rid.glob("a*") | rid.exists(),
        Compare(path="payload.n", op=">", value=math.nan),
        rows.one_of([True, 1]),
        rid > "b",
    ):
        assert index_keys(nothing) is None, nothing  # type: ignore[arg-type]


# -- the keys hold on every event the predicate matches ----------------------------------

PATHS = ["resource.id", "payload.a", "payload.n", "payload.l.0"]
WORDS = ["", "d", "dw", "dw.", "dw.t1", "dw.t12", "dw.t12x", "dw.t2", "dw.t1*", "dw.t1?"]
WORDS += ["dw.t1[", "dw.t1\n", "\ndw.t1", "DW.T1", "é", "éa", "dw.t1.p0"]
NUMBERS: list[Any] = [-1, 0, 0.5, 1, 1.0, 2, 2.5, 3, 10, 2**53 + 1, 2**70, -(2**70), 1e300]
NUMBERS += [math.inf, -math.inf, math.nan, 5e-324]
ODD: list[Any] = [True, False, None, [], ["dw.t1"], {"x": 1}, Text("dw.t12"), Text("x")]
ODD += [Whole(1), Whole(3), Real(2.5), Real(math.nan)]

paths = st.sampled_from(PATHS)
words = st.sampled_from(WORDS)
numbers = st.sampled_from(NUMBERS)
glob_rests = st.sampled_from(["*", "**", "", "?*", "*x", "[0-9]*", "[!a]*", "*.p0", "?"])
regex_rests = st.sampled_from(["", "$", ".*", "x?", r"(\.|$)", "|b", "+", r"\Z"])
leaves = st.one_of(
    st.builds(lambda p, w, r: Glob(path=p, pattern=w + r), paths, words, glob_rests),
    st.builds(lambda p, w: Field(p).startswith(w), paths, words),
    st.builds(
        lambda p, a, w, r: Regex(path=p, pattern=a + re.escape(w) + r),
        paths,
        st.sampled_from(["^", r"\A", "(?m)^", "(?i)^", ""]),
        words,
        regex_rests,
    ).filter(lambda regex: compiles(regex.pattern)),
    st.builds(
        Compare,
        path=paths,
        op=st.sampled_from(["==", "<", "<=", ">", ">="]),
        value=numbers | words,
    ),
    st.builds(
        lambda p, low, high, lo_op, hi_op: AllOf(
            items=(Compare(path=p, op=lo_op, value=low), Compare(path=p, op=hi_op, value=high))
        ),
        paths,
        numbers,
        numbers,
        st.sampled_from([">", ">="]),
        st.sampled_from(["<", "<="]),
    ),
    st.builds(OneOf, path=paths, values=st.lists(numbers | words, max_size=3).map(tuple)),
    st.builds(Exists, path=paths),
)
indexable: st.SearchStrategy[AnyPredicate] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(AllOf, items=st.lists(inner, max_size=3).map(tuple)),
        st.builds(AnyOf, items=st.lists(inner, max_size=3).map(tuple)),
        st.builds(Not, item=inner),
    ),
    max_leaves=4,
)
values = st.sampled_from(WORDS) | st.sampled_from(NUMBERS) | st.sampled_from(ODD)
events = st.builds(
    lambda name, rid, payload: Event(event=name, resource={"id": rid}, payload=payload),
    st.sampled_from(["dw.table.updated", "dw.view.updated"]),
    st.sampled_from([word for word in WORDS if word]) | st.builds(Text, words.filter(bool)),
    st.dictionaries(
        st.sampled_from(["a", "n", "l"]),
        values | st.lists(values, max_size=2),
        max_size=3,
    ),
)


@settings(max_examples=1500, deadline=None)
@given(predicate=indexable, events=st.lists(events, min_size=1, max_size=8))
def test_keys_are_necessary_and_exact_keys_sufficient(
    predicate: AnyPredicate, events: list[Event]
) -> None:
    keys = index_keys(predicate)
    if keys is None:
        return
    for event in events:
        matched = predicate.matches(event)
        found = [key for key in keys if holds(key, event)]
        if matched:
            assert found, (predicate, event)
        if any(key.exact for key in found) and all(
            plain(resolve(event, key.path)) for key in found
        ):
            assert matched, (predicate, event)


# -- the matcher with the index: exactly Predicate.matches ------------------------------

specs = st.lists(
    st.builds(
        lambda names, where: (names, where),
        st.sampled_from([("dw.table.updated",), ("dw.*.updated",), ("dw.>", "dw.table.updated")]),
        indexable,
    ),
    min_size=1,
    max_size=30,
).map(lambda drawn: [MatchSpec(f"s{i}", names, where) for i, (names, where) in enumerate(drawn)])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=specs,
    replacements=st.lists(indexable, max_size=4),
    removed=st.sets(st.integers(0, 29), max_size=4),
    events=st.lists(events, min_size=1, max_size=10),
)
def test_the_index_answers_exactly_what_predicates_match(
    specs: list[MatchSpec],
    replacements: list[AnyPredicate],
    removed: set[int],
    events: list[Event],
) -> None:
    with Matcher(specs[: len(specs) // 2], rules_per_ruleset=4) as matcher:
        for spec in specs[len(specs) // 2 :]:
            matcher.add(spec)
        live = {spec.id: spec for spec in specs}
        assert matcher.match_batch(events) == [expected(list(live.values()), e) for e in events]
        for index, where in enumerate(replacements):
            old = specs[(index * 7) % len(specs)]
            live[old.id] = MatchSpec(old.id, old.names, where)
            matcher.replace(live[old.id])
        for index in removed & set(range(len(specs))):
            matcher.remove(specs[index].id)
            del live[specs[index].id]
        order = [live[spec.id] for spec in specs if spec.id in live]
        for event in events:
            assert matcher.match(event) == expected(order, event)


# -- the index at work -------------------------------------------------------------------


def table(rid: str, **payload: Any) -> Event:
    return Event(event="dw.table.updated", resource={"id": rid}, payload=payload)


def test_a_thousand_globs_on_one_name_cost_no_check_and_no_post() -> None:
    rid = Field("resource.id")
    specs = [
        MatchSpec(f"g{i}", ("dw.table.updated",), rid.glob(f"dw.t{i:04d}*")) for i in range(1000)
    ]
    with Matcher(specs) as matcher:
        assert matcher.stats.indexed_specs == 1000
        assert matcher.stats.python_only_specs == matcher.stats.durable_rules == 0
        batch = [table(f"dw.t{i:04d}") for i in range(0, 1000, 7)] + [table("dw.t0042.p3")]
        assert matcher.match_batch(batch) == [[f"g{i}"] for i in range(0, 1000, 7)] + [["g42"]]
        misses = [table("dw.t9999"), table("dw.t004"), table("x"), table(Text("x"))]
        assert matcher.match_batch(misses) == [[]] * 4
        assert matcher.match(table(Text("dw.t0042"))) == ["g42"]  # a str subclass: confirmed
        stats = matcher.stats
        assert stats.posts == 0
        assert stats.checks == 2000  # a str subclass gets every spec of the path, confirmed


def test_a_glob_and_a_number_are_found_by_the_glob_and_confirmed() -> None:
    rid, rows = Field("resource.id"), Field("payload.rows")
    specs = [
        MatchSpec(f"g{i}", ("dw.table.updated",), rid.glob(f"dw.t{i:04d}*") & (rows >= 1))
        for i in range(1000)
    ]
    with Matcher(specs) as matcher:
        events = [table("dw.t0042", rows=1), table("dw.t0042", rows=0), table("dw.t0042")]
        events += [table("dw.t0043", rows="1"), table("dw.t5000", rows=5)]
        assert matcher.match_batch(events) == [["g42"], [], [], [], []]
        assert matcher.stats.checks == 4  # one candidate each, the unwatched table none
        assert matcher.stats.posts == 0


def test_values_of_other_types_find_no_candidate_or_every_one_confirmed() -> None:
    code = Field("payload.code")
    specs = [MatchSpec(f"p{i}", ("dw.table.updated",), code.startswith(f"E{i}")) for i in range(50)]
    specs += [MatchSpec(f"n{i}", ("dw.table.updated",), code == i) for i in range(50)]
    with Matcher(specs) as matcher:
        odd = [None, True, False, [], ["E1"], {"E1": 1}, float("nan"), float("inf"), 2**80]
        events = [table("r", code=value) for value in odd] + [table("r")]
        assert matcher.match_batch(events) == [[]] * len(events)
        assert matcher.stats.checks == 0
        assert matcher.match(table("r", code=Whole(3))) == ["n3"]  # all 50 numbers confirmed
        assert matcher.match(table("r", code=Real(3.0))) == ["n3"]
        assert matcher.match(table("r", code=Text("E17"))) == ["p1", "p17"]
        assert matcher.match_batch([table("r", code=3.0), table("r", code="E4x")]) == [
            ["n3"],
            ["p4"],
        ]
        assert matcher.stats.checks == 150


def test_numeric_ranges_listed_and_in_a_tree_find_exactly_their_specs() -> None:
    seq = Field("payload.seq")
    disjoint = [
        MatchSpec(f"d{i}", ("dw.table.updated",), (seq >= 10 * i) & (seq < 10 * i + 5))
        for i in range(300)
    ]
    nested = [
        MatchSpec(f"n{i}", ("dw.view.updated",), (seq > i) & (seq <= 1000 - i)) for i in range(300)
    ]
    with Matcher([*disjoint, *nested]) as matcher:
        assert matcher.stats.indexed_specs == 600
        for value in [-1, 0, 4, 4.5, 5, 9.99, 10, 2995, 2999, 3000, 300, 301, 700, 701, 1e9]:
            for name, group in (("dw.table.updated", disjoint), ("dw.view.updated", nested)):
                event = Event(event=name, resource={"id": "r"}, payload={"seq": value})
                assert matcher.match(event) == expected(group, event), (name, value)
        assert matcher.stats.checks == 0  # every range says all its predicate does
        assert matcher.stats.posts == 0


def test_string_equality_goes_through_the_index_and_durable_keeps_the_rest() -> None:
    specs = [
        MatchSpec(f"e{i}", ("dw.table.updated",), Field("resource.id") == f"dw.t{i:04d}")
        for i in range(300)
    ]
    specs.append(MatchSpec("both", ("dw.table.updated",), Field("resource.id").glob("dw.t000*")))
    specs.append(MatchSpec("not", ("dw.table.updated",), ~(Field("resource.id") == "dw.t0007")))
    with Matcher(specs) as matcher:
        assert matcher.stats.indexed_specs == 301
        assert matcher.stats.durable_rules == 1  # the negation: nothing to look up
        assert matcher.match(table("dw.t0007")) == ["e7", "both"]
        assert matcher.match(table("dw.t0008")) == ["e8", "both", "not"]


def test_index_false_leaves_every_narrowable_predicate_to_durable() -> None:
    rows = Field("payload.rows")
    specs = [MatchSpec(f"r{i}", ("dw.table.updated",), rows > i) for i in range(10)]
    specs.append(MatchSpec("glob", ("dw.table.updated",), Field("resource.id").glob("dw.*")))
    with Matcher(specs, index=False) as matcher:
        assert matcher.stats.indexed_specs == 0
        assert matcher.stats.durable_rules == 10
        assert matcher.stats.python_only_specs == 1
        assert matcher.match(table("dw.x", rows=3)) == ["r0", "r1", "r2", "glob"]


def test_a_one_of_six_hundred_tables_is_six_hundred_dict_entries() -> None:
    rid = Field("resource.id")
    specs = [
        MatchSpec("many", ("dw.table.updated",), rid.one_of([f"t{i}" for i in range(600)])),
        MatchSpec("either", ("dw.table.updated",), rid.glob("t1*") | rid.glob("t2*")),
    ]
    with Matcher(specs) as matcher:
        assert matcher.stats.indexed_specs == 2
        assert matcher.stats.durable_rules == matcher.stats.python_only_specs == 0
        events = [table("t599"), table("t17"), table("t600"), table("t3"), table(Text("t5"))]
        assert matcher.match_batch(events) == [["many"], ["many", "either"], [], ["many"], []]
        assert matcher.stats.checks == 2  # Text("t5"): both specs, confirmed (== wants a str)
