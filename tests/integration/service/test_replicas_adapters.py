"""An adapter's cursor follows the ``scheduler`` lease between replicas (issue 19).

Real processes: two ``interlock server`` replicas on one nats-server and one PostgreSQL
database, each with the same ``[adapters.orders]``: a ``db.rows`` adapter on a SQLite
table, batches of 5 from the beginning, whose URL comes from the connection
``warehouse`` (each replica resolves it, as a single server does). Replica ``a`` holds
the ``scheduler`` lease and reports rows 1-3, then 4-6; it stops (releasing its leases),
``b`` takes the schedules over and reports rows 7-9. Every row is reported exactly
once: ``b`` went on from ``a``'s cursor (in the database) instead of its own (a file of
its data directory, which it does not have: it would report rows 1-5 again, under
another event id).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from cryptography.fernet import Fernet
from nats.js.api import DeliverPolicy

from harness.nats import nats_client
from harness.replicas import ReplicaProcess
from interlock.sdk import EVENTS_STREAM
from interlock.service.store import Store

pytestmark = pytest.mark.slow

ADAPTERS = """
[adapters.orders]
kind = "db.rows"
interval = "500ms"
connection = "warehouse"
table = "orders"
key_column = "id"
batch_size = 5
start = "beginning"
"""


async def _add_connection(database_url: str, key: str, warehouse_url: str) -> None:
    store = Store(database_url, secret_key=key)
    try:
        await store.migrate()
        await store.connections.put("warehouse", "database", {"url": warehouse_url})
    finally:
        await store.close()


async def _reported(url: str) -> Counter[int]:
    """How many times each order id was reported in a stored ``db.rows.inserted``."""
    found: Counter[int] = Counter()
    async with nats_client(url) as client:
        js = client.jetstream()
        subscription = await js.subscribe(
            "interlock.events.db.rows.inserted",
            stream=EVENTS_STREAM,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        info = await js.stream_info(EVENTS_STREAM)
        if info.state.messages:
            while True:
                try:
                    message = await subscription.next_msg(timeout=1)
                except TimeoutError:
                    break
                payload = msgspec.json.decode(message.data)["payload"]
                found.update(range(payload["first_key"], payload["last_key"] + 1))
        await subscription.unsubscribe()
    return found


def _insert(warehouse: Path, ids: range) -> None:
    with sqlite3.connect(warehouse) as connection:
        connection.executemany("INSERT INTO orders VALUES (?)", [(n,) for n in ids])


def _wait_reported(url: str, last: int, timeout: float = 30) -> Counter[int]:
    deadline = time.monotonic() + timeout
    while last not in (found := asyncio.run(_reported(url))):
        if time.monotonic() > deadline:
            raise AssertionError(f"order {last} not reported after {timeout} s: {found}")
        time.sleep(0.3)
    return found


def _scheduler_role(replica: ReplicaProcess) -> str:
    return str(replica.health().get("replica", {}).get("scheduler", ""))


def test_an_adapters_cursor_survives_a_takeover_of_the_schedules(
    tmp_path: Path, nats_url: str, postgres_url: str
) -> None:
    warehouse = tmp_path / "warehouse.db"
    with sqlite3.connect(warehouse) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    key = Fernet.generate_key().decode()
    asyncio.run(_add_connection(postgres_url, key, f"sqlite:///{warehouse}"))
    a, b = (
        ReplicaProcess(
            tmp_path / name,
            name,
            nats_url=nats_url,
            database_url=postgres_url,
            secret_key=key,
            env={"INTERLOCK_REPLICAS__LEASE_TTL": "3s"},
        )
        for name in ("a", "b")
    )
    for replica in (a, b):
        (replica.workdir / "adapters.toml").write_text(ADAPTERS)
    try:
        a.start()
        a.wait_role("owner", 30)
        b.start()
        b.wait_role("standby", 30)
        assert _scheduler_role(a) == "owner"
        _insert(warehouse, range(1, 4))
        _wait_reported(nats_url, 3)
        _insert(warehouse, range(4, 7))
        _wait_reported(nats_url, 6)
        a.stop()  # releases the scheduler lease: b takes it over at once
        deadline = time.monotonic() + 15
        while _scheduler_role(b) != "owner":
            assert time.monotonic() < deadline, b.output()[-3000:]
            time.sleep(0.05)
        _insert(warehouse, range(7, 10))
        _wait_reported(nats_url, 9)
        time.sleep(2)  # polls that would report a row again, report it now
        found = asyncio.run(_reported(nats_url))
    finally:
        a.stop()
        b.stop()
    assert found == Counter(range(1, 10)), f"reported other than once each: {found}"
    assert "checkpoints in the database" in b.output()
