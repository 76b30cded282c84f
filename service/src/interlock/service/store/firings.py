"""Firings, the actions they queue, and the engine checkpoint, stored in one transaction.

:meth:`Firings.store_batch` is how the consumer hands a batch over: the firings the
engine produced, their outbox entries, and the engine's state after the batch with the
stream sequence it covers. All of it commits together or not at all, so after a crash
the stored checkpoint and the stored firings always agree, and the consumer acks the
batch's events only after the commit.

A firing's id is the UUID5 of its identity, so storing it again (a replayed event, a
re-judged window) inserts nothing: it is reported as *already stored*, and its outbox
entries are skipped, since they were queued with it the first time.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from interlock.rules.engine.firing import Firing
from interlock.service.store import hot_statements as hot
from interlock.service.store import sqlite_batch
from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.epochs import DEFAULT_CHECKPOINT, fence
from interlock.service.store.errors import NotFound
from interlock.service.store.outbox import Reservation, claim_in
from interlock.service.store.records import BatchResult, Checkpoint, OutboxAction, OutboxEntry
from interlock.service.store.sqlite_inline import InlineConnection

__all__ = ["Firings"]


class Firings:
    """Firings and the engine checkpoint."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def store_batch(
        self,
        firings: Sequence[Firing],
        outbox: Sequence[OutboxEntry] = (),
        checkpoint: Checkpoint | None = None,
        *,
        epoch: int | None = None,
        reservation: Reservation | None = None,
    ) -> BatchResult:
        """Store firings, queue their actions and save the checkpoint, atomically.

        Outbox entries of firings that were stored before are skipped; entries of other
        firings (in the database, not in this batch) are queued unless queued already.
        With an ``epoch`` (scale-out), the checkpoint row is locked and checked first
        (:func:`~.epochs.fence`), in the same transaction. With a ``reservation`` (a
        dispatcher's free slots) and actions queued, due rows are claimed for it in the
        same transaction too; :attr:`Reservation.claimed` holds them once it committed.

        Raises:
            Fenced: ``epoch`` no longer owns the checkpoint row; nothing was stored.
            StoreError: nothing was stored (an entry names an unknown firing, the
                database failed); the batch may be retried as a whole.
        """
        now = self._db.now()
        first: dict[uuid.UUID, Firing] = {}
        for firing in firings:
            first.setdefault(firing.id, firing)
        unique = list(first.values())
        async with self._db.transaction() as connection:
            if epoch is not None:
                await fence(
                    connection, checkpoint.name if checkpoint else DEFAULT_CHECKPOINT, epoch
                )
            inline = cast(InlineConnection, connection) if self._db.dialect == "sqlite" else None
            stored: set[uuid.UUID] = set()
            if unique and inline is not None:
                encoded = [sqlite_batch.firing_row(f, now) for f in unique]
                stored = sqlite_batch.insert_firings(
                    sqlite_batch.driver_connection(inline), encoded
                )
            elif unique:
                insert = hot.insert_firings(self._db.dialect)
                result = await connection.execute(insert, [_firing_row(f, now) for f in unique])
                stored = set(result.scalars())
            if checkpoint is not None:
                values = {
                    "state": checkpoint.state,
                    "stream_sequence": checkpoint.stream_sequence,
                    "saved_at": now,
                }
                upsert = self._db.insert(t.engine_checkpoints).values(
                    name=checkpoint.name, **values
                )
                await connection.execute(
                    upsert.on_conflict_do_update(index_elements=["name"], set_=values)
                )
            replayed = {firing.id for firing in unique} - stored
            entries = [e for e in outbox if e.firing_id not in replayed]
            queued: list[uuid.UUID] = []
            claimed: list[OutboxAction] = []
            if entries and inline is not None:
                queued = sqlite_batch.insert_outbox(
                    sqlite_batch.driver_connection(inline),
                    [sqlite_batch.outbox_row(e, now) for e in entries],
                )
            elif entries:
                result = await connection.execute(
                    hot.insert_outbox(self._db.dialect), [_outbox_row(e, now) for e in entries]
                )
                queued = list(result.scalars())
            if reservation is not None and queued:
                claimed = await claim_in(
                    connection,
                    now=now,
                    worker=reservation.worker,
                    limit=reservation.limit,
                    lease=reservation.lease,
                )
        if reservation is not None:
            reservation.claimed = claimed
        return BatchResult(
            stored=[f.id for f in unique if f.id in stored],
            already_stored=[f.id for f in unique if f.id not in stored],
            queued=queued,
        )

    async def get(self, firing_id: uuid.UUID) -> Firing:
        """The firing with this id.

        Raises:
            NotFound: there is none.
        """
        async with self._db.transaction() as connection:
            query = sa.select(t.firings).where(t.firings.c.id == firing_id)
            row = (await connection.execute(query)).one_or_none()
        if row is None:
            raise NotFound("firing", firing_id)
        return _firing(row)

    async def list(
        self,
        *,
        rule: str | None = None,
        key: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, uuid.UUID] | None = None,
        limit: int = 100,
    ) -> list[Firing]:
        """Firings, newest first (``at``, then ``id``), filtered; ``since <= at < until``.

        ``after``: the ``(at, id)`` of the last firing of the previous page; this page
        continues after it (a cursor that stays right while firings are added).
        """
        f = t.firings
        query = sa.select(f).order_by(f.c.at.desc(), f.c.id).limit(limit)
        if rule is not None:
            query = query.where(f.c.rule == rule)
        if key is not None:
            query = query.where(f.c.key == key)
        if status is not None:
            query = query.where(f.c.status == status)
        if since is not None:
            query = query.where(f.c.at >= since)
        if until is not None:
            query = query.where(f.c.at < until)
        if after is not None:
            at, firing = after
            query = query.where(sa.or_(f.c.at < at, sa.and_(f.c.at == at, f.c.id > firing)))
        async with self._db.transaction() as connection:
            return [_firing(row) for row in await connection.execute(query)]

    async def citing(
        self, event_id: uuid.UUID, *, since: datetime, limit: int = 100
    ) -> builtins.list[Firing]:
        """Firings whose causing events include ``event_id``, among those at or after ``since``.

        A firing is never earlier than the events that caused it, so ``since`` (the event's
        time) bounds the scan: the firings since then are read, not all of them.
        """
        f = t.firings
        cites = sa.cast(f.c.event_ids, sa.Text).contains(str(event_id), autoescape=True)
        query = (
            sa.select(f).where(f.c.at >= since, cites).order_by(f.c.at.desc(), f.c.id).limit(limit)
        )
        async with self._db.transaction() as connection:
            return [_firing(row) for row in await connection.execute(query)]

    async def latest_per_key(
        self, rules: Sequence[str], *, since: datetime
    ) -> dict[tuple[str, str], Firing]:
        """The newest firing at or after ``since`` of each (rule, key) of these rules."""
        f = t.firings
        found: dict[tuple[str, str], Firing] = {}
        async with self._db.transaction() as connection:
            for start in range(0, len(rules), 500):
                chunk = list(rules[start : start + 500])
                newest = (
                    sa.select(f.c.rule, f.c.key, sa.func.max(f.c.at).label("at"))
                    .where(f.c.rule.in_(chunk), f.c.at >= since)
                    .group_by(f.c.rule, f.c.key)
                    .subquery()
                )
                query = sa.select(f).join(
                    newest,
                    sa.and_(
                        f.c.rule == newest.c.rule, f.c.key == newest.c.key, f.c.at == newest.c.at
                    ),
                )
                for row in await connection.execute(query):
                    firing = _firing(row)
                    found[(firing.rule, firing.key)] = firing
        return found

    async def last_per_rule(self) -> dict[str, datetime]:
        """When each rule last fired (or resolved), by rule."""
        f = t.firings
        query = sa.select(f.c.rule, sa.func.max(f.c.at)).group_by(f.c.rule)
        async with self._db.transaction() as connection:
            return {row[0]: row[1] for row in (await connection.execute(query)).all()}

    async def checkpoint(self, name: str = "default") -> Checkpoint | None:
        """The engine checkpoint saved under ``name``, if any."""
        query = sa.select(t.engine_checkpoints).where(t.engine_checkpoints.c.name == name)
        async with self._db.transaction() as connection:
            row = (await connection.execute(query)).one_or_none()
        if row is None or not row.state:  # an epoch-only row (scale-out) is no checkpoint
            return None
        return Checkpoint(
            name=row.name,
            state=bytes(row.state),
            stream_sequence=row.stream_sequence,
            saved_at=row.saved_at,
        )


def _firing_row(firing: Firing, now: datetime) -> dict[str, Any]:
    return {
        "id": firing.id,
        "rule": firing.rule,
        "key": firing.key,
        "status": firing.status,
        "at": firing.at,
        "window_start": firing.window_start,
        "window_end": firing.window_end,
        "event_ids": [str(event_id) for event_id in firing.event_ids],
        "expected": firing.expected,
        "arrived": firing.arrived,
        "late": firing.late,
        "summary": firing.summary,
        "stored_at": now,
    }


def _outbox_row(entry: OutboxEntry, now: datetime) -> dict[str, Any]:
    return {
        "idempotency_key": entry.idempotency_key,
        "firing_id": entry.firing_id,
        "action_index": entry.index,
        "rule": entry.rule,
        "kind": entry.kind,
        "action": entry.action,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
        "created_at": now,
        **t.released(now),
    }


def _firing(row: sa.Row[Any]) -> Firing:
    return Firing(
        id=row.id,
        rule=row.rule,
        key=row.key,
        status=row.status,
        at=row.at,
        window_start=row.window_start,
        window_end=row.window_end,
        event_ids=[uuid.UUID(event_id) for event_id in row.event_ids],
        expected=row.expected,
        arrived=row.arrived,
        late=row.late,
        summary=row.summary,
    )
