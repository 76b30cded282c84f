"""What differs between the Pythons the SDK and the adapters run on (3.9 to 3.13).

The SDK and ``interlock-adapters`` install on CPython 3.9 and later (producers run inside
Airflow workers and scripts on older Pythons); the rules and the service need 3.11. Code
in those two packages follows a few conventions (``docs/python-versions.md``):

- ``from __future__ import annotations`` in every module, so annotations stay strings;
  msgspec Structs may still write ``X | None`` (``eval-type-backport`` reads it on 3.9);
- no ``X | Y`` where Python evaluates it: ``isinstance(x, (A, B))``, and module-level
  aliases with ``Optional`` / ``Union``;
- ``timezone.utc``, not ``datetime.UTC``; no ``match``, ``zip(strict=)``,
  ``dataclass(slots=, kw_only=)``, ``asyncio.timeout``, ``TaskGroup``, ``ExceptionGroup``,
  ``typing.Self`` / ``ParamSpec`` at run time (``typing`` names under ``TYPE_CHECKING``);
- entry points through :func:`entry_points` below, timestamps through
  :func:`fromisoformat` (3.9 and 3.10 read no ``Z``), ``tomllib`` with the ``tomli``
  fallback, ``asyncio.TimeoutError`` (a class of its own before 3.11) around asyncio
  waits, and asyncio primitives made inside the loop that uses them (3.9 binds them
  when they are made).

``make test-sdk-pythons`` runs the SDK's tests on the oldest and newest Python there is.
"""

from __future__ import annotations

import sys
from datetime import datetime
from importlib import metadata

import msgspec

__all__ = ["entry_points", "fromisoformat"]


def entry_points(group: str) -> list[metadata.EntryPoint]:
    """The installed entry points of ``group`` (``importlib.metadata`` differs before 3.10)."""
    if sys.version_info < (3, 10):  # pragma: no cover - Python 3.9
        return list(metadata.entry_points().get(group, ()))
    return list(metadata.entry_points(group=group))


def fromisoformat(text: str) -> datetime:
    """``datetime.fromisoformat`` as Python 3.11 reads RFC 3339 (``Z``, any fraction).

    Raises:
        ValueError: ``text`` is not an ISO 8601 / RFC 3339 date and time.
    """
    if sys.version_info < (3, 11):  # pragma: no cover - Python 3.9 and 3.10
        try:
            return datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
        except ValueError:
            try:
                parsed: datetime = msgspec.json.decode(msgspec.json.encode(text), type=datetime)
            except msgspec.ValidationError:
                raise ValueError(f"Invalid isoformat string: {text!r}") from None
            return parsed
    return datetime.fromisoformat(text)
