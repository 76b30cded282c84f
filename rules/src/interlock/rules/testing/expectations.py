"""What a scenario expects to fire: :class:`Expected`, made by :func:`fired`, :func:`resolved`.

An expectation names the rule, the key (``""`` for a rule without ``for_each``), whether
it fired or resolved, and whether it was judged ``late`` (default: not); those are always
compared. The window, the time (``at``), and the ``expected`` and ``arrived`` counts of an
absence are compared when given. Times are written as in the rest of the scenario
(:mod:`.times`): local times of the scenario's zone, or with an offset or a zone name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["Expected", "TimeLike", "fired", "resolved"]

TimeLike = str | datetime
"""A time as a scenario takes it: ``"2026-03-27 09:00"``, an aware or local datetime."""


@dataclass(frozen=True, kw_only=True)
class Expected:
    """One firing a scenario expects."""

    rule: str
    status: Literal["fired", "resolved"] = "fired"
    key: str = ""
    window: tuple[TimeLike, TimeLike] | None = None
    """(start, deadline) of the window; compared when given."""
    at: TimeLike | None = None
    """When it fired: a missed window's deadline, the last event of a match."""
    expected: int | None = None
    """For absences: how many events were expected."""
    arrived: int | None = None
    """For absences: how many arrived."""
    late: bool = False
    """Judged later than the engine's tolerance after it was due (a backlog)."""
    line: int | None = None
    """Where it is written (a scenario file's line), for messages."""


def fired(
    rule: str,
    key: str = "",
    *,
    window: tuple[TimeLike, TimeLike] | None = None,
    at: TimeLike | None = None,
    expected: int | None = None,
    arrived: int | None = None,
    late: bool = False,
) -> Expected:
    """Expect ``rule`` to fire for ``key``."""
    return Expected(
        rule=rule, status="fired", key=key, window=window, at=at,
        expected=expected, arrived=arrived, late=late,
    )  # fmt: skip


def resolved(
    rule: str,
    key: str = "",
    *,
    window: tuple[TimeLike, TimeLike] | None = None,
    at: TimeLike | None = None,
    expected: int | None = None,
    arrived: int | None = None,
    late: bool = False,
) -> Expected:
    """Expect a miss of ``rule`` for ``key`` to resolve (the awaited event came late)."""
    return Expected(
        rule=rule, status="resolved", key=key, window=window, at=at,
        expected=expected, arrived=arrived, late=late,
    )  # fmt: skip
