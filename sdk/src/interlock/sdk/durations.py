"""Durations written the way people write them: ``90s``, ``10m``, ``2h``, ``1d12h``, ``500ms``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["DURATION_HINT", "format_duration", "parse_duration"]

DURATION_HINT = "use e.g. '90s', '10m', '2h', '1d12h' or '500ms'"

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def parse_duration(text: str | float | timedelta) -> timedelta:
    """Return the duration ``text`` describes; numbers are seconds.

    Raises:
        ValueError: ``text`` is not a duration; the message says what is accepted.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return timedelta(seconds=text)
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration ({DURATION_HINT})")
    compact = text.strip().replace(" ", "")
    position = 0
    total = timedelta()
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match[1]) * _UNITS[match[2]]
        position = match.end()
    if not compact or position != len(compact):
        raise ValueError(f"{text!r} is not a duration ({DURATION_HINT})")
    return total


def format_duration(value: timedelta) -> str:
    """Return the shortest ``parse_duration`` spelling of ``value`` (``1d2h``, ``90s``)."""
    milliseconds = round(value.total_seconds() * 1000)
    if milliseconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, milliseconds = divmod(milliseconds, size)
        if count:
            parts.append(f"{count}{unit}")
    if milliseconds:
        parts.append(f"{milliseconds}ms")
    return "".join(parts)
