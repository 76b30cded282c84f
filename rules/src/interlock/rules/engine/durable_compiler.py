"""Compile a predicate into the part of it durable_rules can decide exactly.

:func:`compile_predicate` turns a :class:`~interlock.rules.predicates.Predicate` into a
:class:`Compiled`: a condition ``cond`` that durable_rules evaluates and a flag
``exact``. ``cond`` is always *necessary* (``predicate.matches(e)`` implies ``cond``
holds on ``e``'s projection); when ``exact`` is true it is also sufficient, otherwise the
matcher confirms each hit with ``predicate.matches`` in Python. So the contract — no
false negative, no false positive versus ``Predicate.matches`` — never rests on durable
deciding something it cannot.

Conditions read *typed slots* of a flat projection of the event, one family per path:
``e`` (the path is present, any value), ``s`` (a string), ``n`` (a number, not a bool),
``b`` (a bool), ``z`` (null). A test on a slot the projection lacks is false in durable,
which is exactly "missing path or other type" in the predicate semantics. Negation is
pushed down to the atoms (``not (n < 5)`` is ``n absent or n >= 5``).

What durable_rules 2.0.28 decides exactly (verified against its C source and by tests):

- equality and ``!=`` of strings (compared as their JSON text, so both sides are
  encoded by the same encoder), bools, and numbers that are ints within ±2**53 or
  finite floats durable's parser reads back exactly (see :func:`durable_number`);
- ``<``, ``<=``, ``>``, ``>=`` of those numbers and of bools, ``$ex`` / ``$nex``.

What it does not, so it stays in Python: string ordering (durable ``strncmp``s the raw
text, so ``"ab" < "ab!"`` comes out false), Glob (unless it has no wildcard), Regex,
Contains, RelatedTo, constants it cannot hold exactly (huge ints, NaN, infinities), and
conditions past its per-rule limit of 15 nested ``$and``/``$or`` (error 113).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import msgspec

from interlock.rules.predicates import (
    AllOf,
    AnyOf,
    AnyPredicate,
    Compare,
    Contains,
    Exists,
    Glob,
    Not,
    OneOf,
    Regex,
    RelatedTo,
)

__all__ = [
    "Atom",
    "Compiled",
    "Cond",
    "Junction",
    "atoms",
    "compile_predicate",
    "durable_number",
]

Const = str | int | float | bool | None

MAX_EXACT_INT = 2**53
"""Ints beyond this lose precision when durable compares them with a double."""
MIN_PLAIN_FLOAT = 1e-5
"""msgspec writes smaller non-integral floats as ``1e-7``, which durable cannot parse."""
MAX_JUNCTIONS = 12
"""``$and``/``$or`` nodes per rule; durable allows 15 (the matcher adds one ``$and``)."""
MAX_ATOMS = 64
MAX_ONE_OF = 32

_encode = msgspec.json.encode
_COMPLEMENT = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


class Atom(NamedTuple):
    """One test of one typed slot: ``<kind>(path) <op> value``."""

    path: str
    kind: str  # "e" present, "s" string, "n" number, "b" bool, "z" null
    op: str  # "==", "!=", "<", "<=", ">", ">=", "ex", "nex"
    value: Const = None


class Junction(NamedTuple):
    """``and`` / ``or`` of conditions."""

    op: str
    items: tuple[Cond, ...]


Cond = Atom | Junction | bool
"""A durable-decidable condition; ``True`` / ``False`` are the constants."""


class Compiled(NamedTuple):
    """What durable evaluates for a predicate, and whether that is the whole answer."""

    cond: Cond
    exact: bool


def durable_number(value: int | float) -> int | float | None:
    """Return ``value`` as durable can hold and compare it exactly, or ``None``.

    Integral values become ints (``5.0`` → ``5``; ``1 == 1.0`` in both worlds);
    ints beyond ±2**53, NaN, infinities and tiny non-integral floats are refused.
    """
    if isinstance(value, int):
        number = int(value)
        return number if -MAX_EXACT_INT <= number <= MAX_EXACT_INT else None
    number_f = float(value)
    if math.isnan(number_f) or math.isinf(number_f):
        return None
    if number_f.is_integer():
        return int(number_f) if abs(number_f) <= MAX_EXACT_INT else None
    return number_f if abs(number_f) >= MIN_PLAIN_FLOAT else None


def _classify(value: object) -> tuple[str | None, Const]:
    """The slot kind and durable constant for a predicate constant; kind None if unusable."""
    if value is None:
        return "z", None
    if type(value) is bool:
        return "b", value
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = durable_number(value)
        return ("n", number) if number is not None else (None, None)
    if type(value) is str:
        try:
            _encode(value)
        except UnicodeEncodeError:  # a lone surrogate: no JSON text to compare
            return None, None
        return "s", value
    return None, None


def _present(path: str) -> Atom:
    return Atom(path, "e", "ex")


def _eq(path: str, kind: str, value: Const) -> Cond:
    return Atom(path, "z", "ex") if kind == "z" else Atom(path, kind, "==", value)


def _not_eq(path: str, kind: str, value: Const) -> Cond:
    if kind == "z":
        return Atom(path, "z", "nex")
    return Junction("or", (Atom(path, kind, "nex"), Atom(path, kind, "!=", value)))


def _all(parts: list[Compiled]) -> Compiled:
    items: list[Cond] = []
    exact = True
    for cond, part_exact in parts:
        if cond is False:
            return Compiled(False, True)
        exact = exact and part_exact
        if cond is True:
            continue
        items.extend(cond.items if isinstance(cond, Junction) and cond.op == "and" else [cond])
    return Compiled(_junction("and", items, True), exact)


def _any(parts: list[Compiled]) -> Compiled:
    items: list[Cond] = []
    exact = True
    weakened = False  # some part is "true as far as durable can tell"
    for cond, part_exact in parts:
        if cond is True:
            if part_exact:
                return Compiled(True, True)
            weakened = True
            continue
        exact = exact and part_exact
        if cond is False:
            continue
        items.extend(cond.items if isinstance(cond, Junction) and cond.op == "or" else [cond])
    if weakened:
        return Compiled(True, False)
    return Compiled(_junction("or", items, False), exact)


def _junction(op: str, items: list[Cond], empty: bool) -> Cond:
    unique = sorted(set(items), key=repr)
    if not unique:
        return empty
    return unique[0] if len(unique) == 1 else Junction(op, tuple(unique))


def _compare(pred: Compare, negate: bool) -> Compiled:
    path, op = pred.path, pred.op
    kind, value = _classify(pred.value)
    if kind is None:  # durable cannot hold the constant: Python decides
        return Compiled(True if negate else _present(path), False)
    if op == "==":
        return Compiled(_not_eq(path, kind, value) if negate else _eq(path, kind, value), True)
    if op == "!=":
        # True only for a value of the constant's kind that differs (a value of another
        # kind, or none, is false); "!= None" is true for any value there but null.
        if kind == "z":
            if negate:
                return _any(
                    [Compiled(Atom(path, "e", "nex"), True), Compiled(Atom(path, "z", "ex"), True)]
                )
            return _all([Compiled(_present(path), True), Compiled(Atom(path, "z", "nex"), True)])
        if negate:
            return _any(
                [Compiled(Atom(path, kind, "nex"), True), Compiled(_eq(path, kind, value), True)]
            )
        return Compiled(Atom(path, kind, "!=", value), True)
    if kind == "z":  # ordering against null is never true
        return Compiled(negate, True)
    if kind == "s":  # durable orders raw JSON text, not strings
        return Compiled(True, False) if negate else Compiled(Atom(path, "s", "ex"), False)
    if negate:
        return _any(
            [
                Compiled(Atom(path, kind, "nex"), True),
                Compiled(Atom(path, kind, _COMPLEMENT[op], value), True),
            ]
        )
    return Compiled(Atom(path, kind, op, value), True)


def _one_of(pred: OneOf, negate: bool) -> Compiled:
    path = pred.path
    wanted: dict[tuple[str, Const], None] = {}
    for raw in pred.values:
        if raw is None:  # the predicate never matches a null against a listed null
            continue
        kind, value = _classify(raw)
        if kind is None:
            return Compiled(True if negate else _present(path), False)
        wanted[(kind, value)] = None
    if len(wanted) > MAX_ONE_OF:  # too many alternatives for one rule: only the types
        if negate:
            return Compiled(True, False)
        kinds = sorted({kind for kind, _ in wanted})
        return Compiled(_any([Compiled(Atom(path, k, "ex"), True) for k in kinds]).cond, False)
    if not negate:
        return _any([Compiled(_eq(path, kind, value), True) for kind, value in wanted])
    parts = []
    for kind in sorted({kind for kind, _ in wanted}):
        others = _all([Compiled(Atom(path, kind, "!=", v), True) for k, v in wanted if k == kind])
        parts.append(_any([Compiled(Atom(path, kind, "nex"), True), others]))
    return _all(parts)


def _literal_glob(pattern: str) -> bool:
    return not any(ch in pattern for ch in "*?[")


def _compile(pred: AnyPredicate, negate: bool) -> Compiled:
    if isinstance(pred, AllOf | AnyOf):
        parts = [_compile(item, negate) for item in pred.items]
        return _all(parts) if isinstance(pred, AllOf) != negate else _any(parts)
    if isinstance(pred, Not):
        return _compile(pred.item, not negate)
    return _leaf(pred, negate)


def _leaf(
    pred: Compare | OneOf | Contains | Exists | Glob | Regex | RelatedTo, negate: bool
) -> Compiled:
    if isinstance(pred, Compare):
        return _compare(pred, negate)
    if isinstance(pred, OneOf):
        return _one_of(pred, negate)
    if isinstance(pred, Exists):
        return Compiled(Atom(pred.path, "e", "nex" if negate else "ex"), True)
    if isinstance(pred, Glob) and _literal_glob(pred.pattern):
        kind, value = _classify(pred.pattern)
        if kind == "s":  # no wildcard: the glob is an equality
            cond = _not_eq(pred.path, "s", value) if negate else _eq(pred.path, "s", value)
            return Compiled(cond, True)
    if isinstance(pred, Glob | Regex):
        return Compiled(True, False) if negate else Compiled(Atom(pred.path, "s", "ex"), False)
    if isinstance(pred, Contains):
        return Compiled(True, False) if negate else Compiled(_present(pred.path), False)
    return Compiled(True, False)  # RelatedTo: the related list is not projected


def _size(cond: Cond) -> tuple[int, int]:
    """(junctions, atoms) in ``cond``."""
    if isinstance(cond, Junction):
        sizes = [_size(item) for item in cond.items]
        return 1 + sum(j for j, _ in sizes), sum(a for _, a in sizes)
    return (0, 1) if isinstance(cond, Atom) else (0, 0)


def atoms(cond: Cond) -> Iterator[Atom]:
    """Every atom in ``cond``."""
    if isinstance(cond, Atom):
        yield cond
    elif isinstance(cond, Junction):
        for item in cond.items:
            yield from atoms(item)


def compile_predicate(pred: AnyPredicate | None) -> Compiled:
    """Compile ``pred`` (``None`` = always true) into a durable condition.

    An inexact condition that only asks whether paths are there is dropped (``True``,
    inexact): checking the predicate in Python is cheaper than a durable post. A
    condition over durable's size limits is weakened to its top-level atoms (still a
    necessary condition, no longer exact).
    """
    if pred is None:
        return Compiled(True, True)
    compiled = _compile(pred, False)
    if not compiled.exact and all(atom.op in {"ex", "nex"} for atom in atoms(compiled.cond)):
        return Compiled(True, False)  # "the path is there" is not worth a durable post
    junctions, atom_count = _size(compiled.cond)
    if junctions <= MAX_JUNCTIONS and atom_count <= MAX_ATOMS:
        return compiled
    cond = compiled.cond
    if isinstance(cond, Junction) and cond.op == "and":
        kept = [item for item in cond.items if isinstance(item, Atom)][:MAX_ATOMS]
        return Compiled(_junction("and", list(kept), True), False)
    return Compiled(True, False)
