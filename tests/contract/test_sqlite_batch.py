"""SQLite's batch statements (``store/sqlite_batch.py``) do what SQLAlchemy's would, to the byte.

The store writes a batch's firings and outbox rows with its own SQL on SQLite. Here the
same rows are written both ways — by ``Store.store_batch`` and by SQLAlchemy's own
statements (``hot_statements``) on another database — and the tables are read back raw
with ``sqlite3``: every column of every row, and its SQLite type, must be the same. The
values cover what varies: absent windows and counts, ``late`` both ways, text beyond
ASCII and quotes, many event ids, instants with and without microseconds and in other
zones, and a rendered action with nested JSON.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from contract.store_fixtures import entries_for, make_firing, sync_engine
from interlock.rules.engine.firing import Firing
from interlock.service.store import OutboxEntry, Store, sqlite_batch
from interlock.service.store import hot_statements as hot
from interlock.service.store.firings import _firing_row, _outbox_row
from interlock.service.store.outbox import _action
from interlock.service.store.sqlite_batch import stored_time

NOW = datetime(2026, 12, 7, 9, 30, 0, 123456, tzinfo=UTC)


def _firings() -> list[Firing]:
    plain = make_firing(n=1)
    berlin = timezone(timedelta(hours=1))
    return [
        plain,
        msgspec.structs.replace(
            make_firing("rule-2", "clé \"quoted\" 'key' ✓", n=2),
            window_start=None,
            window_end=None,
            late=True,
            expected=3,
            arrived=0,
            status="resolved",
            summary="résumé: 0 of 3 arrived\nby 09:00 — ✗",
        ),
        msgspec.structs.replace(
            make_firing("rule-3", n=3),
            at=datetime(2026, 3, 29, 1, 59, 59, tzinfo=berlin),  # no microseconds
            event_ids=[uuid.uuid4() for _ in range(40)],
            expected=2**40,
        ),
    ]


def _entries(firings: list[Firing]) -> list[OutboxEntry]:
    entries = [entry for firing in firings for entry in entries_for(firing, 3)]
    nested = {"url": "http://h/é", "body": {"a": [1, 2.5, None, True], "ü": {"x": '"y"'}}}
    return [*entries[:-1], msgspec.structs.replace(entries[-1], action=nested)]


def _raw(path: Path, table: str, key: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        types = ", ".join(f"typeof({column})" for column in columns)
        return connection.execute(f"SELECT *, {types} FROM {table} ORDER BY {key}").fetchall()


@pytest.mark.parametrize(("table", "key"), [("firings", "id"), ("outbox", "idempotency_key")])
async def test_rows_written_by_the_batch_sql_equal_sqlalchemys(
    tmp_path: Path, table: str, key: str
) -> None:
    firings = _firings()
    entries = _entries(firings)
    ours, theirs = tmp_path / "ours.db", tmp_path / "theirs.db"
    for path in (ours, theirs):
        async with Store(f"sqlite:///{path}") as store:
            await store.migrate()
    async with Store(f"sqlite:///{ours}") as store:
        result = await store.store_batch(firings, entries)
    assert sorted(result.stored) == sorted(f.id for f in firings)
    assert sorted(result.queued) == sorted(e.idempotency_key for e in entries)
    # The same rows through SQLAlchemy, with the stored_at / created_at the store used.
    stored_at = _raw(ours, "firings", "id")[0][12]
    moment = datetime.fromisoformat(stored_at).replace(tzinfo=UTC)
    with sync_engine(f"sqlite:///{theirs}") as engine, engine.begin() as connection:
        connection.execute(hot.insert_firings("sqlite"), [_firing_row(f, moment) for f in firings])
        connection.execute(hot.insert_outbox("sqlite"), [_outbox_row(e, moment) for e in entries])
    assert _raw(ours, table, key) == _raw(theirs, table, key)


async def test_a_second_store_of_the_same_batch_inserts_nothing(sqlite_url: str) -> None:
    firings = _firings()
    entries = _entries(firings)
    async with Store(sqlite_url) as store:
        await store.migrate()
        await store.store_batch(firings, entries)
        again = await store.store_batch(firings, entries)
        assert again.stored == []
        assert sorted(again.already_stored) == sorted(f.id for f in firings)
        assert again.queued == []
        assert await store.firings.get(firings[1].id) == firings[1]


async def test_a_row_the_database_refuses_is_a_store_error_and_stores_nothing(
    sqlite_url: str,
) -> None:
    from interlock.service.store import StoreError  # noqa: PLC0415

    firing = make_firing(n=1)
    orphan = entries_for(make_firing("nobody", n=9), 1)  # its firing is not in the batch
    async with Store(sqlite_url) as store:
        await store.migrate()
        with pytest.raises(StoreError):
            await store.store_batch([firing], orphan)
        with sync_engine(sqlite_url) as engine, engine.connect() as connection:
            assert (
                connection.scalar(sa.select(sa.func.count()).select_from(sa.table("firings"))) == 0
            )


def test_instants_are_stored_as_utc_text_with_microseconds() -> None:
    assert stored_time(NOW) == "2026-12-07 09:30:00.123456"
    east = datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert stored_time(east) == "2025-12-31 22:30:00.000000"
    assert stored_time(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        stored_time(datetime(2026, 1, 1))


async def test_the_claim_on_sqlite_returns_what_sqlalchemys_returns(tmp_path: Path) -> None:
    # Two equal databases; one claims with the SQLite SQL, the other with SQLAlchemy's
    # statement, at the same instant: the same actions, and the same rows after.
    firings = _firings()
    entries = _entries(firings)
    ours, theirs = tmp_path / "ours.db", tmp_path / "theirs.db"
    async with Store(f"sqlite:///{ours}") as store:
        await store.migrate()
        await store.store_batch(firings, entries)
    shutil.copyfile(ours, theirs)  # the same rows, to the microsecond
    at = datetime.now(UTC) + timedelta(seconds=1)
    with sqlite3.connect(ours, isolation_level=None) as connection:
        claimed = sqlite_batch.claim_due(
            connection, now=at, limit=4, worker="w1", until=at + timedelta(seconds=30)
        )
    with sync_engine(f"sqlite:///{theirs}") as engine, engine.begin() as connection:
        values = {"now": at, "limit": 4, "worker": "w1", "until": at + timedelta(seconds=30)}
        expected = [_action(row) for row in connection.execute(hot.claim_due(), values)]
    assert len(claimed) == 4
    assert claimed == expected
    assert {action.state for action in claimed} == {"running"}
    assert _raw(ours, "outbox", "idempotency_key") == _raw(theirs, "outbox", "idempotency_key")
