"""SQLite calls made on the event loop's thread, behind the store's async interface.

The store's repositories are written against SQLAlchemy's ``AsyncConnection``
(``await connection.execute(...)``), which PostgreSQL's driver needs. For SQLite that
interface only adds cost: SQLAlchemy's async adaptation runs every call (execute, fetch,
commit, even creating a cursor) through a greenlet switch, and aiosqlite hands each to a
thread of its own and back through the event loop. The store's transactions are short
and indexed, and SQLite in WAL mode answers them in microseconds, so that machinery cost
more than the work: a firing's store, claim and finish made about 37 driver calls and 77
greenlet switches, and the layers around them took several times the calls' own time.

So SQLite connections are plain synchronous SQLAlchemy connections (``pysqlite``),
used on the event loop's thread, and :class:`InlineConnection` gives them the part of
``AsyncConnection``'s interface the store uses (``execute``, ``scalar``, ``scalars``,
``exec_driver_sql``, ``run_sync``): each ``await`` returns at once with what the
synchronous call returned (SQLAlchemy's buffered results are the same objects either
way). The one call that could block is taking SQLite's write lock while *another
process* holds it; so these connections never wait for it (``timeout=0``): ``BEGIN
IMMEDIATE`` fails at once with "database is locked", and
:class:`~interlock.service.store.database.Database` retries it with ``asyncio.sleep``
between attempts, the event loop running meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Result, ScalarResult
from sqlalchemy.sql.base import Executable

__all__ = ["InlineConnection", "connect", "is_locked"]

_T = TypeVar("_T")
Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


class InlineConnection:
    """A synchronous connection answering the store's ``await connection.…`` calls.

    Args:
        connection: A connection of the synchronous SQLite engine, in a transaction.
    """

    __slots__ = ("sync_connection",)

    def __init__(self, connection: sa.Connection) -> None:
        self.sync_connection = connection

    async def execute(
        self,
        statement: Executable,
        parameters: Parameters = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
    ) -> CursorResult[Any]:
        """Run ``statement``; its (buffered) result."""
        return self.sync_connection.execute(
            statement, parameters, execution_options=execution_options
        )

    async def scalar(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | None = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
    ) -> Any:
        """The first column of the first row of ``statement``'s result, or ``None``."""
        return self.sync_connection.scalar(
            statement, parameters, execution_options=execution_options
        )

    async def scalars(
        self,
        statement: Executable,
        parameters: Parameters = None,
        *,
        execution_options: Mapping[str, Any] | None = None,
    ) -> ScalarResult[Any]:
        """The first column of every row of ``statement``'s result."""
        return self.sync_connection.scalars(
            statement, parameters, execution_options=execution_options
        )

    async def exec_driver_sql(
        self, statement: str, parameters: Any = None
    ) -> CursorResult[Any] | Result[Any]:
        """Run SQL text as the driver takes it."""
        return self.sync_connection.exec_driver_sql(statement, parameters)

    async def run_sync(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``fn(sync_connection, *args, **kwargs)`` (migrations, schema reflection)."""
        return fn(self.sync_connection, *args, **kwargs)


def connect(database: str) -> sqlite3.Connection:
    """A ``sqlite3`` connection that never waits for another process's write lock."""
    # timeout=0: a lock held by another process fails at once (see the module's docs).
    return sqlite3.connect(database, timeout=0, check_same_thread=False, isolation_level=None)


def is_locked(error: BaseException | None) -> bool:
    """Whether a driver error is SQLite's "database is locked" (another writer)."""
    return isinstance(error, sqlite3.OperationalError) and (
        "database is locked" in str(error) or "database is busy" in str(error)
    )
