"""Approvals: the decisions that ``approve`` steps wait for, and their effect on the outbox.

An ``approve`` action of a firing asks a person; the actions after it in the firing's
list wait. The approval's ``id`` is the ``approve`` row's idempotency key, so a retried
request finds the approval (and token) it created before. Deciding writes the decision
and moves the outbox rows in one transaction:

- approved (or expired with ``on_timeout="approve"``): the ``approve`` row becomes
  ``succeeded``, the actions after it ``pending`` (the claim's approval gate opens);
- rejected (or expired with ``on_timeout="reject"``): the ``approve`` row and the
  actions after it become ``cancelled``, with the reason.

A decision is taken once: deciding a decided approval raises :class:`ApprovalClosed`.
Timeouts are rows here (``expires_at``), so a restart loses none: whoever polls
:meth:`Approvals.due` expires them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.errors import NotFound, StoreError
from interlock.service.store.outbox import cancel_after
from interlock.service.store.records import Approval, ApprovalDecision, OutboxAction

__all__ = ["ApprovalClosed", "Approvals"]


class ApprovalClosed(StoreError, ValueError):
    """The approval was decided already; a decision is taken once.

    Attributes:
        approval: The approval as decided.
    """

    def __init__(self, approval: Approval) -> None:
        self.approval = approval
        super().__init__(
            f"the approval of rule {approval.rule!r} (firing {approval.firing_id}, action "
            f"{approval.index}) was {approval.decision} by {approval.decided_by} at "
            f"{approval.decided_at:%Y-%m-%d %H:%M:%S} UTC already"
            if approval.decided_at is not None
            else f"the approval {approval.id} was decided already"
        )


class Approvals:
    """Requested approvals and their decisions."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def request(
        self,
        action: OutboxAction,
        *,
        token: str,
        title: str,
        expires_at: datetime | None,
        on_timeout: Literal["reject", "approve"],
    ) -> Approval:
        """Record the approval the ``approve`` row ``action`` asks for; return it.

        If it was recorded before (a retry), the stored one is returned unchanged.
        """
        now = self._db.now()
        insert = (
            self._db.insert(t.approvals)
            .values(
                id=action.idempotency_key,
                firing_id=action.firing_id,
                rule=action.rule,
                action_index=action.index,
                token=token,
                title=title,
                requested_at=now,
                expires_at=expires_at,
                on_timeout=on_timeout,
                decision=None,
                decided_by=None,
                decided_at=None,
                reason="",
            )
            .on_conflict_do_nothing()
        )
        async with self._db.transaction() as connection:
            await connection.execute(insert)
            return await self._get(connection, t.approvals.c.id == action.idempotency_key)

    async def hold(self, approval_id: uuid.UUID, *, worker: str) -> Approval:
        """The request went out: the ``approve`` row waits, the actions after it are held.

        If the approval was decided meanwhile (a fast click), its decision is applied
        instead. Returns the approval.
        """
        now = self._db.now()
        o = t.outbox
        async with self._db.transaction() as connection:
            approval = await self._get(connection, t.approvals.c.id == approval_id)
            if approval.decision is not None:
                await _apply(connection, approval, now)
                return approval
            await connection.execute(
                sa.update(o)
                .where(
                    o.c.idempotency_key == approval_id,
                    o.c.state == "running",
                    o.c.claimed_by == worker,
                )
                .values(
                    state="waiting",
                    last_error=None,
                    claimed_by=None,
                    claimed_until=None,
                    updated_at=now,
                )
            )
            await connection.execute(
                sa.update(o)
                .where(
                    o.c.firing_id == approval.firing_id,
                    o.c.action_index > approval.index,
                    o.c.state == "pending",
                )
                .values(state="held", updated_at=now)
            )
            return approval

    async def decide(
        self,
        *,
        decision: ApprovalDecision,
        by: str,
        reason: str = "",
        id: uuid.UUID | None = None,
        token: str | None = None,
        firing_id: uuid.UUID | None = None,
    ) -> Approval:
        """Decide the approval named by ``id``, ``token`` or ``firing_id`` (exactly one).

        With ``firing_id``, the firing's first undecided approval is decided.

        Raises:
            NotFound: no such approval (or the firing has no undecided one).
            ApprovalClosed: it was decided already.
            ValueError: not exactly one of ``id``, ``token``, ``firing_id``.
        """
        if sum(x is not None for x in (id, token, firing_id)) != 1:
            raise ValueError("name the approval by exactly one of id, token or firing_id")
        a = t.approvals
        if id is not None:
            where, label = a.c.id == id, str(id)
        elif token is not None:
            where, label = a.c.token == token, "with this token"
        else:
            where = sa.and_(a.c.firing_id == firing_id, a.c.decision.is_(None))
            label = f"pending for firing {firing_id}"
        now = self._db.now()
        async with self._db.transaction() as connection:
            query = sa.select(a).where(where).order_by(a.c.action_index).limit(1)
            if self._db.dialect == "postgresql":
                query = query.with_for_update()
            row = (await connection.execute(query)).one_or_none()
            if row is None:
                raise NotFound("approval", label)
            current = _approval(row)
            if current.decision is not None:
                raise ApprovalClosed(current)
            values = {
                "decision": decision,
                "decided_by": by,
                "decided_at": now,
                "reason": reason,
            }
            update = sa.update(a).where(a.c.id == current.id, a.c.decision.is_(None))
            if (await connection.execute(update.values(**values))).rowcount != 1:
                raise ApprovalClosed(await self._get(connection, a.c.id == current.id))
            approval = await self._get(connection, a.c.id == current.id)
            await _apply(connection, approval, now)
        return approval

    async def due(self, *, limit: int = 100) -> list[Approval]:
        """Undecided approvals whose timeout has passed, oldest deadline first."""
        a = t.approvals
        now = self._db.now()
        query = (
            sa.select(a)
            .where(a.c.decision.is_(None), a.c.expires_at <= now)
            .order_by(a.c.expires_at)
            .limit(limit)
        )
        async with self._db.transaction() as connection:
            return [_approval(row) for row in await connection.execute(query)]

    async def get(self, approval_id: uuid.UUID) -> Approval:
        """The approval with this id.

        Raises:
            NotFound: there is none.
        """
        async with self._db.transaction() as connection:
            return await self._get(connection, t.approvals.c.id == approval_id)

    async def by_token(self, token: str) -> Approval:
        """The approval whose links carry ``token``.

        Raises:
            NotFound: there is none.
        """
        async with self._db.transaction() as connection:
            return await self._get(connection, t.approvals.c.token == token)

    async def list(
        self,
        *,
        pending: bool = True,
        rule: str | None = None,
        firing_id: uuid.UUID | None = None,
        limit: int = 100,
    ) -> list[Approval]:
        """Approvals, oldest request first: undecided ones only unless ``pending=False``."""
        a = t.approvals
        query = sa.select(a).order_by(a.c.requested_at, a.c.id).limit(limit)
        if pending:
            query = query.where(a.c.decision.is_(None))
        if rule is not None:
            query = query.where(a.c.rule == rule)
        if firing_id is not None:
            query = query.where(a.c.firing_id == firing_id)
        async with self._db.transaction() as connection:
            return [_approval(row) for row in await connection.execute(query)]

    async def _get(self, connection: AsyncConnection, where: Any) -> Approval:
        row = (await connection.execute(sa.select(t.approvals).where(where))).one_or_none()
        if row is None:
            raise NotFound("approval", "requested")
        return _approval(row)


async def _apply(connection: AsyncConnection, approval: Approval, now: datetime) -> None:
    o = t.outbox
    step = o.c.idempotency_key == approval.id
    unfinished = o.c.state.in_(("pending", "running", "waiting", "held", "suspended"))
    released = {"claimed_by": None, "claimed_until": None, "updated_at": now}
    if approval.approved:
        await connection.execute(
            sa.update(o)
            .where(step, unfinished)
            .values(state="succeeded", last_error=None, **released)
        )
        await connection.execute(
            sa.update(o)
            .where(
                o.c.firing_id == approval.firing_id,
                o.c.action_index > approval.index,
                o.c.state == "held",
            )
            .values(state="pending", next_attempt_at=now, updated_at=now)
        )
        return
    why = (
        f"rejected by {approval.decided_by}"
        if approval.decision == "rejected"
        else "the approval expired"
    )
    if approval.reason:
        why += f": {approval.reason}"
    await connection.execute(
        sa.update(o).where(step, unfinished).values(state="cancelled", last_error=why, **released)
    )
    await cancel_after(connection, approval.firing_id, approval.index, f"cancelled: {why}", now)


def _approval(row: sa.Row[Any]) -> Approval:
    return Approval(
        id=row.id,
        firing_id=row.firing_id,
        rule=row.rule,
        index=row.action_index,
        token=row.token,
        title=row.title,
        requested_at=row.requested_at,
        expires_at=row.expires_at,
        on_timeout=row.on_timeout,
        decision=row.decision,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        reason=row.reason,
    )
