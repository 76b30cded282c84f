"""The action outbox: actions waiting to run, handed to dispatchers one claim at a time.

A row is one action of one firing; its idempotency key (``uuid5(firing id, index)``) goes
with every execution, so an executor can tell a retry from a new request.

How a row moves:

- ``pending`` → ``running``: :meth:`~Outbox.claim`, once ``next_attempt_at`` is reached;
- ``running`` → ``succeeded`` | ``pending`` | ``failed`` | ``suspended``:
  :meth:`~Outbox.finish_many`, the one way an execution's end is recorded, with the
  :class:`Outcome` the dispatcher decided (``succeeded``, ``retry`` at a time, ``failed``,
  or ``deferred``: not attempted); a failure that opens the circuit breaker suspends;
- ``running`` → ``running``: claimed again by another dispatcher once the lease expired;
- ``pending`` → ``suspended`` → ``pending``: :meth:`~Outbox.suspend` and
  :meth:`~Outbox.resume`, all of a rule's actions (of one index) at once: the circuit
  breaker.
- an ``approve`` step: ``running`` → ``waiting`` once its request went out, the actions
  after it in its firing ``pending`` → ``held``; then approved: ``waiting`` →
  ``succeeded`` and ``held`` → ``pending``; rejected or expired: all → ``cancelled``
  (:class:`~interlock.service.store.approvals.Approvals`).

Two gates keep rows out of :meth:`~Outbox.claim` even when due:

- an action after an ``approve`` step of its firing that has not ``succeeded`` (been
  approved) waits, whatever its state says, so nothing runs between a firing being
  stored and its approval request going out;
- an action whose circuit breaker is open (``action_breakers.suspended``) waits; the
  dispatcher's housekeeping (:meth:`~Outbox.sweep_suspended`) then marks it
  ``suspended``, so new firings of a suspended action queue as suspended.

The circuit breaker (:meth:`~Outbox.finish_many`): ``action_breakers`` counts, per rule
and action index, the **failed attempts in a row** across firings (retryable or not;
any success resets it). "In a row" is the order in which executions ended, as the
dispatcher hands them over: a batch where an action failed, then succeeded, then failed
twice leaves its count at 2 — the failures before its last success in the batch do not
count, since that success shows the action works. When the count reaches the threshold,
the breaker opens in the same transaction: the failing row and every pending row of that
action become ``suspended``. :meth:`~Outbox.resume` closes it (count 0) and makes them
pending again.

What reaches the breaker is decided by the dispatcher: an execution that never ran (its
destination had no free slot) or that a busy destination turned away is *deferred*
(:meth:`Outcome.deferred`): the row goes back to ``pending`` until ``retry_at`` with its
attempt uncounted, and the breaker is not touched (see
:mod:`interlock.service.actions.pacing`).

:meth:`Outbox.claim` picks due rows and marks them ``running`` for one dispatcher
(``claimed_by``) until a lease ends (``claimed_until``); a dispatcher that dies leaves
rows whose lease expires, and the next claim takes them again (``attempts`` counts every
claim). On PostgreSQL the claim locks the rows it picks with ``FOR UPDATE SKIP LOCKED``,
so concurrent dispatchers each get different rows and never wait for each other. On
SQLite the claim is one statement in a ``BEGIN IMMEDIATE`` transaction: SQLite has one
writer at a time, so concurrent claims run one after the other and never overlap.

A dispatcher in the process that stores firings may also lend the pipeline a
:class:`Reservation` of its free slots: :meth:`~interlock.service.store.Store.store_batch`
then claims due rows for it in the batch's own transaction (:func:`claim_in`), so a
firing at a trickle costs one transaction instead of a store and a claim.

Finishing rows names the dispatcher: a row whose lease expired and that another
dispatcher claimed since is left alone (missing from :attr:`FinishReport.applied`). Every
statement that ends or drops a claim writes the same columns,
:func:`~interlock.service.store.tables.released`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.service.store import hot_statements as hot
from interlock.service.store import sqlite_batch
from interlock.service.store import tables as t
from interlock.service.store.attempts import record_attempts
from interlock.service.store.database import Database
from interlock.service.store.errors import NotFound
from interlock.service.store.records import ActionBreaker, ActionState, OutboxAction
from interlock.service.store.sqlite_inline import InlineConnection

__all__ = ["FinishReport", "Outbox", "Outcome", "Reservation", "Verdict", "claim_in"]

DEFAULT_LEASE = timedelta(minutes=5)
_BREAKER_CHUNK = 400
"""Actions per breaker reset statement (two bound parameters each)."""


class Reservation(msgspec.Struct, kw_only=True):
    """Free slots of a dispatcher, lent to another transaction to claim due rows into.

    The store fills :attr:`claimed` once that transaction committed (never with rows of
    a transaction rolled back); the dispatcher then runs them.
    """

    worker: str
    """The dispatcher's name (``claimed_by``)."""
    limit: int
    """Most rows to claim."""
    lease: timedelta
    """How long the claim holds."""
    claimed: list[OutboxAction] = msgspec.field(default_factory=list)
    """The rows claimed, after the transaction committed."""


async def claim_in(
    connection: AsyncConnection, *, now: datetime, worker: str, limit: int, lease: timedelta
) -> list[OutboxAction]:
    """Claim up to ``limit`` due rows for ``worker`` in ``connection``'s transaction.

    Oldest due first (see :meth:`Outbox.claim`, which expires leases first).
    """
    if isinstance(cast(object, connection), InlineConnection):  # SQLite: its own SQL
        inline = cast(InlineConnection, connection)
        actions = sqlite_batch.claim_due(
            sqlite_batch.driver_connection(inline),
            now=now,
            limit=limit,
            worker=worker,
            until=now + lease,
        )
    else:
        claim = {"now": now, "limit": limit, "worker": worker, "until": now + lease}
        rows = (await connection.execute(hot.claim_due(), claim)).all()
        actions = [_action(row) for row in rows]
    return sorted(actions, key=lambda a: (a.next_attempt_at, a.firing_id, a.index))


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
        # Expired leases first go back to pending (their next_attempt_at is old, so
        # they come first): the claim then reads one index in its own order and stops
        # at the limit, where an OR of both kinds of row sorted every due row.
        async with self._db.transaction() as connection:
            await connection.execute(hot.expire_leases(), {"now": now})
            return await claim_in(connection, now=now, worker=worker, limit=limit, lease=lease)

    async def suspend(self, rule: str, index: int | None = None, *, reason: str) -> int:
        """Suspend the rule's pending actions (of one index, or all); return how many."""
        return await self._move(rule, index, "pending", "suspended", last_error=reason)

    async def resume(self, rule: str, index: int | None = None) -> int:
        """Make the rule's suspended actions pending again, with fresh attempts.

        Closes their circuit breakers too (failures in a row back to 0), in the same
        transaction.
        """
        now = self._db.now()
        b = t.action_breakers
        close = (
            sa.update(b)
            .where(b.c.rule == rule)
            .values(failures=0, suspended=False, suspended_at=None, updated_at=now)
        )
        if index is not None:
            close = close.where(b.c.action_index == index)
        async with self._db.transaction() as connection:
            await connection.execute(close)
            return await self._move_in(connection, rule, index, "suspended", "pending", attempts=0)

    async def sweep_suspended(self) -> int:
        """Mark pending actions whose circuit breaker is open ``suspended``; return how many.

        The claim never takes them; this makes their state say so (new firings of a
        suspended action).
        """
        now = self._db.now()
        o, b = t.outbox, t.action_breakers
        open_breaker = sa.exists().where(
            b.c.rule == o.c.rule, b.c.action_index == o.c.action_index, b.c.suspended
        )
        update = (
            sa.update(o)
            .where(o.c.state == "pending", open_breaker)
            .values(
                state="suspended",
                last_error="suspended by the circuit breaker",
                updated_at=now,
            )
        )
        async with self._db.transaction() as connection:
            return (await connection.execute(update)).rowcount

    async def breakers(self, *, suspended: bool | None = None) -> list[ActionBreaker]:
        """Circuit breakers with a failure count or open, by rule and index."""
        b = t.action_breakers
        query = sa.select(b).order_by(b.c.rule, b.c.action_index)
        if suspended is not None:
            query = query.where(b.c.suspended == suspended)
        async with self._db.transaction() as connection:
            return [_breaker(row) for row in await connection.execute(query)]

    async def finish_many(
        self, outcomes: Sequence[Outcome], *, worker: str, suspend_after: int
    ) -> FinishReport:
        """Record the outcomes of executions by ``worker`` in one transaction.

        The one way the end of an execution is recorded. ``outcomes`` are in the order
        the executions ended. ``succeeded`` rows become ``succeeded`` and reset their
        breakers. A failure (``retry`` or ``failed``) counts on its breaker unless the
        same action succeeded later in ``outcomes``; if the count reaches
        ``suspend_after`` (or the breaker is open already), the row and the action's
        pending rows become ``suspended``; otherwise a ``retry`` goes back to
        ``pending`` until ``retry_at``, and a ``failed`` one is ``failed``. A final
        failure of an ``approve`` step cancels the actions after it. A ``deferred``
        outcome puts its row back to ``pending`` until ``retry_at``, its attempt
        uncounted, its breaker untouched. Every applied outcome but a deferral is kept as
        an attempt (:mod:`~interlock.service.store.attempts`), in the same transaction.

        Rows ``worker`` no longer holds (its lease expired and another claimed them)
        are left alone and missing from :attr:`FinishReport.applied`.
        """
        now = self._db.now()
        report = FinishReport()
        successes = [x for x in outcomes if x.verdict == "succeeded"]
        last_success = {
            (x.rule, x.index): n for n, x in enumerate(outcomes) if x.verdict == "succeeded"
        }
        async with self._db.transaction() as connection:
            if successes:
                held = {"keys": [x.key for x in successes], "worker": worker, "now": now}
                result = await connection.execute(hot.succeed_held(), held)
                report.applied.update(result.scalars())
                await self._reset_breakers(connection, set(last_success))
            for n, outcome in enumerate(outcomes):
                if outcome.verdict == "deferred":
                    await self._defer_one(connection, outcome, worker, report)
                elif outcome.verdict != "succeeded":
                    counts = n > last_success.get((outcome.rule, outcome.index), -1)
                    await self._fail_one(
                        connection, outcome, worker, suspend_after, report, counts=counts
                    )
            kept = [outcome for outcome in outcomes if outcome.key in report.applied]
            await record_attempts(connection, kept, worker=worker, now=now)
        return report

    async def _defer_one(
        self, connection: AsyncConnection, outcome: Outcome, worker: str, report: FinishReport
    ) -> None:
        """Back to ``pending`` until ``retry_at``, as if it had not been claimed."""
        o = t.outbox
        now = self._db.now()
        values: dict[str, Any] = {
            "state": "pending",
            "next_attempt_at": outcome.retry_at or now,
            "attempts": sa.case((o.c.attempts > 0, o.c.attempts - 1), else_=0),
            **t.released(now),
        }
        if outcome.error is not None:
            values["last_error"] = outcome.error
        update = sa.update(o).where(
            o.c.idempotency_key == outcome.key, o.c.state == "running", o.c.claimed_by == worker
        )
        if (await connection.execute(update.values(**values))).rowcount == 1:
            report.applied.add(outcome.key)

    async def _reset_breakers(
        self, connection: AsyncConnection, actions: set[tuple[str, int]]
    ) -> None:
        """Close the count of failures in a row of each action that just succeeded.

        One statement per chunk of actions: a batch of successes touches hundreds of
        rules' breakers, of which almost none has failures to reset.
        """
        now = self._db.now()
        ordered = sorted(actions)
        for start in range(0, len(ordered), _BREAKER_CHUNK):
            chunk = ordered[start : start + _BREAKER_CHUNK]
            await connection.execute(hot.reset_breakers(), {"actions": chunk, "now": now})

    async def _fail_one(
        self,
        connection: AsyncConnection,
        outcome: Outcome,
        worker: str,
        suspend_after: int,
        report: FinishReport,
        *,
        counts: bool,
    ) -> None:
        """Record one failure; ``counts``: on its breaker (no later success in the batch)."""
        now = self._db.now()
        o, b = t.outbox, t.action_breakers
        error = outcome.error or ""
        failures, suspended = await self._count_failure(connection, outcome, error, counts)
        trip = not suspended and failures >= suspend_after
        if trip:
            await connection.execute(
                sa.update(b)
                .where(b.c.rule == outcome.rule, b.c.action_index == outcome.index)
                .values(suspended=True, suspended_at=now)
            )
        values: dict[str, Any] = {"last_error": error, **t.released(now)}
        if suspended or trip:
            values["state"] = "suspended"
        elif outcome.verdict == "retry":
            values |= {"state": "pending", "next_attempt_at": outcome.retry_at}
        else:
            values["state"] = "failed"
        update = sa.update(o).where(
            o.c.idempotency_key == outcome.key, o.c.state == "running", o.c.claimed_by == worker
        )
        if (await connection.execute(update.values(**values))).rowcount == 1:
            report.applied.add(outcome.key)
            if values["state"] == "suspended":
                report.suspended.add(outcome.key)
        if trip:
            reason = f"suspended after {failures} failed attempts in a row; last: {error}"
            await self._move_in(
                connection, outcome.rule, outcome.index, "pending", "suspended", last_error=reason
            )
            row = (
                await connection.execute(
                    sa.select(b).where(b.c.rule == outcome.rule, b.c.action_index == outcome.index)
                )
            ).one()
            report.tripped.append(_breaker(row))
        if values["state"] == "failed" and outcome.kind == "approve":
            await cancel_after(
                connection,
                outcome.firing_id,
                outcome.index,
                f"cancelled: the approval request could not be sent ({error})",
                now,
            )

    async def _count_failure(
        self, connection: AsyncConnection, outcome: Outcome, error: str, counts: bool
    ) -> tuple[int, bool]:
        """Add the failure to its breaker (or only note its error); (failures, open)."""
        now = self._db.now()
        b = t.action_breakers
        added = 1 if counts else 0
        count = (
            self._db.insert(b)
            .values(
                rule=outcome.rule,
                action_index=outcome.index,
                failures=added,
                suspended=False,
                suspended_at=None,
                last_error=error,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=["rule", "action_index"],
                set_={"failures": b.c.failures + added, "last_error": error, "updated_at": now},
            )
            .returning(b.c.failures, b.c.suspended)
        )
        failures, suspended = (await connection.execute(count)).one()
        return int(failures), bool(suspended)

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

    async def _move(
        self, rule: str, index: int | None, source: str, target: str, **values: Any
    ) -> int:
        async with self._db.transaction() as connection:
            return await self._move_in(connection, rule, index, source, target, **values)

    async def _move_in(
        self,
        connection: AsyncConnection,
        rule: str,
        index: int | None,
        source: str,
        target: str,
        **values: Any,
    ) -> int:
        now = self._db.now()
        o = t.outbox
        update = sa.update(o).where(o.c.rule == rule, o.c.state == source)
        if index is not None:
            update = update.where(o.c.action_index == index)
        if target == "pending":
            values["next_attempt_at"] = now
        update = update.values(state=target, updated_at=now, **values)
        return (await connection.execute(update)).rowcount


Verdict = Literal["succeeded", "retry", "failed", "deferred"]
"""How an execution ended, as the dispatcher decided it:

- ``succeeded``: done;
- ``retry``: a failed attempt, tried again at ``retry_at``;
- ``failed``: a failed attempt, given up (not retryable, or its last attempt);
- ``deferred``: not attempted (or turned away by a busy destination): back to
  ``pending`` until ``retry_at``, its attempt uncounted, its breaker untouched.

``retry`` and ``failed`` count on the action's circuit breaker, which may suspend it.
"""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """How one execution of an outbox row ended, for :meth:`Outbox.finish_many`.

    Made with :meth:`succeeded`, :meth:`retry`, :meth:`failed` or :meth:`deferred`.
    """

    key: uuid.UUID
    firing_id: uuid.UUID
    rule: str
    index: int
    kind: str
    verdict: Verdict
    error: str | None = None
    """Why it failed; for a deferral, a note (its ``last_error``) or ``None``."""
    retry_at: datetime | None = None
    """For ``retry``: when to try again; for ``deferred``: when it may run."""
    attempt: int = 0
    """The row's attempts when it was claimed: this execution's number."""
    started_at: datetime | None = None
    """When the execution started (``None``: not said; kept as the time it was recorded)."""
    duration: float | None = None
    """Seconds the execution took, if measured."""

    @classmethod
    def succeeded(cls, row: OutboxAction) -> Outcome:
        """``row``'s execution did what it should."""
        return cls._of(row, "succeeded")

    @classmethod
    def retry(cls, row: OutboxAction, error: str, *, at: datetime) -> Outcome:
        """``row``'s attempt failed with ``error``; try again at ``at``."""
        return cls._of(row, "retry", error, at)

    @classmethod
    def failed(cls, row: OutboxAction, error: str) -> Outcome:
        """``row``'s attempt failed with ``error``; give the action up."""
        return cls._of(row, "failed", error)

    @classmethod
    def deferred(cls, row: OutboxAction, *, at: datetime, note: str | None = None) -> Outcome:
        """``row`` was not attempted: back to ``pending`` until ``at``, uncounted."""
        return cls._of(row, "deferred", note, at)

    @classmethod
    def _of(
        cls,
        row: OutboxAction,
        verdict: Verdict,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> Outcome:
        return cls(
            key=row.idempotency_key,
            firing_id=row.firing_id,
            rule=row.rule,
            index=row.index,
            kind=row.kind,
            verdict=verdict,
            error=error,
            retry_at=retry_at,
            attempt=row.attempts,
        )


class FinishReport(msgspec.Struct, kw_only=True):
    """What :meth:`Outbox.finish_many` changed."""

    applied: set[uuid.UUID] = msgspec.field(default_factory=set)
    """Rows updated (the worker still held them)."""
    suspended: set[uuid.UUID] = msgspec.field(default_factory=set)
    """Rows of the outcomes that became ``suspended`` (breaker open)."""
    tripped: list[ActionBreaker] = msgspec.field(default_factory=list)
    """Breakers opened by these outcomes."""


async def cancel_after(
    connection: AsyncConnection, firing_id: uuid.UUID, index: int, reason: str, now: datetime
) -> int:
    """Cancel the actions of ``firing_id`` after position ``index`` that have not run."""
    o = t.outbox
    update = (
        sa.update(o)
        .where(
            o.c.firing_id == firing_id,
            o.c.action_index > index,
            o.c.state.in_(("pending", "held", "suspended")),
        )
        .values(state="cancelled", last_error=reason, **t.released(now))
    )
    return (await connection.execute(update)).rowcount


def _breaker(row: sa.Row[Any]) -> ActionBreaker:
    return ActionBreaker(
        rule=row.rule,
        index=row.action_index,
        failures=row.failures,
        suspended=row.suspended,
        suspended_at=row.suspended_at,
        last_error=row.last_error,
        updated_at=row.updated_at,
    )


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
