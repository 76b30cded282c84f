from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from interlock.rules.clock import Clock, FakeClock, SystemClock

START = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def test_fake_clock_reads_its_start_in_utc() -> None:
    clock = FakeClock(datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")))
    assert clock.now() == START
    assert clock.now().tzinfo is UTC


@pytest.mark.parametrize("delta", [timedelta(minutes=90), "90m", "1h30m", "5400s"])
def test_advance_accepts_timedeltas_and_durations(delta: timedelta | str) -> None:
    clock = FakeClock(START)
    assert clock.advance(delta) == START + timedelta(minutes=90)
    assert clock.now() == START + timedelta(minutes=90)


def test_advance_by_zero_keeps_the_time() -> None:
    clock = FakeClock(START)
    assert clock.advance("0s") == START


def test_advance_refuses_to_go_backwards() -> None:
    clock = FakeClock(START)
    with pytest.raises(ValueError, match=r"cannot advance a FakeClock by .*only moves forward"):
        clock.advance(timedelta(seconds=-1))
    assert clock.now() == START


def test_advance_rejects_what_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        FakeClock(START).advance("soon")


def test_set_moves_forward_and_to_the_same_instant() -> None:
    clock = FakeClock(START)
    later = datetime(2026, 3, 29, 3, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 01:00 UTC
    assert clock.set(later) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert clock.set(later) == later  # the same instant is not going backwards


def test_set_refuses_to_go_backwards() -> None:
    clock = FakeClock(START)
    message = (
        "cannot set a FakeClock back from 2026-03-29T00:30:00+00:00 to "
        "2026-03-29T00:29:59.999999+00:00: time only moves forward (use a new FakeClock)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        clock.set(START - timedelta(microseconds=1))
    assert clock.now() == START


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^start must be timezone-aware, got naive 2026-"):
        FakeClock(datetime(2026, 3, 29))
    with pytest.raises(ValueError, match=r"^instant must be timezone-aware"):
        FakeClock(START).set(datetime(2026, 3, 30))


def test_system_clock_is_aware_utc() -> None:
    # Reads the real clock, but asserts nothing that depends on what it reads.
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert now.utcoffset() == timedelta(0)


def test_both_clocks_satisfy_the_protocol() -> None:
    clocks: list[Clock] = [SystemClock(), FakeClock(START)]
    assert all(isinstance(clock.now(), datetime) for clock in clocks)
    assert repr(FakeClock(START.astimezone(timezone(timedelta(hours=2))))) == (
        "FakeClock(2026-03-29T00:30:00+00:00)"
    )
