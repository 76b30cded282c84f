"""SQLite's write lock held by another connection: the store waits without blocking.

The store's SQLite connections run on the event loop's thread and never wait inside
SQLite; a transaction that finds the write lock taken (another process, here another
connection) retries ``BEGIN IMMEDIATE`` between ``asyncio.sleep`` calls. So the wait
ends when the lock is released, and the event loop keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contract.store_fixtures import entries_for, make_firing
from interlock.service.store import Store


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "interlock.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[Store]:
    async with Store(f"sqlite:///{path}") as store:
        await store.migrate()
        yield store


def other_connection(path: Path) -> sqlite3.Connection:
    """A connection of its own, as another process would have."""
    return sqlite3.connect(path, timeout=0, isolation_level=None)


async def test_a_write_waits_for_a_lock_held_elsewhere_while_the_loop_runs(
    store: Store, path: Path
) -> None:
    other = other_connection(path)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
    firing = make_firing()
    started = time.monotonic()
    result = await store.store_batch([firing], entries_for(firing))
    waited = time.monotonic() - started
    ticker.cancel()
    other.close()

    assert result.stored == [firing.id]
    assert waited >= 0.25  # it did wait for the other writer...
    assert ticks >= 5  # ...and the event loop ran meanwhile
    assert await store.firings.get(firing.id) == firing


async def test_reads_and_writes_go_on_while_another_connection_only_reads(
    store: Store, path: Path
) -> None:
    reader = other_connection(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM firings").fetchone()  # a read snapshot (WAL)
    firing = make_firing()
    await asyncio.wait_for(store.store_batch([firing], entries_for(firing)), 5)
    assert await store.firings.get(firing.id) == firing
    reader.execute("COMMIT")
    reader.close()


async def test_the_wal_is_checkpointed_into_the_database_file_in_the_background(
    store: Store, path: Path
) -> None:
    firings = [make_firing(n=n) for n in range(200)]
    for firing in firings:  # one commit each: autocheckpoint would have run in them
        await store.store_batch([firing], entries_for(firing))
    checkpointer = store._db._checkpointer
    assert checkpointer is not None
    seen = checkpointer.checkpoints
    for _ in range(600):  # up to 30 s
        if checkpointer.checkpoints >= seen + 2:
            break
        await asyncio.sleep(0.05)
    assert checkpointer.checkpoints >= seen + 2
    # The database file alone (no -wal beside it) holds every firing.
    alone = path.with_name("copy.db")
    await asyncio.to_thread(shutil.copyfile, path, alone)
    copy = sqlite3.connect(alone)
    try:
        (count,) = copy.execute("SELECT count(*) FROM firings").fetchone()
    finally:
        copy.close()
    assert count == 200
