"""A comparison of firings as text: expected and actual firings, line by line, in time order.

::

    = fired     sales-table-by-0900  window 2026-03-27 00:00 CET → 2026-03-27 09:00 CET
    - fired     sales-table-by-0900  window 2026-03-30 00:00 CEST → 2026-03-30 09:00 CEST
    + fired     sales-table-by-0900  window 2026-03-30 00:00 CEST → 2026-03-30 09:00 CEST  late
        differs from the expected one above in late: expected false, got true

``=`` as expected, ``-`` expected but did not happen, ``+`` happened but was not expected.
A missing expectation is printed just before the unexpected firing closest to it (the
same rule, fewest differing fields), with the fields that differ.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from interlock.rules.engine.firing import Firing
from interlock.rules.testing.comparison import Comparison, Want, differences
from interlock.rules.testing.times import show_time

__all__ = ["LEGEND", "describe_firing", "describe_want", "diff_lines"]

LEGEND = "= as expected, - expected but did not happen, + happened but not expected"


def _window(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    return f"window {show_time(start, zone)} → {show_time(end, zone)}"


def _counts(expected: int | None, arrived: int | None) -> str:
    parts = []
    if expected is not None:
        parts.append(f"expected {expected}")
    if arrived is not None:
        parts.append(f"arrived {arrived}")
    return ", ".join(parts)


def describe_firing(firing: Firing, zone: ZoneInfo) -> str:
    """One line saying what fired: status, rule, key, window or time, counts, late."""
    parts = [f"{firing.status:<9} {firing.rule}"]
    if firing.key:
        parts.append(f"key {firing.key!r}")
    if firing.window_start is not None and firing.window_end is not None:
        parts.append(_window(firing.window_start, firing.window_end, zone))
    if firing.window_end is None or firing.at != firing.window_end:
        parts.append(f"at {show_time(firing.at, zone)}")
    if counts := _counts(firing.expected, firing.arrived):
        parts.append(counts)
    if firing.late:
        parts.append("late")
    return "  ".join(parts)


def describe_want(wanted: Want, zone: ZoneInfo) -> str:
    """One line saying what was expected (only the fields the expectation gives)."""
    spec = wanted.expected
    parts = [f"{spec.status:<9} {spec.rule}"]
    if spec.key:
        parts.append(f"key {spec.key!r}")
    if wanted.window is not None:
        parts.append(_window(*wanted.window, zone))
    if wanted.at is not None:
        parts.append(f"at {show_time(wanted.at, zone)}")
    if counts := _counts(spec.expected, spec.arrived):
        parts.append(counts)
    if spec.late:
        parts.append("late")
    if spec.line is not None:
        parts.append(f"(line {spec.line})")
    return "  ".join(parts)


def _closest(wanted: Want, firings: list[Firing], zone: ZoneInfo) -> Firing | None:
    candidates = [f for f in firings if f.rule == wanted.expected.rule]
    if not candidates:
        return None
    return min(candidates, key=lambda firing: len(differences(wanted, firing, zone)))


def diff_lines(comparison: Comparison, firings: list[Firing], zone: ZoneInfo) -> list[str]:
    """The comparison as lines (see the module documentation), in firing order."""
    matched = {id(firing) for _, firing in comparison.matched}
    unexpected = {id(firing) for firing in comparison.unexpected}
    before: dict[int, list[Want]] = {}
    leftover: list[Want] = []
    for wanted in comparison.missing:
        closest = _closest(wanted, comparison.unexpected, zone)
        if closest is None:
            leftover.append(wanted)
        else:
            before.setdefault(id(closest), []).append(wanted)
    lines: list[str] = []
    for firing in firings:
        if id(firing) in matched:
            lines.append(f"= {describe_firing(firing, zone)}")
            continue
        if id(firing) not in unexpected:
            continue
        wants = before.get(id(firing), [])
        lines.extend(f"- {describe_want(wanted, zone)}" for wanted in wants)
        lines.append(f"+ {describe_firing(firing, zone)}")
        if wants:
            found = differences(wants[0], firing, zone)
            said = "; ".join(f"{d.field}: expected {d.expected}, got {d.actual}" for d in found)
            lines.append(f"    differs from the expected one above in {said}")
    lines.extend(f"- {describe_want(wanted, zone)}" for wanted in leftover)
    return lines
