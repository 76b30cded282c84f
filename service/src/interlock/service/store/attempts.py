"""Each attempt of an action: when it started, how it ended, its error, how long it took.

The outbox row of an action keeps only its attempt count and last error. Every execution
that ended (a deferral, which was not attempted, excluded) leaves a row in
``action_attempts``, written by :func:`record_attempts` in the transaction of
:meth:`Outbox.finish_many <interlock.service.store.outbox.Outbox.finish_many>` that
records its outcome: an attempt is kept exactly when its outcome is. An execution whose
row another dispatcher took over meanwhile (its lease expired) is not: its outcome is
left alone, and the dispatcher holding the row keeps its own.

:class:`Attempts` reads them back, per firing (the web UI's firing page).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.service.store import tables as t
from interlock.service.store.database import Database

if TYPE_CHECKING:
    from interlock.service.store.outbox import Outcome

__all__ = ["Attempt", "AttemptOutcome", "Attempts", "record_attempts"]

AttemptOutcome = Literal["succeeded", "retry", "failed"]
"""How an attempt ended: done; failed and tried again later; failed and given up."""

_INSERT = sa.insert(t.action_attempts)


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One execution of an action."""

    action_key: uuid.UUID
    """The outbox row's idempotency key."""
    firing_id: uuid.UUID
    index: int
    """The action's position in its rule's list."""
    attempt: int
    """Its number: the row's attempts when it was claimed (1 for the first)."""
    outcome: AttemptOutcome
    error: str | None
    started_at: datetime
    duration: float | None
    """Seconds it took; ``None`` when not measured."""
    worker: str
    """The dispatcher that ran it."""


class Attempts:
    """The attempts of actions, read back."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def of_firing(self, firing_id: uuid.UUID, *, limit: int = 1000) -> list[Attempt]:
        """The attempts of a firing's actions, by action, then in the order they ran."""
        a = t.action_attempts
        query = (
            sa.select(a)
            .where(a.c.firing_id == firing_id)
            .order_by(a.c.action_index, a.c.started_at, a.c.id)
            .limit(limit)
        )
        async with self._db.transaction() as connection:
            return [_attempt(row) for row in await connection.execute(query)]


async def record_attempts(
    connection: AsyncConnection, outcomes: Sequence[Outcome], *, worker: str, now: datetime
) -> None:
    """Keep the attempt behind each outcome (deferrals skipped), in ``connection``'s transaction.

    An outcome that does not say when its execution started is taken as starting ``now``.
    """
    rows = [
        {
            "action_key": outcome.key,
            "firing_id": outcome.firing_id,
            "action_index": outcome.index,
            "attempt": outcome.attempt,
            "outcome": outcome.verdict,
            "error": outcome.error,
            "started_at": outcome.started_at or now,
            "duration": outcome.duration,
            "worker": worker,
        }
        for outcome in outcomes
        if outcome.verdict != "deferred"
    ]
    if rows:
        await connection.execute(_INSERT, rows)


def _attempt(row: sa.Row[Any]) -> Attempt:
    return Attempt(
        action_key=row.action_key,
        firing_id=row.firing_id,
        index=row.action_index,
        attempt=row.attempt,
        outcome=row.outcome,
        error=row.error,
        started_at=row.started_at,
        duration=row.duration,
        worker=row.worker,
    )
