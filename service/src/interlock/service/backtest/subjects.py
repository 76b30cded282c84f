"""Which subjects of ``INTERLOCK_EVENTS`` a backtest reads: the rules' event names.

The replay's consumer asks the server for the events the rules can match and nothing
else (the server skips the rest with its per-block subject index). A consumer's
``filter_subjects`` must not overlap (NATS error 10138), so patterns covered by another
(``s3.object.created`` under ``s3.>``) are dropped; if two that remain still overlap
(``a.*.c`` and ``a.b.*``), or there are more than :data:`MAX_FILTERS`, the consumer
reads every event and the engine's own matcher does the filtering.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

import msgspec

from interlock.rules.rule import Rule
from interlock.rules.triggers import EventMatch
from interlock.sdk.subjects import subject_filter

__all__ = ["INTERNAL_PREFIX", "MAX_FILTERS", "event_patterns", "filter_subjects", "reads_internal"]

MAX_FILTERS: Final = 256
"""More patterns than this and the consumer reads every event (filtered here)."""
INTERNAL_PREFIX: Final = "interlock."
"""Interlock's own events (``interlock.rule.fired``, ``interlock.action.*``)."""
_EVERYTHING = ">"


def _matches(value: Any) -> Iterator[EventMatch]:
    if isinstance(value, EventMatch):
        yield value
    elif isinstance(value, msgspec.Struct):
        for field in value.__struct_fields__:
            yield from _matches(getattr(value, field))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _matches(item)


def event_patterns(rules: Iterable[Rule]) -> list[str]:
    """Every event-name pattern the rules' triggers match, sorted, once each."""
    return sorted({name for rule in rules for match in _matches(rule.when) for name in match.names})


def reads_internal(pattern: str) -> bool:
    """Whether a pattern can match one of Interlock's own events (``interlock.*``)."""
    return _overlap(pattern.split("."), ["interlock", _EVERYTHING])


def _covers(wide: list[str], narrow: list[str]) -> bool:
    """Whether every name ``narrow`` matches is matched by ``wide``."""
    for index, part in enumerate(wide):
        if part == _EVERYTHING:
            return len(narrow) > index
        if index >= len(narrow) or narrow[index] == _EVERYTHING:
            return False
        if part != "*" and (narrow[index] == "*" or narrow[index] != part):
            return False
    return len(narrow) == len(wide)


def _overlap(one: list[str], two: list[str]) -> bool:
    """Whether some name matches both patterns."""
    for index in range(max(len(one), len(two))):
        if index >= len(one) or index >= len(two):
            return False
        a, b = one[index], two[index]
        if _EVERYTHING in (a, b):
            return True
        if a != b and "*" not in (a, b):
            return False
    return True


def filter_subjects(patterns: Iterable[str]) -> list[str]:
    """The consumer's subject filters for these event-name patterns (see the module)."""
    split = [pattern.split(".") for pattern in sorted(set(patterns))]
    if not split or any(tokens == [_EVERYTHING] for tokens in split):
        return [subject_filter(_EVERYTHING)]
    kept = [
        tokens
        for tokens in split
        if not any(other is not tokens and _covers(other, tokens) for other in split)
    ]
    overlapping = any(_overlap(a, b) for i, a in enumerate(kept) for b in kept[i + 1 :])
    if overlapping or len(kept) > MAX_FILTERS:
        return [subject_filter(_EVERYTHING)]
    return [subject_filter(".".join(tokens)) for tokens in kept]
