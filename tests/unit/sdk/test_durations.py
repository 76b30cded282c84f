from __future__ import annotations

from datetime import timedelta

import pytest

from interlock.sdk.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
        (30, timedelta(seconds=30)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["2x", "", "h", "10 minutes", "1h-2m"])
def test_invalid_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration \(use e\.g\. '90s'"):
        parse_duration(text)
