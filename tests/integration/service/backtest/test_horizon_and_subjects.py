"""The backtest's pure parts: the horizon's options and the consumer's subject filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from interlock.service.backtest.errors import HorizonError
from interlock.service.backtest.horizon import parse_horizon
from interlock.service.backtest.subjects import SubjectTest, filter_subjects, reads_internal

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_durations_and_times() -> None:
    horizon = parse_horizon("7d", None, "1d", now=NOW)
    assert (horizon.start, horizon.since, horizon.until) == (
        NOW - timedelta(days=8),
        NOW - timedelta(days=7),
        NOW,
    )
    dated = parse_horizon("2026-12-01", "2026-12-02T09:00:00+01:00", "0s", now=NOW)
    assert dated.since == datetime(2026, 12, 1, tzinfo=UTC)
    assert dated.until == datetime(2026, 12, 2, 8, tzinfo=UTC)
    assert dated.warmup == timedelta(0)


@pytest.mark.parametrize(
    ("since", "until", "warmup", "says"),
    [
        ("last week", None, "1d", "--since 'last week'"),
        ("2026-12-01T09:00:00", None, "1d", "needs a UTC offset"),
        ("1d", "2d", "1d", "must be before --until"),
        ("1d", "2027-01-01T00:00:00Z", "1d", "lies in the future"),
        ("1d", None, "a while", "--warmup 'a while'"),
        ("99999999999d", None, "1d", "before the year 1"),
        ("0001-01-01T00:00:00Z", None, "1d", "before year 1"),
    ],
)
def test_bad_options_say_which_and_why(
    since: str, until: str | None, warmup: str, says: str
) -> None:
    with pytest.raises(HorizonError, match=says.replace("(", r"\(")):
        parse_horizon(since, until, warmup, now=NOW)


def test_few_patterns_are_filtered_by_the_server_without_overlaps() -> None:
    subjects, exact = filter_subjects(["s3.object.created", "s3.>", "db.table.updated"])
    assert subjects == ["interlock.events.db.table.updated", "interlock.events.s3.>"]
    assert exact
    assert filter_subjects(["a.b", ">"]) == (["interlock.events.>"], True)


def test_overlapping_or_many_patterns_read_a_wider_subject_filtered_here() -> None:
    subjects, exact = filter_subjects(["a.*.c", "a.b.*"])
    assert (subjects, exact) == (["interlock.events.a.>"], False)
    many = [f"bench.e{i}.done" for i in range(20)]
    assert filter_subjects(many) == (["interlock.events.bench.>"], False)
    assert filter_subjects([*many, "other.thing"]) == (["interlock.events.>"], False)
    test = SubjectTest(["a.*.c", "a.b.*"])
    assert [test(f"interlock.events.{name}") for name in ("a.x.c", "a.b.z", "a.x.z")] == [
        True,
        True,
        False,
    ]


def test_interlock_events_are_recognised() -> None:
    assert reads_internal("interlock.rule.fired")
    assert reads_internal("*.rule.fired")
    assert reads_internal(">")
    assert not reads_internal("db.table.updated")
