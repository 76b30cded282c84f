"""Predicates over an event: the declarative conditions a rule's trigger tests.

A predicate is plain data (a tagged ``msgspec`` struct) naming a *path* into the event
and a test. Paths are dotted: ``event``, ``source``, ``resource.id``, ``resource.<label>``,
``payload.<key>[.<key>...]`` (a numeric token indexes a list). :class:`RelatedTo` tests
the ``related`` list: "some related resource has this role and satisfies this predicate"
(paths inside it are relative to the related resource: ``id``, ``<label>``).

Semantics, the same in every evaluator (Python here, durable_rules in the engine):

- A test on a path the event does not have is **false**, and so is a test whose value
  has another type (``payload.rows > 5`` is false for ``"rows": "many"``); use
  :class:`Exists` to ask whether a path is there. ``!=`` too: ``payload.x != 1`` is true
  only for a number other than 1 (false for ``"1"``, ``true``, ``null`` and a missing
  ``x``). Comparing with ``None`` asks about null itself: ``x == None`` is true for a null
  value, ``x != None`` for any value that is there and not null.
- :class:`Not` is true exactly when its predicate is false: ``Not(payload.rows > 5)``
  holds for an event without ``rows``.
- :class:`Glob` matches the whole value with ``*`` (any run of characters, ``/`` and
  ``.`` included), ``?`` (one character) and ``[...]`` anywhere in the pattern.
  :class:`Regex` uses :func:`re.search` (anchor with ``^``/``$`` to match the whole).
- :class:`Contains` is true for a list holding the value, or a string holding it as a
  substring. :class:`OneOf` is true when the value equals one of the listed values.
- Numbers compare as numbers (``1 == 1.0``); booleans are not numbers.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from typing import Any, Literal

import msgspec

from interlock.sdk.event import Event

__all__ = [
    "MISSING",
    "AllOf",
    "AnyOf",
    "AnyPredicate",
    "Compare",
    "Contains",
    "Exists",
    "Glob",
    "Not",
    "OneOf",
    "Predicate",
    "Regex",
    "RelatedTo",
    "Scalar",
    "resolve",
]

Scalar = str | int | float | bool | None
CompareOp = Literal["==", "!=", "<", "<=", ">", ">="]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What :func:`resolve` returns for a path the event does not have."""

_ROOTS = ("event", "source", "resource", "payload", "id", "occurred")


def resolve(document: Event | dict[str, Any], path: str) -> Any:
    """Return the value at ``path`` in an event (or a related resource), or ``MISSING``."""
    head, _, rest = path.partition(".")
    value: Any
    if isinstance(document, Event):
        if head == "resource":
            value = document.resource
        elif head == "payload":
            value = document.payload
        elif head == "event":
            return document.event if not rest else MISSING
        elif head == "source":
            return document.source if not rest else MISSING
        elif head == "id":
            return str(document.id) if not rest else MISSING
        else:
            return MISSING
    else:
        value = document.get(head, MISSING)
        if value is MISSING:
            return MISSING
    for token in rest.split(".") if rest else ():
        if isinstance(value, dict):
            value = value.get(token, MISSING)
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparable(left: Any, right: Any) -> bool:
    if _is_number(left) and _is_number(right):
        return True
    return type(left) is type(right) and left is not None


class Predicate(msgspec.Struct, frozen=True, tag_field="test"):
    """Base of every predicate. Combine with ``&``, ``|`` and ``~``.

    ``and``/``or``/``not`` cannot be overloaded in Python and would silently test the
    truth of the object instead, so using a predicate as a bool raises ``TypeError``.
    """

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """Return whether ``event`` satisfies this predicate."""
        raise NotImplementedError

    def paths(self) -> list[str]:
        """Every path this predicate reads (for validation and compilation)."""
        return []

    def __and__(self, other: Predicate) -> Predicate:
        return AllOf(items=(*_flatten(self, AllOf), *_flatten(other, AllOf)))

    def __or__(self, other: Predicate) -> Predicate:
        return AnyOf(items=(*_flatten(self, AnyOf), *_flatten(other, AnyOf)))

    def __invert__(self) -> Predicate:
        return self.item if isinstance(self, Not) else Not(item=self)  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        raise TypeError(
            "a predicate has no truth value: combine predicates with & | ~ "
            "(not `and`, `or`, `not`), and compare one field at a time"
        )


def _flatten(predicate: Predicate, kind: type[AllOf] | type[AnyOf]) -> tuple[AnyPredicate, ...]:
    if isinstance(predicate, kind):
        return predicate.items
    return (predicate,)  # type: ignore[return-value]  # every concrete predicate is in the union


class Compare(Predicate, frozen=True, tag="compare"):
    """``path <op> value``."""

    path: str
    op: CompareOp
    value: Scalar

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """See :class:`Predicate`."""
        actual = resolve(event, self.path)
        if actual is MISSING:
            return False
        if self.op == "==":
            return (_comparable(actual, self.value) and actual == self.value) or (
                actual is None and self.value is None
            )
        if self.op == "!=":
            if self.value is None:
                return actual is not None
            return _comparable(actual, self.value) and actual != self.value
        if not _comparable(actual, self.value):
            return False
        if self.op == "<":
            return bool(actual < self.value)
        if self.op == "<=":
            return bool(actual <= self.value)
        if self.op == ">":
            return bool(actual > self.value)
        return bool(actual >= self.value)

    def paths(self) -> list[str]:
        """See :class:`Predicate`."""
        return [self.path]


class OneOf(Predicate, frozen=True, tag="in"):
    """The value at ``path`` equals one of ``values``."""

    path: str
    values: tuple[Scalar, ...]

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """See :class:`Predicate`."""
        actual = resolve(event, self.path)
        return actual is not MISSING and any(
            _comparable(actual, value) and actual == value for value in self.values
        )

    def paths(self) -> list[str]:
        """See :class:`Predicate`."""
        return [self.path]


class Contains(Predicate, frozen=True, tag="contains"):
    """The list at ``path`` holds ``value``, or the string at ``path`` contains it."""

    path: str
    value: Scalar

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """See :class:`Predicate`."""
        actual = resolve(event, self.path)
        if isinstance(actual, list):
            return any(_comparable(item, self.value) and item == self.value for item in actual)
        return isinstance(actual, str) and isinstance(self.value, str) and self.value in actual

    def paths(self) -> list[str]:
        """See :class:`Predicate`."""
        return [self.path]


class Exists(Predicate, frozen=True, tag="exists"):
    """The event has a value (possibly null) at ``path``."""

    path: str

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """See :class:`Predicate`."""
        return resolve(event, self.path) is not MISSING

    def paths(self) -> list[str]:
        """See :class:`Predicate`."""
        return [self.path]


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, glob: bool) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern) if glob else pattern)


class Glob(Predicate, frozen=True, tag="glob"):
    """The string at ``path`` matches a shell-style pattern (``exports/fx/*.csv``)."""

    path: str
    pattern: str

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """See :class:`Predicate`."""
        actual = resolve(event, self.path)
        return isinstance(actual, str) and _compiled(self.pattern, True).match(actual) is not None

    def paths(self) -> list[str]:
        """See :class:`Predicate`."""
        return [self.path]


class Regex(Predicate, frozen=True, tag="regex"):
    """The string at ``path`` contains a match of a regular expression (``re.search``)."""

    path: str
    pattern: str

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """See :class:`Predicate`."""
        actual = resolve(event, self.path)
        return isinstance(actual, str) and _compiled(self.pattern, False).search(actual) is not None

    def paths(self) -> list[str]:
        """See :class:`Predicate`."""
        return [self.path]


class RelatedTo(Predicate, frozen=True, tag="related"):
    """Some related resource has ``role`` (any role if ``None``) and satisfies ``where``."""

    role: str | None = None
    where: AnyPredicate | None = None

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """See :class:`Predicate`."""
        related = event.related if isinstance(event, Event) else event.get("related", [])
        for item in related:
            if self.role is not None and item.get("role") != self.role:
                continue
            if self.where is None or self.where.matches(item):
                return True
        return False

    def paths(self) -> list[str]:
        """See :class:`Predicate`."""
        return ["related"]


class AllOf(Predicate, frozen=True, tag="all"):
    """Every predicate holds."""

    items: tuple[AnyPredicate, ...]

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """See :class:`Predicate`."""
        return all(item.matches(event) for item in self.items)

    def paths(self) -> list[str]:
        """See :class:`Predicate`."""
        return [path for item in self.items for path in item.paths()]


class AnyOf(Predicate, frozen=True, tag="any"):
    """At least one predicate holds."""

    items: tuple[AnyPredicate, ...]

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """See :class:`Predicate`."""
        return any(item.matches(event) for item in self.items)

    def paths(self) -> list[str]:
        """See :class:`Predicate`."""
        return [path for item in self.items for path in item.paths()]


class Not(Predicate, frozen=True, tag="not"):
    """The predicate does not hold."""

    item: AnyPredicate

    def matches(self, event: Event | dict[str, Any]) -> bool:
        """See :class:`Predicate`."""
        return not self.item.matches(event)

    def paths(self) -> list[str]:
        """See :class:`Predicate`."""
        return self.item.paths()


AnyPredicate = Compare | OneOf | Contains | Exists | Glob | Regex | RelatedTo | AllOf | AnyOf | Not
"""The union of every concrete predicate: what a field holding a predicate decodes to."""
