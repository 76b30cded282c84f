"""Which subjects of ``INTERLOCK_EVENTS`` a backtest reads: the rules' event names.

The replay's consumer asks the server for the events the rules can match (the server
skips the rest with its per-block subject index). A consumer's ``filter_subjects`` must
not overlap (NATS error 10138), so patterns covered by another (``s3.object.created``
under ``s3.>``) are dropped. If two that remain still overlap (``a.*.c`` and
``a.b.*``), or there are more than :data:`MAX_FILTERS`, the consumer takes one wider
subject (the names' common leading tokens and ``>``; every event when they share
none) and :class:`SubjectTest` drops the others here, by subject, before decoding.

Why a limit: a consumer with many filter subjects is slow to serve. Measured here
(nats-server 2.15, 50,000 stored events): one filter delivered 48,000-64,000 messages/s
to the reader, seventy exact filters 21,000-26,000/s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

import msgspec

from interlock.rules.names import pattern_matches
from interlock.rules.rule import Rule
from interlock.rules.triggers import EventMatch
from interlock.sdk.subjects import EVENTS_SUBJECT_PREFIX, subject_filter

__all__ = [
    "INTERNAL_PREFIX",
    "MAX_FILTERS",
    "SubjectTest",
    "event_patterns",
    "filter_subjects",
    "reads_internal",
]

MAX_FILTERS: Final = 8
"""More patterns than this and the consumer reads a wider subject (filtered here)."""
INTERNAL_PREFIX: Final = "interlock."
"""Interlock's own events (``interlock.rule.fired``, ``interlock.action.*``)."""
_EVERYTHING = ">"
_CACHED = 100_000


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


def filter_subjects(patterns: Iterable[str]) -> tuple[list[str], bool]:
    """The consumer's subject filters for these patterns, and whether they are exact.

    Not exact: the filters are wider than the patterns; test each subject with
    :class:`SubjectTest` (see the module).
    """
    split = [pattern.split(".") for pattern in sorted(set(patterns))]
    if not split or any(tokens == [_EVERYTHING] for tokens in split):
        return [subject_filter(_EVERYTHING)], True
    kept = [
        tokens
        for tokens in split
        if not any(other is not tokens and _covers(other, tokens) for other in split)
    ]
    overlapping = any(_overlap(a, b) for i, a in enumerate(kept) for b in kept[i + 1 :])
    if overlapping or len(kept) > MAX_FILTERS:
        return [subject_filter(".".join([*_common(kept), _EVERYTHING]))], False
    return [subject_filter(".".join(tokens)) for tokens in kept], True


def _common(patterns: list[list[str]]) -> list[str]:
    """The leading literal tokens every pattern shares, short of each one's last."""
    common: list[str] = []
    for tokens in zip(*(pattern[:-1] for pattern in patterns), strict=False):
        if len(set(tokens)) != 1 or tokens[0] in ("*", _EVERYTHING):
            break
        common.append(tokens[0])
    return common


class SubjectTest:
    """Whether a subject of the stream names an event one of the patterns matches.

    Answers are cached per subject (a stream holds few distinct names).
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self._patterns = sorted(set(patterns))
        self._known: dict[str, bool] = {}

    def __call__(self, subject: str) -> bool:
        """Whether ``subject`` is one of the patterns' events."""
        known = self._known.get(subject)
        if known is None:
            name = subject.removeprefix(EVENTS_SUBJECT_PREFIX)
            known = subject.startswith(EVENTS_SUBJECT_PREFIX) and any(
                pattern_matches(pattern, name) for pattern in self._patterns
            )
            if len(self._known) < _CACHED:
                self._known[subject] = known
        return known
