"""Field references for writing predicates as expressions: ``resource.id == "x"``.

``resource``, ``payload``, ``related``, ``event`` and ``source`` stand for parts of an
event; attribute access goes deeper (``payload.stats.rows``; use ``payload["key"]`` for
keys that are not identifiers or clash with a method name). Comparisons and the methods
below build :mod:`~interlock.rules.predicates` objects; combine them with ``&``, ``|``
and ``~``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from interlock.rules.predicates import (
    AllOf,
    Compare,
    Contains,
    Exists,
    Glob,
    OneOf,
    Predicate,
    Regex,
    RelatedTo,
    Scalar,
)

__all__ = ["Field", "Related", "event", "payload", "related", "resource", "source"]


def _scalar(value: Any, path: str) -> Scalar:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(
        f"{path}: compare with a string, number, boolean or None, not {type(value).__name__}"
    )


class Field:
    """A path into an event; operators and methods make predicates on it."""

    __slots__ = ("_path",)
    __hash__ = None  # type: ignore[assignment]  # == builds a predicate, so no hashing

    def __init__(self, path: str) -> None:
        self._path = path

    @property
    def path(self) -> str:
        """The dotted path, e.g. ``payload.stats.rows``."""
        return self._path

    def __getattr__(self, name: str) -> Field:
        if name.startswith("__"):
            raise AttributeError(name)
        return Field(f"{self._path}.{name}")

    def __getitem__(self, name: str | int) -> Field:
        return Field(f"{self._path}.{name}")

    def __repr__(self) -> str:
        return f"Field({self._path!r})"

    def __iter__(self) -> Any:
        # Without this, Python iterates a Field through __getitem__(0), (1), ... forever.
        raise TypeError(
            f"the field {self._path} is not a list: write the path as a string "
            f"({self._path!r}) where a list of paths or names is expected"
        )

    def __bool__(self) -> bool:
        raise TypeError(
            f"the field {self._path} has no truth value: write a condition such as "
            f"{self._path} == 'x' or {self._path}.exists()"
        )

    def __eq__(self, value: object) -> Predicate:  # type: ignore[override]
        return Compare(path=self._path, op="==", value=_scalar(value, self._path))

    def __ne__(self, value: object) -> Predicate:  # type: ignore[override]
        return Compare(path=self._path, op="!=", value=_scalar(value, self._path))

    def __lt__(self, value: object) -> Predicate:
        return Compare(path=self._path, op="<", value=_scalar(value, self._path))

    def __le__(self, value: object) -> Predicate:
        return Compare(path=self._path, op="<=", value=_scalar(value, self._path))

    def __gt__(self, value: object) -> Predicate:
        return Compare(path=self._path, op=">", value=_scalar(value, self._path))

    def __ge__(self, value: object) -> Predicate:
        return Compare(path=self._path, op=">=", value=_scalar(value, self._path))

    def one_of(self, values: Iterable[Any]) -> Predicate:
        """The value equals one of ``values``."""
        return OneOf(path=self._path, values=tuple(_scalar(v, self._path) for v in values))

    def contains(self, value: Any) -> Predicate:
        """A list holding ``value``, or a string containing it."""
        return Contains(path=self._path, value=_scalar(value, self._path))

    def exists(self) -> Predicate:
        """The event has this field."""
        return Exists(path=self._path)

    def glob(self, pattern: str) -> Predicate:
        """The string matches a shell pattern (``*``, ``?``, ``[...]`` anywhere)."""
        return Glob(path=self._path, pattern=pattern)

    def startswith(self, prefix: str) -> Predicate:
        """The string starts with ``prefix`` (taken literally)."""
        escaped = "".join(f"[{ch}]" if ch in "*?[" else ch for ch in prefix)
        return Glob(path=self._path, pattern=escaped + "*")

    def matches(self, pattern: str) -> Predicate:
        """The string contains a match of the regular expression (anchor with ^ $)."""
        return Regex(path=self._path, pattern=pattern)


class Related:
    """The event's related resources: ``related(role="tag", id="finance")``."""

    def __call__(
        self, role: str | None = None, where: Predicate | None = None, **labels: str
    ) -> Predicate:
        """Some related resource has ``role``, these labels (``id=...``) and ``where``."""
        tests: list[Predicate] = [
            Compare(path=key, op="==", value=value) for key, value in labels.items()
        ]
        if where is not None:
            tests.append(where)
        condition: Predicate | None = None
        if len(tests) == 1:
            condition = tests[0]
        elif tests:
            condition = AllOf(items=tuple(tests))  # type: ignore[arg-type]
        return RelatedTo(role=role, where=condition)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Field:
        # Inside related(where=...), paths are relative to the related resource.
        if name.startswith("__"):
            raise AttributeError(name)
        return Field(name)


resource = Field("resource")
payload = Field("payload")
event = Field("event")
source = Field("source")
related = Related()
