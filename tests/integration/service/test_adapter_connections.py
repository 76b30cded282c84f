"""An in-service adapter naming a connection (issue 20): ``connection = "warehouse"``.

A ``db.freshness`` adapter's section names a ``database`` connection instead of writing
the URL. Its polls read the database the connection points at; the connection is
changed in the store while the adapter lives, and the next poll reads the new database
(the adapter was rebuilt, no restart). A section naming a missing connection is skipped
with a reason; one naming a connection of another kind fails its polls, naming it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from harness.nats import init_streams, nats_client, read_events
from interlock.adapters.base import AdapterConfigError
from interlock.adapters.config import load_adapter_section
from interlock.sdk import NatsOptions
from interlock.service.adapter_connections import AdapterConnections
from interlock.service.adapter_polls import load_adapter_polls
from interlock.service.adapter_status import AdapterBoard
from interlock.service.store import Store


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[Store]:
    async with Store(sqlite_url, secret_key=Fernet.generate_key()) as store:
        await store.migrate()
        yield store


def warehouse(path: Path, loaded_at: str) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE sales (id INTEGER, loaded_at TEXT)")
        connection.execute("INSERT INTO sales VALUES (1, ?)", (loaded_at,))
    return path


@pytest.fixture
def streams(nats_url: str) -> str:
    init_streams(nats_url)
    return nats_url


async def test_a_rotated_connection_is_read_by_the_next_poll(
    store: Store, streams: str, tmp_path: Path
) -> None:
    nats_url = streams
    first = warehouse(tmp_path / "first.db", "2026-11-24T08:00:00+00:00")
    second = warehouse(tmp_path / "second.db", "2026-11-25T08:00:00+00:00")
    await store.connections.put("warehouse", "database", {"url": f"sqlite:///{first}"})
    adapters = tmp_path / "adapters.toml"
    adapters.write_text(
        """
[adapters.sales]
kind = "db.freshness"
connection = "warehouse"
table = "sales"
column = "loaded_at"

[adapters.nowhere]
kind = "db.freshness"
connection = "no-such"
table = "sales"
column = "loaded_at"
"""
    )
    board = AdapterBoard()
    connections = AdapterConnections(store.connections, asyncio.get_running_loop())
    polls = await asyncio.to_thread(
        load_adapter_polls,
        adapters,
        NatsOptions(servers=(nats_url,)),
        tmp_path / "spool",
        checkpoint_dir=tmp_path / "checkpoints",
        board=board,
        connections=connections,
    )
    assert [poll.name for poll in polls] == ["sales"]  # no-such: skipped, logged
    [poll] = polls
    try:
        await asyncio.to_thread(poll.poll)
        await store.connections.put("warehouse", "database", {"url": f"sqlite:///{second}"})
        await asyncio.to_thread(poll.poll)
        assert poll.version == 2
        await store.connections.put("warehouse", "s3", {"region": "eu-west-1"})
        await asyncio.to_thread(poll.poll)  # fails, named; the adapter is kept
    finally:
        poll.close()
    [status] = board.statuses(datetime.now(UTC))
    assert status.last_error == (
        "adapter 'sales': connection 'warehouse' is of kind s3, not database"
    )
    async with nats_client(nats_url) as client:
        events = await read_events(client, timeout=5, subject="interlock.events.db.>")
    marks = [event.payload.get("high_water_mark") for event in events]
    assert marks == ["2026-11-24T08:00:00+00:00", "2026-11-25T08:00:00+00:00"]


def test_a_standalone_run_refuses_a_section_naming_a_connection(tmp_path: Path) -> None:
    adapters = tmp_path / "adapters.toml"
    adapters.write_text(
        '[adapters.sales]\nkind = "db.freshness"\nconnection = "warehouse"\n'
        'table = "sales"\ncolumn = "loaded_at"\n'
    )
    with pytest.raises(AdapterConfigError, match="only the service resolves"):
        load_adapter_section(adapters, "sales")
