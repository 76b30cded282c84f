"""Adapters polled by the service's scheduler: a table refreshed → its rule fires.

The ``db.freshness`` adapter watches a real SQLite table; the service polls it from an
``[adapters.NAME]`` section (the format of ``interlock adapter run``), publishes
``db.table.updated`` to NATS, and a rule on it fires its webhook. A broken section is
reported and skipped; the service runs on.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from harness.receiver import HttpReceiver, http_receiver
from interlock.service.server import Service
from interlock.service.settings import load_settings

pytestmark = pytest.mark.slow

RULES = """
from interlock.rules import Rule, on, webhook

refreshed = Rule(
    name="sales-refreshed",
    when=on("db.table.updated", for_each="resource.id"),
    then=[webhook("{url}/refreshed", body={{"table": "{{{{ key }}}}"}})],
)
"""


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


async def test_the_service_polls_an_adapter_and_its_events_fire_rules(
    nats_url: str, sqlite_url: str, tmp_path: Path, receiver: HttpReceiver
) -> None:
    warehouse = tmp_path / "warehouse.db"
    with sqlite3.connect(warehouse) as connection:
        connection.execute("CREATE TABLE sales (id INTEGER, loaded_at TEXT)")
        connection.execute("INSERT INTO sales VALUES (1, '2026-11-24T08:00:00+00:00')")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sales.py").write_text(RULES.format(url=receiver.url))
    adapters = tmp_path / "adapters.toml"
    adapters.write_text(
        f"""
[adapters.sales]
kind = "db.freshness"
interval = "1s"
checkpoint_dir = "{tmp_path / "checkpoints"}"
url = "sqlite:///{warehouse}"
table = "sales"
column = "loaded_at"

[adapters.broken]
kind = "no.such.kind"
"""
    )
    settings = load_settings(
        None,
        database_url=sqlite_url,
        nats_url=nats_url,
        secret_key=Fernet.generate_key().decode(),
        data_dir=tmp_path / "data",
        rules_dir=rules,
        adapters_file=adapters,
        api={"port": 0},
    )
    async with Service(settings, worker=False) as service:
        assert service.scheduler is not None
        assert set(service.scheduler.adapters) == {"sales"}  # "broken" reported, skipped
        with sqlite3.connect(warehouse) as connection:
            connection.execute("INSERT INTO sales VALUES (2, '2026-11-24T09:00:00+00:00')")
        [refreshed] = await asyncio.to_thread(receiver.wait_for, 1, "/refreshed", 30)
        assert refreshed.json() == {"table": "warehouse.sales"}
        jobs = dict(service.scheduler.jobs())
        assert "adapter:sales" in jobs
