"""Adapter poll cursors in the database, for replicas (issue 19).

One server keeps each polling adapter's checkpoint (its cursor: the last key, the
high-water mark) in a file of its data directory
(:class:`~interlock.adapters.checkpoints.FileCheckpointStore`). Several replicas each
have their own data directory, and adapter polls run on whichever replica holds the
``scheduler`` lease: a replica that took the lease over would poll from its own, stale
or missing, cursor, publishing again what the other published (under other event ids,
since batches fall differently) or skipping what came meanwhile. So with
``replicas.enabled`` the cursors live in the table ``adapter_checkpoints`` of the
shared database (:class:`DatabaseCheckpointStore`), and the new owner of the lease
continues where the other stopped.

A cursor is saved only after the poll's events were published (the runner's order), so a
replica that dies in between leaves the previous cursor, and the next owner publishes
that batch again under the same ids: JetStream stores it once. The first time an adapter
runs with replicas, its file cursor (from before, on this replica) is taken as the start.

Polls run in the scheduler's threads, so this store is synchronous: its own small pool of
the database's synchronous driver (as APScheduler's job store).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from interlock.adapters.checkpoints import CheckpointStore
from interlock.sdk.errors import ConfigurationError
from interlock.service.store import tables as t

__all__ = ["DatabaseCheckpointStore"]

logger = logging.getLogger(__name__)


class DatabaseCheckpointStore:
    """Checkpoints as rows of ``adapter_checkpoints`` (a :class:`CheckpointStore`).

    Args:
        engine: A synchronous engine on the service's database.
        seed: Where a cursor is looked for when the table has none (the file store of
            this replica, from before replicas).
    """

    def __init__(self, engine: sa.Engine, *, seed: CheckpointStore | None = None) -> None:
        self.engine = engine
        self.seed = seed

    def load(self, name: str) -> dict[str, Any] | None:
        """The saved checkpoint of adapter ``name``, or ``None`` before its first poll."""
        query = sa.select(t.adapter_checkpoints.c.checkpoint).where(
            t.adapter_checkpoints.c.adapter == name
        )
        with self.engine.connect() as connection:
            found = connection.execute(query).scalar_one_or_none()
        if found is None:
            if self.seed is None:
                return None
            seeded = self.seed.load(name)
            if seeded is not None:
                logger.info("adapter %s: its cursor starts from this replica's file", name)
            return seeded
        if not isinstance(found, dict):
            raise ConfigurationError(
                "checkpoint",
                f"the cursor of adapter {name!r} in adapter_checkpoints is not a JSON object; "
                "delete its row to start over",
            )
        return found

    def save(self, name: str, checkpoint: dict[str, Any]) -> None:
        """Replace the checkpoint of adapter ``name`` (one statement: old or new)."""
        values = {"adapter": name, "checkpoint": checkpoint, "updated_at": datetime.now(UTC)}
        table = t.adapter_checkpoints
        insert: Any = (
            postgresql.insert(table)
            if self.engine.dialect.name == "postgresql"
            else sqlite.insert(table)
        )
        upsert = insert.values(**values).on_conflict_do_update(
            index_elements=[table.c.adapter],
            set_={"checkpoint": checkpoint, "updated_at": values["updated_at"]},
        )
        with self.engine.begin() as connection:
            connection.execute(upsert)
