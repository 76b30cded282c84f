"""SQLite calls made on the event loop's thread, behind aiosqlite's interface.

aiosqlite runs every call (execute, fetch, commit, even creating a cursor) on a thread
of its own and hands the result back through the event loop: about a dozen round trips
per transaction, each a queue put, a thread switch under the GIL and a wake-up of the
loop. The store's transactions are short and indexed, and SQLite in WAL mode answers
them in microseconds, so those round trips cost more than the work: a firing's store,
claim and finish spent about a quarter of their CPU time on them.

:class:`InlineConnection` keeps aiosqlite's API, which SQLAlchemy's ``aiosqlite`` dialect
drives, but runs each call at once where it is made. The one call that could block is
taking SQLite's write lock while *another process* holds it; so these connections never
wait for it (``timeout=0``): ``BEGIN IMMEDIATE`` fails at once with "database is locked",
and :class:`~interlock.service.store.database.Database` retries it with ``asyncio.sleep``
between attempts, the event loop running meanwhile.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator
from typing import Any

import aiosqlite

__all__ = ["InlineConnection", "is_locked"]


class _RunAtOnce:
    """Stands in for aiosqlite's queue to its worker thread: runs each call when put."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as error:  # noqa: BLE001 - handed to the caller, as aiosqlite does
            if future is not None and not future.done():
                future.set_exception(error)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection without its thread: every call runs on the caller's.

    Args:
        database: The database file.
    """

    def __init__(self, database: str) -> None:
        super().__init__(lambda: _connect(database), iter_chunk_size=64)
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no thread to start

    def stop(self) -> asyncio.Future[Any] | None:
        """Close the SQLite connection now (aiosqlite would stop its thread)."""
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return None


def _connect(database: str) -> sqlite3.Connection:
    # timeout=0: a lock held by another process fails at once (see the module's docs).
    return sqlite3.connect(database, timeout=0, check_same_thread=False, isolation_level=None)


def is_locked(error: BaseException | None) -> bool:
    """Whether a driver error is SQLite's "database is locked" (another writer)."""
    return isinstance(error, sqlite3.OperationalError) and (
        "database is locked" in str(error) or "database is busy" in str(error)
    )
