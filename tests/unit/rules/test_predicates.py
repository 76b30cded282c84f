"""Predicate semantics: the definition every evaluator (Python, durable_rules) must meet."""

from __future__ import annotations

import msgspec
import pytest

from interlock.rules import event as name
from interlock.rules import payload, related, resource, source
from interlock.rules.engine.matcher import Matcher, MatchSpec
from interlock.rules.predicates import AnyPredicate, Predicate
from interlock.sdk import Event

EVENT = Event(
    event="s3.object.created",
    resource={"id": "s3://landing/exports/fx/2026-11-24.csv", "bucket": "landing"},
    related=[
        {"id": "finance", "role": "tag"},
        {"id": "daily", "role": "tag"},
        {"id": "warehouse.fx", "role": "target", "schema": "dw"},
    ],
    payload={
        "size": 18432,
        "ratio": 0.5,
        "ok": True,
        "tags": ["fx", "eu"],
        "note": None,
        "stats": {"rows": 1200, "cols": ["a", "b"]},
        "status": "done",
    },
    source="adapter.s3",
)


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        (resource.id == "s3://landing/exports/fx/2026-11-24.csv", True),
        (resource.bucket == "landing", True),
        (resource["bucket"] != "landing", False),
        (resource.id.glob("s3://landing/*.csv"), True),
        (resource.id.glob("*fx*"), True),
        (resource.id.glob("exports/*"), False),
        (resource.id.matches(r"fx/\d{4}-"), True),
        (resource.id.matches(r"^fx"), False),
        (resource.id.startswith("s3://landing/"), True),
        (payload.size > 1000, True),
        (payload.size >= 18432, True),
        (payload.size < 18432, False),
        (payload.size == 18432.0, True),  # numbers compare as numbers
        (payload.ratio <= 0.5, True),
        (payload.ok == True, True),  # noqa: E712 - building a predicate, not testing truth
        (payload.ok == 1, False),  # booleans are not numbers
        (payload.size == "18432", False),  # type mismatch is false
        (payload.status > 5, False),
        (payload.missing == 1, False),  # missing is false
        (payload.missing != 1, False),  # ... for != too
        (~(payload.missing == 1), True),  # not is plain negation
        (payload.note == None, True),  # noqa: E711
        (payload.note.exists(), True),
        (payload.missing.exists(), False),
        (payload.stats.rows > 1000, True),
        (payload.stats.cols.contains("b"), True),
        (payload.stats.cols[0] == "a", True),
        (payload.tags.contains("fx"), True),
        (payload.status.contains("on"), True),  # substring
        (payload.status.one_of(["done", "ok"]), True),
        (payload.status.one_of(["failed"]), False),
        (name == "s3.object.created", True),
        (source == "adapter.s3", True),
        (related(role="tag", id="finance") & related(role="tag", id="daily"), True),
        (related(role="tag", id="finance") & related(role="tag", id="weekly"), False),
        (related(role="target", where=related.schema == "dw"), True),
        (related(role="target", id="finance"), False),
        (related(id="daily"), True),
        ((payload.size > 1) & (payload.missing == 1) | (resource.bucket == "landing"), True),
        (~((payload.size > 1) | (payload.ok == False)), False),  # noqa: E712
    ],
)
def test_semantics(predicate: Predicate, expected: bool) -> None:
    assert predicate.matches(EVENT) is expected
    # Plain data: the JSON form decodes to an equal predicate with the same verdict.
    decoded = msgspec.json.decode(msgspec.json.encode(predicate), type=AnyPredicate)
    assert decoded == predicate
    assert decoded.matches(EVENT) is expected


def test_and_or_not_keywords_are_refused() -> None:
    with pytest.raises(TypeError, match=r"combine predicates with & \| ~"):
        assert (resource.id == "a") and (resource.id == "b")  # noqa: PT018 - the mistake caught
    with pytest.raises(TypeError):
        assert not (resource.id == "a")  # noqa: SIM201 - the mistake being caught


def test_comparing_with_a_non_scalar_is_refused_where_written() -> None:
    with pytest.raises(TypeError, match=r"payload.rows: compare with a string, number"):
        payload.rows == [1, 2]  # noqa: B015


def test_and_flattens() -> None:
    predicate = (resource.id == "a") & (source == "b") & (payload.x > 1)
    assert len(predicate.items) == 3  # type: ignore[attr-defined]


NOT_EQUAL = [
    ({"x": 2}, True),
    ({"x": 1.5}, True),
    ({"x": 1}, False),
    ({"x": 1.0}, False),
    ({"x": "1"}, False),  # another type: false, as every test on another type
    ({"x": True}, False),  # booleans are not numbers
    ({"x": None}, False),
    ({}, False),  # missing
]
NOT_NULL = [
    ({"x": 0}, True),
    ({"x": ""}, True),
    ({"x": False}, True),
    ({"x": None}, False),
    ({}, False),
]


@pytest.mark.parametrize(("fields", "expected"), NOT_EQUAL)
def test_not_equal_is_false_for_another_type_and_for_a_missing_value(
    fields: dict[str, object], expected: bool
) -> None:
    event = Event(event="a.b", resource={"id": "r"}, payload=fields, source="t")
    predicate = payload.x != 1
    assert predicate.matches(event) is expected
    assert (~predicate).matches(event) is not expected
    with Matcher(
        [MatchSpec("ne", ("a.b",), predicate), MatchSpec("not", ("a.b",), ~predicate)]
    ) as m:
        assert m.match(event) == (["ne"] if expected else ["not"])  # durable agrees


@pytest.mark.parametrize(("fields", "expected"), NOT_NULL)
def test_not_equal_none_is_true_for_any_value_there_but_null(
    fields: dict[str, object], expected: bool
) -> None:
    event = Event(event="a.b", resource={"id": "r"}, payload=fields, source="t")
    predicate = payload.x != None  # noqa: E711 - a predicate, not a comparison
    assert predicate.matches(event) is expected
    with Matcher(
        [MatchSpec("nn", ("a.b",), predicate), MatchSpec("not", ("a.b",), ~predicate)]
    ) as m:
        assert m.match(event) == (["nn"] if expected else ["not"])
