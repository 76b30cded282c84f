"""Approvals: the decisions that ``approve`` steps wait for, and their effect on the outbox.

An ``approve`` action of a firing asks a person; the actions after it in the firing's
list wait. The approval's ``id`` is the ``approve`` row's idempotency key, so a retried
request finds the approval (and token) it created before. Deciding writes the decision
and moves the outbox rows in one transaction:

- approved (or expired with ``on_timeout="approve"``): the ``approve`` row becomes
  ``succeeded``, the actions after it ``pending`` (the claim's approval gate opens);
- rejected (or expired with ``on_timeout="reject"``): the ``approve`` row and the
  actions after it become ``cancelled``, with the reason.

An approval counts as asked only once its request went out (``sent_at``): until then
its ``request_state`` says where the request is (``sending``; ``failed`` with the error,
while the ``approve`` action's retry policy tries again; ``given_up`` once the retries
are spent and the actions after it were cancelled). The request's progress is read
from the ``approve`` row itself (its state, attempts, last error and next attempt), so
it is exactly what the dispatcher did. Only a sent approval expires, and its timeout
runs from when it was sent.

Deciding an approval whose request has not gone out (yet) is allowed: approved, the
``approve`` row succeeds and the actions after it run; rejected, they are cancelled;
either way the request is not sent any more. An approval whose request was given up
cannot be decided (:class:`ApprovalGivenUp`): the actions after it were cancelled, so
neither decision would do anything.

A decision is taken once: deciding a decided approval raises :class:`ApprovalClosed`.
Timeouts are rows here (``expires_at``), so a restart loses none: whoever polls
:meth:`Approvals.due` expires them.

::

    StoreError
    └── ApprovalClosed (ValueError)     decided already: nothing to decide
        └── ApprovalGivenUp             its request was never sent, and given up
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
from interlock.service.store.records import (
    Approval,
    ApprovalDecision,
    ApprovalRequestState,
    OutboxAction,
)

__all__ = ["ApprovalClosed", "ApprovalGivenUp", "Approvals"]

_UNFINISHED = ("pending", "running", "suspended")
"""States of an ``approve`` row whose request is still being tried."""


class ApprovalClosed(StoreError, ValueError):
    """The approval cannot be decided: it was decided already (a decision is taken once).

    Attributes:
        approval: The approval as it stands.
    """

    def __init__(self, approval: Approval, message: str | None = None) -> None:
        self.approval = approval
        if message is None:
            message = (
                f"the approval of rule {approval.rule!r} (firing {approval.firing_id}, action "
                f"{approval.index}) was {approval.decision} by {approval.decided_by} at "
                f"{approval.decided_at:%Y-%m-%d %H:%M:%S} UTC already"
                if approval.decided_at is not None
                else f"the approval {approval.id} was decided already"
            )
        super().__init__(message)


class ApprovalGivenUp(ApprovalClosed):
    """The approval's request never went out and its retries are spent.

    The actions after it were cancelled when the ``approve`` action failed for good, so
    approving would run nothing and rejecting would change nothing.
    """

    def __init__(self, approval: Approval) -> None:
        error = approval.request_error or "no error recorded"
        super().__init__(
            approval,
            f"the approval of rule {approval.rule!r} (firing {approval.firing_id}, action "
            f"{approval.index}) was never asked: its request could not be sent ({error}) and "
            f"was given up after {approval.attempts} attempt(s); the actions after it were "
            "cancelled, so there is nothing to decide (fix the channel or URL: the rule's "
            "next firing asks again)",
        )


class Approvals:
    """Requested approvals, whether their requests went out, and their decisions."""

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

        It is not sent yet (:meth:`hold` says it was). If it was recorded before (a
        retry), the stored one is returned unchanged.
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
                sent_at=None,
                request_error=None,
            )
            .on_conflict_do_nothing()
        )
        async with self._db.transaction() as connection:
            await connection.execute(insert)
            return await self._get(connection, t.approvals.c.id == action.idempotency_key)

    async def request_failed(self, approval_id: uuid.UUID, error: str) -> None:
        """An attempt to send the request failed with ``error`` (kept until one succeeds)."""
        a = t.approvals
        async with self._db.transaction() as connection:
            await connection.execute(
                sa.update(a)
                .where(a.c.id == approval_id, a.c.sent_at.is_(None))
                .values(request_error=error)
            )

    async def hold(
        self,
        approval_id: uuid.UUID,
        *,
        worker: str,
        sent: bool = True,
        expires_at: datetime | None = None,
    ) -> Approval:
        """The request went out: the ``approve`` row waits, the actions after it are held.

        With ``sent``, records that the request went out now, with its deadline
        ``expires_at`` (its timeout counts from the request that went out). If the
        approval was decided meanwhile (a fast click), its decision is applied instead.
        Returns the approval.
        """
        now = self._db.now()
        a, o = t.approvals, t.outbox
        async with self._db.transaction() as connection:
            if sent:
                await connection.execute(
                    sa.update(a)
                    .where(a.c.id == approval_id)
                    .values(sent_at=now, request_error=None)
                )
                await connection.execute(
                    sa.update(a)
                    .where(a.c.id == approval_id, a.c.decision.is_(None))
                    .values(expires_at=expires_at)
                )
            approval = await self._get(connection, a.c.id == approval_id)
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
                .values(state="waiting", last_error=None, **t.released(now))
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
            return await self._get(connection, a.c.id == approval_id)

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

        With ``firing_id``, the firing's first undecided approval is decided. An approval
        whose request has not gone out may be decided (it is then not sent any more).

        Raises:
            NotFound: no such approval (or the firing has none).
            ApprovalGivenUp: its request was never sent and was given up.
            ApprovalClosed: it was decided already (with ``firing_id``: the firing has no
                undecided approval; the last decided one is named).
            ValueError: not exactly one of ``id``, ``token``, ``firing_id``.
        """
        if sum(x is not None for x in (id, token, firing_id)) != 1:
            raise ValueError("name the approval by exactly one of id, token or firing_id")
        a, o = t.approvals, t.outbox
        if id is not None:
            where, label = a.c.id == id, str(id)
        elif token is not None:
            where, label = a.c.token == token, "with this token"
        else:
            where, label = a.c.firing_id == firing_id, f"for firing {firing_id}"
        now = self._db.now()
        async with self._db.transaction() as connection:
            query = sa.select(a.c.id).where(where).order_by(a.c.action_index)
            if self._db.dialect == "postgresql":
                query = query.with_for_update()
            ids = list((await connection.execute(query)).scalars())
            if not ids:
                raise NotFound("approval", label)
            if self._db.dialect == "postgresql":
                # The approve rows too: a dispatcher finishing one waits for this decision.
                await connection.execute(
                    sa.select(o.c.idempotency_key)
                    .where(o.c.idempotency_key.in_(ids))
                    .with_for_update()
                )
            found = [await self._get(connection, a.c.id == key) for key in ids]
            undecided = [approval for approval in found if approval.decision is None]
            if not undecided:
                raise ApprovalClosed(max(found, key=_decided_last))
            current = undecided[0]
            if current.request_state == "given_up":
                raise ApprovalGivenUp(current)
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
            return await self._get(connection, a.c.id == current.id)

    async def due(self, *, limit: int = 100) -> list[Approval]:
        """Undecided, sent approvals whose timeout has passed, oldest deadline first."""
        a = t.approvals
        now = self._db.now()
        query = (
            _select()
            .where(a.c.decision.is_(None), a.c.expires_at <= now, a.c.sent_at.is_not(None))
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
        """Approvals, oldest request first.

        With ``pending`` (the default), only the open ones: undecided, whether their
        request went out or is still being tried; not those decided or given up.
        """
        a, o = t.approvals, t.outbox
        query = _select().order_by(a.c.requested_at, a.c.id).limit(limit)
        if pending:
            given_up = sa.and_(a.c.sent_at.is_(None), o.c.state == "failed")
            query = query.where(a.c.decision.is_(None), ~given_up)
        if rule is not None:
            query = query.where(a.c.rule == rule)
        if firing_id is not None:
            query = query.where(a.c.firing_id == firing_id)
        async with self._db.transaction() as connection:
            return [_approval(row) for row in await connection.execute(query)]

    async def _get(self, connection: AsyncConnection, where: Any) -> Approval:
        row = (await connection.execute(_select().where(where))).one_or_none()
        if row is None:
            raise NotFound("approval", "requested")
        return _approval(row)


def _select() -> sa.Select[Any]:
    """Approvals with their ``approve`` row's progress (an outer join: it may be gone)."""
    a, o = t.approvals, t.outbox
    return sa.select(
        a,
        o.c.state.label("step_state"),
        o.c.attempts.label("step_attempts"),
        o.c.last_error.label("step_error"),
        o.c.next_attempt_at.label("step_next_attempt_at"),
    ).select_from(a.outerjoin(o, o.c.idempotency_key == a.c.id))


def _decided_last(approval: Approval) -> tuple[datetime, int]:
    return (approval.decided_at or approval.requested_at, approval.index)


async def _apply(connection: AsyncConnection, approval: Approval, now: datetime) -> None:
    o = t.outbox
    step = o.c.idempotency_key == approval.id
    unfinished = o.c.state.in_(("pending", "running", "waiting", "held", "suspended"))
    released = t.released(now)
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


def _request_state(row: sa.Row[Any]) -> ApprovalRequestState:
    if row.sent_at is not None:
        return "sent"
    if row.decision is not None:
        return "not_sent"
    if row.step_state == "failed":
        return "given_up"
    if row.request_error or (row.step_state in _UNFINISHED and row.step_error):
        return "failed"
    return "sending"


def _approval(row: sa.Row[Any]) -> Approval:
    state = _request_state(row)
    error = row.request_error
    if row.sent_at is None and row.decision is None and row.step_error:
        error = row.step_error  # the dispatcher's word is the latest (a timeout, say)
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
        sent_at=row.sent_at,
        request_state=state,
        request_error=None if state == "sent" else error,
        attempts=row.step_attempts or 0,
        retry_at=row.step_next_attempt_at
        if state == "failed" and row.step_state == "pending"
        else None,
    )
