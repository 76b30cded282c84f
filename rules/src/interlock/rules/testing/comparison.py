"""Expected firings against actual ones: which match, which are missing, which are extra.

Each expectation is matched to at most one firing and each firing to at most one
expectation, as many pairs as possible (a maximum bipartite matching, so a loose
expectation never takes the firing a stricter one needed). Order does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from interlock.rules.engine.firing import Firing
from interlock.rules.testing.expectations import Expected
from interlock.rules.testing.times import parse_time, show_time

__all__ = ["Comparison", "Difference", "Want", "compare", "differences", "want"]


@dataclass(frozen=True)
class Want:
    """An expectation with its times read in the scenario's zone."""

    expected: Expected
    window: tuple[datetime, datetime] | None
    at: datetime | None


def want(expected: Expected, zone: ZoneInfo) -> Want:
    """``expected`` with its times parsed (raises :class:`~.times.TimeValueError`)."""
    window = None
    if expected.window is not None:
        start, end = expected.window
        window = (parse_time(start, zone), parse_time(end, zone))
    at = parse_time(expected.at, zone) if expected.at is not None else None
    return Want(expected, window, at)


@dataclass(frozen=True)
class Difference:
    """One field where an expectation and a firing differ, both shown."""

    field: str
    expected: str
    actual: str


def _window_text(window: tuple[datetime | None, datetime | None], zone: ZoneInfo) -> str:
    start, end = window
    if start is None or end is None:
        return "none"
    return f"{show_time(start, zone)} → {show_time(end, zone)}"


def differences(wanted: Want, firing: Firing, zone: ZoneInfo) -> list[Difference]:
    """Every compared field in which ``firing`` is not what ``wanted`` says."""
    spec = wanted.expected
    found: list[Difference] = []

    def differ(name: str, expected: object, actual: object) -> None:
        found.append(Difference(name, str(expected), str(actual)))

    if spec.rule != firing.rule:
        differ("rule", spec.rule, firing.rule)
    if spec.status != firing.status:
        differ("status", spec.status, firing.status)
    if spec.key != firing.key:
        differ("key", repr(spec.key), repr(firing.key))
    if wanted.window is not None and wanted.window != (firing.window_start, firing.window_end):
        actual = _window_text((firing.window_start, firing.window_end), zone)
        differ("window", _window_text(wanted.window, zone), actual)
    if wanted.at is not None and wanted.at != firing.at:
        differ("at", show_time(wanted.at, zone), show_time(firing.at, zone))
    if spec.expected is not None and spec.expected != firing.expected:
        differ("expected", spec.expected, firing.expected)
    if spec.arrived is not None and spec.arrived != firing.arrived:
        differ("arrived", spec.arrived, firing.arrived)
    if spec.late != firing.late:
        differ("late", str(spec.late).lower(), str(firing.late).lower())
    return found


@dataclass
class Comparison:
    """The outcome: pairs that match, expectations not met, firings not expected."""

    matched: list[tuple[Want, Firing]] = field(default_factory=list)
    missing: list[Want] = field(default_factory=list)
    unexpected: list[Firing] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the firings are exactly the ones expected."""
        return not self.missing and not self.unexpected


def compare(wants: list[Want], firings: list[Firing], zone: ZoneInfo) -> Comparison:
    """Match ``wants`` to ``firings`` (Kuhn's augmenting paths; scenarios are small)."""
    fits = [
        [index for index, firing in enumerate(firings) if not differences(w, firing, zone)]
        for w in wants
    ]
    owner: dict[int, int] = {}  # firing index -> want index

    def augment(want_index: int, seen: set[int]) -> bool:
        for firing_index in fits[want_index]:
            if firing_index in seen:
                continue
            seen.add(firing_index)
            holder = owner.get(firing_index)
            if holder is None or augment(holder, seen):
                owner[firing_index] = want_index
                return True
        return False

    for want_index in range(len(wants)):
        augment(want_index, set())
    taken = {want_index: firing_index for firing_index, want_index in owner.items()}
    result = Comparison()
    for want_index, wanted in enumerate(wants):
        if want_index in taken:
            result.matched.append((wanted, firings[taken[want_index]]))
        else:
            result.missing.append(wanted)
    result.unexpected = [firing for index, firing in enumerate(firings) if index not in owner]
    return result
