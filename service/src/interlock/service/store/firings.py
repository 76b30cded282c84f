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

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.rules.engine.firing import Firing
from interlock.service.store import hot_statements as hot
from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.errors import NotFound
from interlock.service.store.records import BatchResult, Checkpoint, OutboxEntry

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
    ) -> BatchResult:
        """Store firings, queue their actions and save the checkpoint, atomically.

        Outbox entries of firings that were stored before are skipped; entries of other
        firings (in the database, not in this batch) are queued unless queued already.

        Raises:
            StoreError: nothing was stored (an entry names an unknown firing, the
                database failed); the batch may be retried as a whole.
        """
        now = self._db.now()
        first: dict[uuid.UUID, Firing] = {}
        for firing in firings:
            first.setdefault(firing.id, firing)
        unique = list(first.values())
        async with self._db.transaction() as connection:
            stored: set[uuid.UUID] = set()
            if unique:
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
            rows = [_outbox_row(e, now) for e in outbox if e.firing_id not in replayed]
            queued: list[uuid.UUID] = []
            if rows:
                result = await connection.execute(hot.insert_outbox(self._db.dialect), rows)
                queued = list(result.scalars())
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
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Firing]:
        """Firings, newest first, optionally of one rule and key, ``since <= at < until``."""
        query = sa.select(t.firings).order_by(t.firings.c.at.desc(), t.firings.c.id).limit(limit)
        if rule is not None:
            query = query.where(t.firings.c.rule == rule)
        if key is not None:
            query = query.where(t.firings.c.key == key)
        if since is not None:
            query = query.where(t.firings.c.at >= since)
        if until is not None:
            query = query.where(t.firings.c.at < until)
        async with self._db.transaction() as connection:
            return [_firing(row) for row in await connection.execute(query)]

    async def checkpoint(self, name: str = "default") -> Checkpoint | None:
        """The engine checkpoint saved under ``name``, if any."""
        query = sa.select(t.engine_checkpoints).where(t.engine_checkpoints.c.name == name)
        async with self._db.transaction() as connection:
            row = (await connection.execute(query)).one_or_none()
        if row is None:
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
