"""The connection to the database: engine, dialect quirks, transactions and error mapping.

Every repository of the store shares one :class:`Database`. It accepts the URLs people
write (``sqlite:///file.db``, ``postgresql://user@host/db``, with or without a driver)
and picks the async driver itself: aiosqlite for SQLite, psycopg 3 for PostgreSQL.

SQLite is a single writer. Every transaction here starts with ``BEGIN IMMEDIATE``, which
takes the database's write lock at once, so transactions never interleave and a
read-then-write never fails half way; readers of other processes still read, thanks to
WAL. Within one process the transactions queue on an asyncio lock, first come first
served, before they begin. SQLite calls run synchronously on the event loop's thread,
through a plain SQLAlchemy engine (:mod:`~interlock.service.store.sqlite_inline`: the
async adaptation and aiosqlite's thread hand-offs cost more than the calls), so they
must never wait inside SQLite: when another process holds the write lock, ``BEGIN
IMMEDIATE`` fails at once and is retried after ``asyncio.sleep``, for up to
``SQLITE_BUSY_TIMEOUT``.

PostgreSQL runs at READ COMMITTED, locks rows (``FOR UPDATE [SKIP LOCKED]``) where two
writers could meet, and checks each pooled connection before use (``pool_pre_ping``), so
a server restart costs no failed call once the server is back. A session idle inside a
transaction for ``POSTGRES_IDLE_IN_TRANSACTION`` seconds is ended by the server, so a
paused process cannot hold its row locks for ever.

Driver errors become :class:`~interlock.service.store.errors.StoreError` (or
``StoreUnavailable`` when the database cannot be reached), naming the database with its
password hidden; SQL parameters never appear in messages or logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from interlock.rules.clock import Clock, SystemClock
from interlock.service.store.errors import StoreError, StoreUnavailable
from interlock.service.store.sqlite_inline import InlineConnection, connect, is_locked
from interlock.service.store.wal_checkpoints import WalCheckpointer

__all__ = ["POSTGRES_IDLE_IN_TRANSACTION", "Database", "Dialect", "dialect_insert", "normalize_url"]

logger = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgresql"]
Insert = postgresql.Insert | sqlite.Insert

_DRIVERS: dict[Dialect, str] = {"sqlite": "aiosqlite", "postgresql": "psycopg"}
_URL_HINT = "use sqlite:///path/to/file.db or postgresql://user:password@host:5432/database"
SQLITE_BUSY_TIMEOUT = 30.0
"""Seconds a SQLite transaction waits for the write lock before failing."""
_LOCKED_RETRY_FIRST = 0.001
_LOCKED_RETRY_MAX = 0.05
POSTGRES_CONNECT_TIMEOUT = 10
"""Seconds a PostgreSQL connection attempt may take."""
POSTGRES_IDLE_IN_TRANSACTION = 30
"""Seconds PostgreSQL lets one of our sessions sit idle inside a transaction before it
ends the session. The store's transactions wait on nothing but the database; one left
open is a process paused or frozen mid-transaction (SIGSTOP, a VM freeze), whose row
locks would otherwise hold up the others — a replica taking the engine over waits on
the checkpoint row — until its connection dies."""


def dialect_insert(dialect: str, table: sa.Table) -> Insert:
    """An INSERT of ``dialect`` (``sqlite`` or ``postgresql``), which knows ``ON CONFLICT``."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def normalize_url(url: str | URL) -> tuple[URL, Dialect]:
    """Return the async-driver form of a database URL and its dialect.

    Raises:
        StoreError: not a URL, or a database other than SQLite and PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        # The text is not echoed: it may hold a password.
        raise StoreError(f"the database URL is not a URL; {_URL_HINT}") from None
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise StoreError(f"unsupported database {backend!r} in the database URL; {_URL_HINT}")
    dialect: Dialect = "sqlite" if backend == "sqlite" else "postgresql"
    return parsed.set(drivername=f"{backend}+{_DRIVERS[dialect]}"), dialect


class Database:
    """One async engine with the dialect's settings, the clock, and error mapping.

    Args:
        url: A SQLAlchemy URL of a SQLite or PostgreSQL database.
        clock: Where timestamps come from.
        pool_size: Connections kept open (PostgreSQL).
        idle_in_transaction: Seconds PostgreSQL lets a session sit idle inside a
            transaction (see :data:`POSTGRES_IDLE_IN_TRANSACTION`).
    """

    def __init__(
        self,
        url: str | URL,
        *,
        clock: Clock | None = None,
        pool_size: int = 5,
        idle_in_transaction: float = POSTGRES_IDLE_IN_TRANSACTION,
    ) -> None:
        self._checkpointer: WalCheckpointer | None = None
        self.url, self.dialect = normalize_url(url)
        self.display_url = self.url.render_as_string(hide_password=True)
        self.clock: Clock = clock or SystemClock()
        self._sqlite: sa.Engine | None = None
        """SQLite's synchronous engine (see :mod:`.sqlite_inline`)."""
        self.engine: AsyncEngine | None = None
        """PostgreSQL's async engine."""
        if self.dialect == "sqlite":
            self._sqlite = self._sqlite_engine()
        else:
            self.engine = self._postgres_engine(pool_size, idle_in_transaction)
        self._writer: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"

    def now(self) -> datetime:
        """The clock's current instant."""
        return self.clock.now()

    def insert(self, table: sa.Table) -> Insert:
        """An INSERT of the dialect, which knows ``ON CONFLICT``."""
        return dialect_insert(self.dialect, table)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed on exit, rolled back on error."""
        try:
            async with self._turn(), self._begin() as connection:
                yield connection
        except exc.DBAPIError as error:
            raise self.error(error) from error
        except exc.StatementError as error:
            # A value refused before it reached the driver (a naive datetime, say).
            if isinstance(error.orig, ValueError | TypeError):
                raise error.orig from None
            raise StoreError(f"database {self.display_url}: {error.orig}") from error
        except exc.TimeoutError as error:
            raise StoreUnavailable(self.display_url, "no free connection in the pool") from error

    def _begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        if self._sqlite is not None:
            return self._begin_sqlite(self._sqlite)
        assert self.engine is not None
        return self.engine.begin()

    @asynccontextmanager
    async def _begin_sqlite(self, engine: sa.Engine) -> AsyncIterator[AsyncConnection]:
        """``BEGIN IMMEDIATE``, retried while another process holds the write lock.

        The connections never wait inside SQLite (they run on the event loop's thread,
        see :mod:`~interlock.service.store.sqlite_inline`): the wait is here, in
        ``asyncio.sleep``, for as long as ``busy_timeout`` would have waited.
        """
        if self._checkpointer is not None:
            self._checkpointer.start()  # again, after a dispose()
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
        delay = _LOCKED_RETRY_FIRST
        while True:
            connection = engine.connect()
            try:
                transaction = connection.begin()  # BEGIN IMMEDIATE (_on_begin)
                break
            except exc.OperationalError as error:
                connection.close()
                if not is_locked(error.orig) or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LOCKED_RETRY_MAX)
        try:
            # The store's repositories await what this answers at once (sqlite_inline).
            yield cast(AsyncConnection, InlineConnection(connection))
        except BaseException:
            if transaction.is_active:
                transaction.rollback()
            raise
        else:
            transaction.commit()
        finally:
            connection.close()

    def _turn(self) -> AbstractAsyncContextManager[object]:
        """SQLite: this process's turn to write (see the module's docs)."""
        return _Turn(self._writer, self.display_url) if self._writer else nullcontext()

    def error(self, error: exc.DBAPIError) -> StoreError:
        """The store error for a driver error (its first line only: no parameters)."""
        original = error.orig if error.orig is not None else error
        lines = str(original).strip().splitlines()
        reason = lines[0] if lines else type(original).__name__
        if isinstance(error, exc.OperationalError | exc.InterfaceError) or (
            error.connection_invalidated
        ):
            return StoreUnavailable(self.display_url, reason)
        return StoreError(f"database {self.display_url}: {type(original).__name__}: {reason}")

    async def ping(self) -> None:
        """Check that the database answers.

        Raises:
            StoreUnavailable: it does not.
        """
        async with self.transaction() as connection:
            await connection.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection (and stop checkpointing SQLite's WAL)."""
        if self.engine is not None:
            await self.engine.dispose()
        if self._sqlite is not None:
            self._sqlite.dispose()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)

    def _sqlite_engine(self) -> sa.Engine:
        database = self.url.database
        memory = database in (None, "", ":memory:")
        if not memory:
            folder = Path(str(database)).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(
                    f"cannot create {folder} for the SQLite database: {error.strerror}"
                ) from error
        options: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
        path = ":memory:" if memory else str(database)
        if not memory:
            self._checkpointer = WalCheckpointer(path)
            self._checkpointer.start()

        engine = sa.create_engine(
            self.url.set(drivername="sqlite+pysqlite"),
            hide_parameters=True,
            creator=lambda: connect(path),
            # Every use is a transaction that commits or rolls back (``transaction``):
            # the pool's own rollback on return would only repeat it.
            pool_reset_on_return=None,
            **options,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
            # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # WAL with synchronous=NORMAL: a commit survives the process dying (kill -9)
            # without an fsync per commit; a power loss may roll back the last commits,
            # which is safe here: firings and the engine checkpoint roll back together,
            # and the events since are still in JetStream, fed again at start.
            _switch_to_wal(cursor)
            # Checkpoints run in a thread of their own (WalCheckpointer), not in commits.
            for pragma in ("foreign_keys=ON", "synchronous=NORMAL", "wal_autocheckpoint=0"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def _postgres_engine(self, pool_size: int, idle_in_transaction: float) -> AsyncEngine:
        return create_async_engine(
            self.url,
            hide_parameters=True,
            pool_pre_ping=True,
            pool_size=pool_size,
            connect_args={
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT,
                "application_name": "interlock",
                "options": "-c idle_in_transaction_session_timeout="
                f"{max(1, round(idle_in_transaction * 1000))}",
            },
        )


_WAL_RETRY = 0.01


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another connection holds the database.

    Switching a new database to WAL needs it to itself, and SQLite answers "database is
    locked" at once instead of waiting ``busy_timeout`` (seen with replicas migrating a
    new database at the same moment). Only a connection's first statement waits here.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as error:
            if "database is locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(_WAL_RETRY)


class _Turn:
    """Holds the SQLite writer lock, waiting for it as long as SQLite itself would."""

    def __init__(self, lock: asyncio.Lock, display_url: str) -> None:
        self._lock = lock
        self._display_url = display_url

    async def __aenter__(self) -> None:
        # Not asyncio.wait_for: on 3.11 it can be cancelled just after the lock was
        # granted, and the lock stays held for ever.
        try:
            async with asyncio.timeout(SQLITE_BUSY_TIMEOUT):
                await self._lock.acquire()
        except TimeoutError:
            raise StoreUnavailable(
                self._display_url,
                f"waited {SQLITE_BUSY_TIMEOUT:g} s for this process's other transactions",
            ) from None

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()
