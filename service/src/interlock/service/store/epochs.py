"""Fencing by epoch: who may write the engine checkpoint row (scale-out, issue 19).

A replica that holds the engine's lease (:mod:`interlock.service.ownership`) has an
epoch: the lease's revision in NATS KV, which grows with every new holder. Before it
reads the checkpoint it *claims* the row with :func:`claim` (the row's ``epoch`` becomes
its own, in the transaction that reads the checkpoint); then every batch it stores calls
:func:`fence` first, in the batch's own transaction: ``SELECT epoch ... FOR UPDATE`` on
the row, refused with :class:`~.errors.Fenced` unless it is still this replica's. A
replica that lost its lease (paused, partitioned) therefore cannot commit once a newer
owner has claimed the row, and the row lock orders a claim and a batch: a batch that
began before the claim commits before it, one that began after it is refused.

Without replicas nothing here runs: no epoch is given, the row keeps epoch 0 and a batch
does not read it (the single server's hot path is unchanged).

A row claimed before any checkpoint was saved holds an empty ``state``: it is no
checkpoint, and :func:`claim` and ``Firings.checkpoint`` report none.

A claim waits for the row lock of a batch in flight, and of a paused owner's open
transaction until PostgreSQL ends its session (``idle_in_transaction_session_timeout``,
the lease's TTL with replicas). While it waits longer than :data:`WAIT_REPORT` seconds,
it logs a warning every :data:`WAIT_REPORT` seconds naming the sessions that hold the
checkpoint table (pid, state and for how long, application, address, statement), so a
takeover that hangs says on what.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.errors import Fenced
from interlock.service.store.records import Checkpoint

__all__ = ["DEFAULT_CHECKPOINT", "WAIT_REPORT", "claim", "fence"]

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "default"
"""The checkpoint row of the one engine (step 1: one owner)."""
WAIT_REPORT = 5.0
"""Seconds a claim waits before it says what holds the row (and again every as long)."""
_HOLDERS = sa.text(
    "SELECT a.pid, a.state, a.wait_event_type, a.application_name, "
    "host(a.client_addr) AS client, "
    "extract(epoch FROM clock_timestamp() - a.state_change) AS seconds, "
    "left(a.query, 120) AS query "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'relation' AND l.relation = 'engine_checkpoints'::regclass "
    "AND l.granted AND a.pid <> pg_backend_pid() ORDER BY a.pid"
)


def _locked(name: str) -> sa.Select[Any]:
    c = t.engine_checkpoints.c
    return (
        sa.select(c.epoch, c.state, c.stream_sequence, c.saved_at)
        .where(c.name == name)
        .with_for_update()
    )


async def fence(connection: AsyncConnection, name: str, epoch: int) -> None:
    """Lock checkpoint row ``name`` for this transaction; refuse unless it is ``epoch``'s.

    Raises:
        Fenced: a newer owner claimed it (or the row is gone): nothing may be written.
    """
    current = (await connection.execute(_locked(name))).first()
    if current is None or current.epoch != epoch:
        raise Fenced(name, epoch, None if current is None else current.epoch)


async def claim(
    database: Database,
    epoch: int,
    name: str = DEFAULT_CHECKPOINT,
    *,
    wait_report: float = WAIT_REPORT,
) -> Checkpoint | None:
    """Make checkpoint row ``name`` belong to ``epoch``; return its checkpoint, if any.

    Creates the row (empty state, sequence 0) when there is none, so later batches have a
    row to lock.

    Raises:
        Fenced: the row belongs to a newer epoch already (this replica's lease was taken
            over before it could claim; or the lease bucket was deleted and its revisions
            started again, see docs/operations/scale-out.md).
    """
    claiming = asyncio.ensure_future(_claim(database, epoch, name))
    waited = 0.0
    try:
        while True:
            done, _ = await asyncio.wait({claiming}, timeout=wait_report)
            if done:
                return claiming.result()
            waited += wait_report
            if database.dialect == "postgresql":
                await _report_holders(database, name, waited)
    finally:
        if not claiming.done():
            claiming.cancel()


async def _report_holders(database: Database, name: str, waited: float) -> None:
    """Log the sessions holding the checkpoint table while a claim waits for its row."""
    try:
        async with database.transaction() as connection:
            rows = (await connection.execute(_HOLDERS)).all()
    except Exception as exc:  # noqa: BLE001 - a report must not stop the claim
        logger.warning("engine checkpoint %r: claim waiting %.1f s (%s)", name, waited, exc)
        return
    sessions = "; ".join(
        f"pid {row.pid} {row.state}"
        + (f" waiting on {row.wait_event_type}" if row.wait_event_type else "")
        + f" for {float(row.seconds or 0):.1f} s ({row.application_name or '?'}"
        + (f" at {row.client}" if row.client else "")
        + f"): {row.query!r}"
        for row in rows
    )
    logger.warning(
        "engine checkpoint %r: the claim has waited %.1f s for the row's lock; sessions "
        "holding the table: %s",
        name,
        waited,
        sessions or "none",
    )


async def _claim(database: Database, epoch: int, name: str) -> Checkpoint | None:
    now = database.now()
    table = t.engine_checkpoints
    async with database.transaction() as connection:
        row = (await connection.execute(_locked(name))).first()
        if row is None:
            insert = database.insert(table).values(
                name=name, state=b"", stream_sequence=0, saved_at=now, epoch=epoch
            )
            await connection.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
            await fence(connection, name, epoch)  # another claim inserted it first
            return None
        if row.epoch > epoch:
            raise Fenced(name, epoch, row.epoch)
        update = table.update().where(table.c.name == name).values(epoch=epoch)
        await connection.execute(update)
    if not row.state:
        return None
    return Checkpoint(
        name=name,
        state=bytes(row.state),
        stream_sequence=row.stream_sequence,
        saved_at=row.saved_at,
    )
