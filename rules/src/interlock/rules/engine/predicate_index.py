r"""Find the specs an event could satisfy by a necessary condition, without trying them all.

durable_rules cannot narrow a Glob or a Regex, and its per-node tests are linear in the
number of distinct numeric thresholds, so 1,000 rules such as
``resource.id.glob("dw.t0042*")`` on one event name would cost 1,000
``Predicate.matches`` calls (or one durable post and 1,000 calls) per event. Instead,
:func:`index_keys` extracts from a predicate a *necessary condition*: keys, at least one
of which holds for every event the predicate matches —

- :class:`Equal`: the string at a path is this one (``resource.id == "dw.sales"``, a
  ``OneOf`` of strings, a Glob without wildcards);
- :class:`Prefix`: the string at a path starts with this one (the literal start of a Glob,
  so ``startswith``; the literal start of a Regex anchored with ``^`` or ``\A``);
- :class:`Range`: the number at a path (an int or a float, not a bool) is in an interval
  (``payload.rows > 100``, ``==`` a number, ``>=`` and ``<`` on one path merged).

A conjunction is indexed on its most selective part (``glob & rows >= 1`` on the glob's
prefix), a disjunction on the union of its parts' keys (if each has some). A key that
says everything the predicate says is *exact*: an event it finds satisfies the predicate
with no further check. Every other candidate is confirmed with ``Predicate.matches``, so
the answer is exactly the predicate's (no false negative: the keys are necessary; no
false positive: candidates are confirmed).

:class:`SpecIndex` holds the keyed specs of one name pattern, one :class:`PathIndex` per
path: a dict of whole strings, a dict of prefixes probed once per prefix length present,
and numeric intervals cut into elementary segments (a bisect finds an event's segment,
whose candidates are listed, or collected up a segment tree when the intervals overlap
too much to list). A value of a subclass of ``str``, ``int`` or ``float`` (whose
comparisons could differ) gets every spec of the path's strings or numbers, confirmed.
"""

from __future__ import annotations

import math
import re
import re._constants as _sre_constants  # type: ignore[import-not-found]  # no stubs
import re._parser as _sre_parser  # type: ignore[import-not-found]  # re's own parser
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from interlock.rules.engine.durable_rulesets import reader
from interlock.rules.predicates import (
    AllOf,
    AnyOf,
    AnyPredicate,
    Compare,
    Glob,
    Not,
    OneOf,
    Regex,
)

__all__ = [
    "Candidate",
    "Equal",
    "Key",
    "PathIndex",
    "Prefix",
    "Probe",
    "Range",
    "SpecIndex",
    "glob_prefix",
    "index_keys",
    "regex_prefix",
]

Number = int | float

MAX_KEYS = 1024
"""Keys per spec at most (a disjunction of more is left unindexed). Each costs a dict
entry or an interval, not a test per event: a ``OneOf`` of 600 tables is 600 keys."""
LIST_BUDGET = 8
"""Numeric candidates are listed per segment while that takes at most this many entries
per interval (plus one per segment); beyond, they are collected up a segment tree."""


class Equal(NamedTuple):
    """The value at ``path`` is the string ``value``."""

    path: str
    value: str
    exact: bool


class Prefix(NamedTuple):
    """The value at ``path`` is a string starting with ``prefix`` (never empty)."""

    path: str
    prefix: str
    exact: bool


class Range(NamedTuple):
    """The value at ``path`` is a number (not a bool) within the bounds (``None``: open)."""

    path: str
    low: Number | None
    low_closed: bool
    high: Number | None
    high_closed: bool
    exact: bool


Key = Equal | Prefix | Range
Candidate = tuple[int, AnyPredicate | None]
"""A spec's registration number and the predicate to confirm (``None``: it surely holds)."""
Probe = tuple[Callable[[Any], Any], Callable[[Any], Sequence[Candidate]]]
"""How to read one path of an event, and the candidates for the value there."""

_EMPTY: tuple[Candidate, ...] = ()


# -- necessary conditions --------------------------------------------------------------


def glob_prefix(pattern: str) -> tuple[str, str]:
    """The literal start of a Glob pattern and the rest of the pattern after it.

    ``[c]`` (how ``startswith`` escapes ``*``, ``?`` and ``[``) is the literal ``c``;
    the scan stops at any other wildcard.
    """
    prefix: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "[":
            if i + 2 < n and pattern[i + 2] == "]" and pattern[i + 1] not in "!]-\\^":
                prefix.append(pattern[i + 1])
                i += 3
                continue
            break
        if ch in "*?":
            break
        prefix.append(ch)
        i += 1
    return "".join(prefix), pattern[i:]


def regex_prefix(pattern: str) -> tuple[str, bool]:
    r"""The literal start of a Regex that matches only at the start of a string.

    That is: ``^`` or ``\A`` first, not under MULTILINE or IGNORECASE. Returns the literal
    characters after it and whether they are the whole pattern; ``""`` when there is no
    such start (an unanchored pattern, a top-level ``|``, ...).
    """
    try:
        parsed = _sre_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return "", False
    flags = parsed.state.flags
    if flags & re.IGNORECASE:
        return "", False
    items = list(parsed)
    if not items or items[0][0] is not _sre_constants.AT:
        return "", False
    anchor = items[0][1]
    if not (
        anchor is _sre_constants.AT_BEGINNING_STRING
        or (anchor is _sre_constants.AT_BEGINNING and not flags & re.MULTILINE)
    ):
        return "", False
    prefix, whole = _literal_run(items[1:])
    return prefix, whole


def _literal_run(items: list[Any]) -> tuple[str, bool]:
    """The literal characters ``items`` start with, and whether that is all of them."""
    chars: list[str] = []
    for op, argument in items:
        if op is _sre_constants.LITERAL:
            chars.append(chr(argument))
            continue
        if op is _sre_constants.SUBPATTERN:
            _group, add_flags, _del_flags, inner = argument
            if add_flags & re.IGNORECASE:
                return "".join(chars), False
            more, whole = _literal_run(list(inner))
            chars.append(more)
            if whole:
                continue
        return "".join(chars), False
    return "".join(chars), True


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare_keys(pred: Compare) -> tuple[Key, ...] | None:
    path, op, value = pred.path, pred.op, pred.value
    if op == "!=":
        return None
    if type(value) is str:
        return (Equal(path, value, exact=True),) if op == "==" else None
    if not _is_number(value):
        return None
    assert isinstance(value, int | float)
    if isinstance(value, float) and math.isnan(value):
        return None  # never true; left to the ordinary path
    if op == "==":
        return (Range(path, value, True, value, True, exact=True),)
    if op in {">", ">="}:
        return (Range(path, value, op == ">=", None, False, exact=True),)
    return (Range(path, None, False, value, op == "<=", exact=True),)


def _one_of_keys(pred: OneOf) -> tuple[Key, ...] | None:
    keys: list[Key] = []
    for value in dict.fromkeys(pred.values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # a listed null or NaN equals nothing
        if type(value) is str:
            keys.append(Equal(pred.path, value, exact=True))
        elif _is_number(value):
            assert isinstance(value, int | float)
            keys.append(Range(pred.path, value, True, value, True, exact=True))
        else:  # a bool (or a str subclass): not indexed
            return None
    return tuple(keys) if 0 < len(keys) <= MAX_KEYS else None


def _intersect(a: Range, b: Range) -> Range:
    low, low_closed = a.low, a.low_closed
    if b.low is not None and (low is None or b.low > low or (b.low == low and not b.low_closed)):
        low, low_closed = b.low, b.low_closed
    high, high_closed = a.high, a.high_closed
    if b.high is not None and (
        high is None or b.high < high or (b.high == high and not b.high_closed)
    ):
        high, high_closed = b.high, b.high_closed
    return Range(a.path, low, low_closed, high, high_closed, a.exact and b.exact)


def _key_score(key: Key) -> int:
    if isinstance(key, Equal):
        return 1000
    if isinstance(key, Prefix):
        return 100 + min(len(key.prefix), 100)
    if key.low is not None and key.low == key.high:
        return 900
    return 60 if key.low is not None and key.high is not None else 20


def _score(keys: tuple[Key, ...]) -> tuple[int, int]:
    return min(_key_score(key) for key in keys), -len(keys)


def _inexact(keys: tuple[Key, ...]) -> tuple[Key, ...]:
    return tuple(key._replace(exact=False) for key in keys)


def _all_keys(pred: AllOf) -> tuple[Key, ...] | None:
    parts = [_keys(item) for item in pred.items]
    options: list[tuple[Key, ...]] = []
    merged: dict[str, tuple[Range, int]] = {}  # path -> intersection, items merged
    for part in parts:
        if part is None:
            continue
        options.append(part)
        first = part[0]
        if len(part) == 1 and isinstance(first, Range):
            known = merged.get(first.path)
            merged[first.path] = (
                (first, 1) if known is None else (_intersect(known[0], first), known[1] + 1)
            )
    for interval, count in merged.values():
        if count > 1:
            options.append((interval,))
    if not options:
        return None
    best = max(options, key=_score)
    covered = len(pred.items) == 1 or (
        len(best) == 1
        and isinstance(best[0], Range)
        and merged.get(best[0].path, (None, 0))[1] == len(pred.items)
        and merged[best[0].path][0] == best[0]
    )
    return best if covered else _inexact(best)


def _keys(pred: AnyPredicate) -> tuple[Key, ...] | None:
    if isinstance(pred, Compare):
        return _compare_keys(pred)
    if isinstance(pred, OneOf):
        return _one_of_keys(pred)
    if isinstance(pred, Glob):
        prefix, rest = glob_prefix(pred.pattern)
        if not rest:  # no wildcard: an equality
            return (Equal(pred.path, prefix, exact=True),)
        exact = rest == "*" * len(rest)  # the prefix, then anything
        return (Prefix(pred.path, prefix, exact=exact),) if prefix else None
    if isinstance(pred, Regex):
        prefix, whole = regex_prefix(pred.pattern)
        return (Prefix(pred.path, prefix, exact=whole),) if prefix else None
    if isinstance(pred, AllOf):
        return _all_keys(pred) if pred.items else None
    if isinstance(pred, AnyOf):
        keys: list[Key] = []
        for item in pred.items:
            part = _keys(item)
            if part is None:
                return None
            keys.extend(part)
        return tuple(dict.fromkeys(keys)) if 0 < len(keys) <= MAX_KEYS else None
    if isinstance(pred, Not) and isinstance(pred.item, Not):
        return _keys(pred.item.item)
    return None  # Exists, Contains, RelatedTo, other negations: no positive condition


def index_keys(pred: AnyPredicate | None) -> tuple[Key, ...] | None:
    """Keys at least one of which holds on every event ``pred`` matches; ``None``: none found.

    A key marked exact also implies ``pred``: an event it finds needs no further check.
    """
    return None if pred is None else _keys(pred)


# -- the index -------------------------------------------------------------------------


class _Numbers:
    """Intervals of numbers: which ones hold a value, by a bisect into elementary segments."""

    __slots__ = ("_lists", "_points", "_size", "_tree")

    def __init__(self, intervals: list[tuple[Range, Candidate]]) -> None:
        points = sorted(
            {bound for key, _ in intervals for bound in (key.low, key.high) if bound is not None}
        )
        self._points = points
        # segment 2j: between points j-1 and j (open); 2j+1: point j; 2k: after the last
        last = 2 * len(points)
        spans: list[tuple[int, int, Candidate]] = []
        for key, candidate in intervals:
            first = 0
            if key.low is not None:
                j = bisect_left(points, key.low)
                first = 2 * j + 1 if key.low_closed else 2 * j + 2
            final = last
            if key.high is not None:
                j = bisect_left(points, key.high)
                final = 2 * j + 1 if key.high_closed else 2 * j
            if first <= final:
                spans.append((first, final, candidate))
        segments = last + 1
        self._lists: list[tuple[Candidate, ...]] | None = None
        self._tree: list[tuple[Candidate, ...]] = []
        self._size = 1
        if (
            sum(final - first + 1 for first, final, _ in spans)
            <= LIST_BUDGET * len(spans) + segments
        ):
            lists: list[list[Candidate]] = [[] for _ in range(segments)]
            for first, final, candidate in spans:
                for segment in range(first, final + 1):
                    lists[segment].append(candidate)
            self._lists = [tuple(found) for found in lists]
            return
        while self._size < segments:
            self._size *= 2
        tree: list[list[Candidate]] = [[] for _ in range(2 * self._size)]
        for first, final, candidate in spans:
            low, high = first + self._size, final + self._size + 1
            while low < high:
                if low & 1:
                    tree[low].append(candidate)
                    low += 1
                if high & 1:
                    high -= 1
                    tree[high].append(candidate)
                low >>= 1
                high >>= 1
        self._tree = [tuple(found) for found in tree]

    def find(self, value: Number) -> tuple[Candidate, ...]:
        """The candidates whose interval holds ``value`` (an int or a float, not NaN)."""
        points = self._points
        j = bisect_left(points, value)
        segment = 2 * j + 1 if j < len(points) and points[j] == value else 2 * j
        if self._lists is not None:
            return self._lists[segment]
        tree = self._tree
        node = segment + self._size
        found: tuple[Candidate, ...] = ()
        while node:
            more = tree[node]
            if more:
                found = found + more if found else more
            node >>= 1
        return found


class PathIndex:
    """The keyed specs of one path: equal strings, prefixes, numeric intervals."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.read = reader(path)
        self._keys: dict[int, list[Key]] = {}
        self._preds: dict[int, AnyPredicate] = {}
        self._lookup: Callable[[Any], Sequence[Candidate]] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, seq: int, pred: AnyPredicate, key: Key) -> None:
        """Index spec ``seq`` (predicate ``pred``) under ``key`` (a key of this path)."""
        self._keys.setdefault(seq, []).append(key)
        self._preds[seq] = pred
        self._lookup = None

    def remove(self, seq: int) -> None:
        """Forget spec ``seq`` (every key of it)."""
        if self._keys.pop(seq, None) is not None:
            del self._preds[seq]
            self._lookup = None

    def lookup(self) -> Callable[[Any], Sequence[Candidate]]:
        """A function from the value at the path to its candidates (built once per change)."""
        if self._lookup is None:
            self._lookup = self._build()
        return self._lookup

    def _build(self) -> Callable[[Any], Sequence[Candidate]]:
        equal: dict[str, list[Candidate]] = {}
        prefixes: dict[str, list[Candidate]] = {}
        intervals: list[tuple[Range, Candidate]] = []
        strings: dict[int, None] = {}
        numbers: dict[int, None] = {}
        for seq, keys in self._keys.items():
            pred = self._preds[seq]
            for key in keys:
                candidate = (seq, None if key.exact else pred)
                if isinstance(key, Equal):
                    equal.setdefault(key.value, []).append(candidate)
                    strings[seq] = None
                elif isinstance(key, Prefix):
                    prefixes.setdefault(key.prefix, []).append(candidate)
                    strings[seq] = None
                else:
                    intervals.append((key, candidate))
                    numbers[seq] = None
        equal_f = {value: tuple(found) for value, found in equal.items()}
        prefix_f = {prefix: tuple(found) for prefix, found in prefixes.items()}
        lengths = tuple(sorted({len(prefix) for prefix in prefix_f}))
        find = _Numbers(intervals).find if intervals else None
        # a subclass of str, int or float may compare differently: every spec, confirmed
        any_string = tuple((seq, self._preds[seq]) for seq in strings)
        any_number = tuple((seq, self._preds[seq]) for seq in numbers)

        def lookup(value: Any) -> Sequence[Candidate]:
            kind = type(value)
            if kind is str:
                found = equal_f.get(value, _EMPTY)
                size = len(value)
                for length in lengths:
                    if length > size:
                        break
                    more = prefix_f.get(value[:length])
                    if more is not None:
                        found = found + more if found else more
                return found
            if kind is int or kind is float:
                if find is None or value != value:  # noqa: PLR0124 - NaN holds no interval
                    return _EMPTY
                return find(value)
            if kind is bool:
                return _EMPTY
            if isinstance(value, str):
                return any_string
            if isinstance(value, int | float):
                return any_number
            return _EMPTY

        return lookup


class SpecIndex:
    """The keyed specs of one name pattern, one :class:`PathIndex` per path."""

    def __init__(self) -> None:
        self._paths: dict[str, PathIndex] = {}
        self._specs: dict[int, tuple[str, ...]] = {}  # seq -> paths it is indexed under
        self._probes: tuple[Probe, ...] | None = None

    def __len__(self) -> int:
        return len(self._specs)

    def specs(self) -> list[int]:
        """The registration numbers of the indexed specs."""
        return list(self._specs)

    def add(self, seq: int, pred: AnyPredicate, keys: tuple[Key, ...]) -> None:
        """Index spec ``seq`` under ``keys`` (a necessary condition of ``pred``)."""
        paths: dict[str, None] = {}
        for key in keys:
            index = self._paths.get(key.path)
            if index is None:
                index = self._paths[key.path] = PathIndex(key.path)
            index.add(seq, pred, key)
            paths[key.path] = None
        self._specs[seq] = tuple(paths)
        self._probes = None

    def remove(self, seq: int) -> None:
        """Forget spec ``seq``; nothing if it is not indexed."""
        for path in self._specs.pop(seq, ()):
            index = self._paths[path]
            index.remove(seq)
            if not len(index):
                del self._paths[path]
            self._probes = None

    def probes(self) -> tuple[Probe, ...]:
        """For each path: how to read it, and the candidates for a value there."""
        if self._probes is None:
            self._probes = tuple((index.read, index.lookup()) for index in self._paths.values())
        return self._probes
