"""The :class:`Store`: one database, its migrations, and a repository per aggregate.

::

    async with Store.from_settings(settings) as store:
        await store.migrate()
        await store.rules.apply(rule)
        result = await store.store_batch(firings, outbox_entries, checkpoint)
        for action in await store.outbox.claim(worker="dispatcher-1", limit=50): ...
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

import sqlalchemy as sa

from interlock.rules.clock import Clock
from interlock.rules.engine.firing import Firing
from interlock.service.store.api_keys import ApiKeys
from interlock.service.store.approvals import Approvals
from interlock.service.store.attempts import Attempts
from interlock.service.store.channels import Channels
from interlock.service.store.connections import Connections
from interlock.service.store.database import POSTGRES_IDLE_IN_TRANSACTION, Database, Dialect
from interlock.service.store.deployments import Deployments, Queues
from interlock.service.store.epochs import claim
from interlock.service.store.errors import StoreError
from interlock.service.store.firings import Firings
from interlock.service.store.ids import Ids
from interlock.service.store.keyring import Key, Keyring
from interlock.service.store.outbox import Outbox, Reservation
from interlock.service.store.records import BatchResult, Checkpoint, OutboxEntry
from interlock.service.store.rules import Rules
from interlock.service.store.runs import Runs

if TYPE_CHECKING:
    from interlock.service.settings import Settings

__all__ = ["Store"]

_MIGRATION_LOCK = 0x1A7E_10C4
"""PostgreSQL advisory lock held while migrating, so replicas starting together queue."""


class Store:
    """Interlock's persistent state in SQLite or PostgreSQL.

    Args:
        url: ``sqlite:///path/file.db`` or ``postgresql://user:password@host/db`` (any
            driver named in the URL is replaced by the async one the store uses).
        secret_key: The Fernet key that encrypts secrets (connections, channels);
            without one, they cannot be written or read (everything else works).
        previous_keys: Older Fernet keys, still accepted for reading (see
            :mod:`~interlock.service.store.keyring`).
        clock: Where timestamps come from (a ``FakeClock`` in tests).
        pool_size: PostgreSQL connections kept open.

    Raises:
        StoreError: the URL is not a SQLite or PostgreSQL URL, or the key is malformed.

    Attributes:
        rules, firings, outbox, attempts, connections, channels, api_keys, queues,
            deployments, runs, approvals: The repositories.
    """

    def __init__(
        self,
        url: str,
        *,
        secret_key: Key | None = None,
        previous_keys: Sequence[Key] = (),
        clock: Clock | None = None,
        pool_size: int = 5,
        idle_in_transaction: float = POSTGRES_IDLE_IN_TRANSACTION,
    ) -> None:
        self._db = Database(
            url, clock=clock, pool_size=pool_size, idle_in_transaction=idle_in_transaction
        )
        keys = [] if secret_key is None else [secret_key, *previous_keys]
        self.keyring = Keyring(keys)
        self.rules = Rules(self._db)
        self.firings = Firings(self._db)
        self.outbox = Outbox(self._db)
        self.attempts = Attempts(self._db)
        self.connections = Connections(self._db, self.keyring)
        self.channels = Channels(self.connections)
        self.api_keys = ApiKeys(self._db)
        self.queues = Queues(self._db)
        self.deployments = Deployments(self._db)
        self.runs = Runs(self._db)
        self.approvals = Approvals(self._db)
        self.ids = Ids(self._db)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Store:
        """The store the settings describe (in embedded mode, creating its secret key).

        With replicas, a session idle in a transaction ends after the lease's TTL: a
        replica paused mid-transaction loses its row locks when it loses its lease, so
        the replica taking over does not wait for it on the checkpoint row.
        """
        replicas = settings.replicas
        return cls(
            settings.database_url,
            secret_key=settings.ensure_secret_key(),
            previous_keys=settings.previous_secret_keys,
            clock=clock,
            idle_in_transaction=(
                replicas.lease_ttl.total_seconds()
                if replicas.enabled
                else POSTGRES_IDLE_IN_TRANSACTION
            ),
        )

    @property
    def dialect(self) -> Dialect:
        """``sqlite`` or ``postgresql``."""
        return self._db.dialect

    @property
    def url(self) -> str:
        """The database URL with its password hidden."""
        return self._db.display_url

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    async def migrate(self) -> str:
        """Upgrade the schema to the newest revision (nothing to do is fine); return it.

        Raises:
            StoreError: the database is at a revision this version does not know (a
                newer Interlock migrated it), or the database failed.
        """
        from alembic.util import CommandError  # noqa: PLC0415 - Alembic loads on demand

        from interlock.service import migrations  # noqa: PLC0415 - they import the tables

        def upgrade(connection: sa.Connection) -> str | None:
            if connection.dialect.name == "postgresql":
                lock = sa.text("SELECT pg_advisory_xact_lock(:key)")
                connection.execute(lock, {"key": _MIGRATION_LOCK})
            migrations.upgrade(connection)
            return migrations.current(connection)

        try:
            async with self._db.transaction() as connection:
                revision = await connection.run_sync(upgrade)
        except CommandError as exc:
            raise StoreError(
                f"database {self.url} cannot be migrated: {exc} (was it migrated by a "
                "newer Interlock?)"
            ) from exc
        if revision is None:  # pragma: no cover - upgrade always stamps a revision
            raise StoreError(f"database {self.url} has no revision after migrating")
        return revision

    async def revision(self) -> str | None:
        """The schema revision of the database; ``None`` if it was never migrated."""
        from interlock.service import migrations  # noqa: PLC0415 - they import the tables

        async with self._db.transaction() as connection:
            return await connection.run_sync(migrations.current)

    async def ping(self) -> None:
        """Check that the database answers.

        Raises:
            StoreUnavailable: it does not.
        """
        await self._db.ping()

    async def store_batch(
        self,
        firings: Sequence[Firing],
        outbox: Sequence[OutboxEntry] = (),
        checkpoint: Checkpoint | None = None,
        *,
        epoch: int | None = None,
        reservation: Reservation | None = None,
    ) -> BatchResult:
        """Store firings, queue their actions and save the checkpoint in one transaction.

        See :meth:`~interlock.service.store.firings.Firings.store_batch`; ``epoch``:
        refused with :class:`~.errors.Fenced` unless it still owns the checkpoint row;
        ``reservation``: due actions claimed into a dispatcher's free slots, in the
        same transaction.
        """
        return await self.firings.store_batch(
            firings, outbox, checkpoint, epoch=epoch, reservation=reservation
        )

    async def claim_checkpoint(self, epoch: int) -> Checkpoint | None:
        """Claim the engine checkpoint for lease epoch ``epoch``; return it, if saved.

        See :func:`interlock.service.store.epochs.claim`.

        Raises:
            Fenced: a newer epoch claimed it already.
        """
        return await claim(self._db, epoch)

    async def checkpoint(self, name: str = "default") -> Checkpoint | None:
        """The engine checkpoint saved under ``name``, if any."""
        return await self.firings.checkpoint(name)

    async def close(self) -> None:
        """Close the store's connections."""
        await self._db.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
