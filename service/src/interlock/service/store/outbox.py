"""The action outbox: actions waiting to run, handed to dispatchers one claim at a time.

A row is one action of one firing; its idempotency key (``uuid5(firing id, index)``) goes
with every execution, so an executor can tell a retry from a new request.

How a row moves:

- ``pending`` → ``running``: :meth:`~Outbox.claim`, once ``next_attempt_at`` is reached;
- ``running`` → ``succeeded`` | ``failed`` | ``suspended``: :meth:`~Outbox.succeed`,
  :meth:`~Outbox.fail`, ``fail(suspend=True)``;
- ``running`` → ``pending``: :meth:`~Outbox.retry`, with the time of the next attempt;
- ``running`` → ``running``: claimed again by another dispatcher once the lease expired;
- ``pending`` → ``suspended`` → ``pending``: :meth:`~Outbox.suspend` and
  :meth:`~Outbox.resume`, all of a rule's actions (of one index) at once: the circuit
  breaker.

:meth:`Outbox.claim` picks due rows and marks them ``running`` for one dispatcher
(``claimed_by``) until a lease ends (``claimed_until``); a dispatcher that dies leaves
rows whose lease expires, and the next claim takes them again (``attempts`` counts every
claim). On PostgreSQL the claim locks the rows it picks with ``FOR UPDATE SKIP LOCKED``,
so concurrent dispatchers each get different rows and never wait for each other. On
SQLite the claim is one statement in a ``BEGIN IMMEDIATE`` transaction: SQLite has one
writer at a time, so concurrent claims run one after the other and never overlap.

Finishing a row (:meth:`succeed`, :meth:`retry`, :meth:`fail`) names the dispatcher: if
its lease expired and another dispatcher claimed the row since, the call changes nothing
and returns ``False``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.errors import NotFound
from interlock.service.store.records import ActionState, OutboxAction

__all__ = ["Outbox"]

DEFAULT_LEASE = timedelta(minutes=5)


class Outbox:
    """Queued actions and their dispatch."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def claim(
        self, *, worker: str, limit: int = 100, lease: timedelta = DEFAULT_LEASE
    ) -> list[OutboxAction]:
        """Claim up to ``limit`` due actions for ``worker``, oldest due first.

        Due: ``pending`` with ``next_attempt_at`` reached, or ``running`` with an expired
        lease. Claimed rows are ``running``, ``claimed_by=worker``, ``attempts`` + 1.
        """
        now = self._db.now()
        o = t.outbox
        due = sa.or_(
            sa.and_(o.c.state == "pending", o.c.next_attempt_at <= now),
            sa.and_(o.c.state == "running", o.c.claimed_until < now),
        )
        chosen = (
            sa.select(o.c.idempotency_key)
            .where(due)
            .order_by(o.c.next_attempt_at, o.c.firing_id, o.c.action_index)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("chosen")
        )
        claim = (
            sa.update(o)
            .where(o.c.idempotency_key.in_(sa.select(chosen.c.idempotency_key)))
            .values(
                state="running",
                attempts=o.c.attempts + 1,
                claimed_by=worker,
                claimed_until=now + lease,
                updated_at=now,
            )
            .returning(*o.c)
        )
        async with self._db.transaction() as connection:
            rows = (await connection.execute(claim)).all()
        actions = [_action(row) for row in rows]
        return sorted(actions, key=lambda a: (a.next_attempt_at, a.firing_id, a.index))

    async def succeed(self, key: uuid.UUID, *, worker: str) -> bool:
        """Mark the action done; ``False`` if ``worker`` no longer holds it."""
        return await self._finish(key, worker, state="succeeded", last_error=None)

    async def retry(self, key: uuid.UUID, *, worker: str, error: str, at: datetime) -> bool:
        """Put the action back to ``pending`` until ``at``; ``False`` if not held."""
        return await self._finish(key, worker, state="pending", last_error=error, at=at)

    async def fail(self, key: uuid.UUID, *, worker: str, error: str, suspend: bool = False) -> bool:
        """Give the action up (``failed``), or ``suspended`` it to be resumed later."""
        state: ActionState = "suspended" if suspend else "failed"
        return await self._finish(key, worker, state=state, last_error=error)

    async def suspend(self, rule: str, index: int | None = None, *, reason: str) -> int:
        """Suspend the rule's pending actions (of one index, or all); return how many."""
        return await self._move(rule, index, "pending", "suspended", last_error=reason)

    async def resume(self, rule: str, index: int | None = None) -> int:
        """Make the rule's suspended actions pending again, with fresh attempts."""
        return await self._move(rule, index, "suspended", "pending", attempts=0)

    async def get(self, key: uuid.UUID) -> OutboxAction:
        """The action with this idempotency key.

        Raises:
            NotFound: there is none.
        """
        query = sa.select(t.outbox).where(t.outbox.c.idempotency_key == key)
        async with self._db.transaction() as connection:
            row = (await connection.execute(query)).one_or_none()
        if row is None:
            raise NotFound("action", key)
        return _action(row)

    async def list(
        self,
        *,
        state: ActionState | None = None,
        rule: str | None = None,
        firing_id: uuid.UUID | None = None,
        limit: int = 100,
    ) -> list[OutboxAction]:
        """Actions, oldest first, filtered by state, rule or firing."""
        o = t.outbox
        query = sa.select(o).order_by(o.c.created_at, o.c.firing_id, o.c.action_index)
        if state is not None:
            query = query.where(o.c.state == state)
        if rule is not None:
            query = query.where(o.c.rule == rule)
        if firing_id is not None:
            query = query.where(o.c.firing_id == firing_id)
        async with self._db.transaction() as connection:
            return [_action(row) for row in await connection.execute(query.limit(limit))]

    async def _finish(
        self,
        key: uuid.UUID,
        worker: str,
        *,
        state: ActionState,
        last_error: str | None,
        at: datetime | None = None,
    ) -> bool:
        now = self._db.now()
        o = t.outbox
        values: dict[str, Any] = {
            "state": state,
            "last_error": last_error,
            "claimed_by": None,
            "claimed_until": None,
            "updated_at": now,
        }
        if at is not None:
            values["next_attempt_at"] = at
        update = (
            sa.update(o)
            .where(o.c.idempotency_key == key, o.c.state == "running", o.c.claimed_by == worker)
            .values(**values)
        )
        async with self._db.transaction() as connection:
            return (await connection.execute(update)).rowcount == 1

    async def _move(
        self, rule: str, index: int | None, source: str, target: str, **values: Any
    ) -> int:
        now = self._db.now()
        o = t.outbox
        update = sa.update(o).where(o.c.rule == rule, o.c.state == source)
        if index is not None:
            update = update.where(o.c.action_index == index)
        if target == "pending":
            values["next_attempt_at"] = now
        update = update.values(state=target, updated_at=now, **values)
        async with self._db.transaction() as connection:
            return (await connection.execute(update)).rowcount


def _action(row: sa.Row[Any]) -> OutboxAction:
    return OutboxAction(
        idempotency_key=row.idempotency_key,
        firing_id=row.firing_id,
        index=row.action_index,
        rule=row.rule,
        kind=row.kind,
        action=row.action,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        claimed_by=row.claimed_by,
        claimed_until=row.claimed_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
