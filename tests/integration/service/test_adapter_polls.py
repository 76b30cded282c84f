"""Adapters polled by the service's scheduler: a table refreshed → its rule fires.

The ``db.freshness`` adapter watches a real SQLite table; the service polls it from an
``[adapters.NAME]`` section (the format of ``interlock adapter run``), publishes
``db.table.updated`` to NATS, and a rule on it fires its webhook. A broken section is
reported and skipped; the service runs on. Checkpoints go to the data directory; every
poll shows in ``GET /api/adapters``, ``interlock adapters list`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
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
    nats_url: str,
    sqlite_url: str,
    tmp_path: Path,
    receiver: HttpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)  # so that a checkpoint left in ./.interlock would show
    caplog.set_level(logging.INFO, logger="interlock.service.adapter_polls")
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
url = "sqlite:///{warehouse}"
table = "sales"
column = "loaded_at"

[adapters.missing-table]
kind = "db.freshness"
interval = "1s"
url = "sqlite:///{warehouse}"
table = "no_such_table"
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
        assert set(service.scheduler.adapters) == {"sales", "missing-table"}  # not "broken"
        said = [record.getMessage() for record in caplog.records]
        assert (
            "adapter sales (db.freshness) polled every 1s; checkpoints in "
            f"{tmp_path / 'data' / 'checkpoints'}" in said
        )
        with sqlite3.connect(warehouse) as connection:
            connection.execute("INSERT INTO sales VALUES (2, '2026-11-24T09:00:00+00:00')")
        [refreshed] = await asyncio.to_thread(receiver.wait_for, 1, "/refreshed", 30)
        assert refreshed.json() == {"table": "warehouse.sales"}
        jobs = dict(service.scheduler.jobs())
        assert "adapter:sales" in jobs
        # Checkpoints in the data directory, none in the working directory.
        assert (tmp_path / "data" / "checkpoints" / "sales.json").is_file()
        assert not (tmp_path / ".interlock").exists()

        async with httpx.AsyncClient(base_url=service.api_url) as client:
            adapters = {a["name"]: a for a in (await client.get("/api/adapters")).json()}
            metrics = (await client.get("/metrics")).text
        assert set(adapters) == {"sales", "missing-table"}
        sales, missing = adapters["sales"], adapters["missing-table"]
        assert (sales["kind"], sales["interval_seconds"]) == ("db.freshness", 1.0)
        assert sales["events"] >= 1
        assert sales["consecutive_failures"] == 0
        assert sales["last_success_at"] is not None
        assert 0 <= sales["lag_seconds"] < 30
        assert sales["next_poll_at"] > sales["last_poll_at"]
        assert missing["consecutive_failures"] >= 1
        assert missing["last_success_at"] is None
        assert "no_such_table" in missing["last_error"]
        assert 'interlock_adapter_polls_total{adapter="sales",outcome="succeeded"}' in metrics
        assert 'interlock_adapter_polls_total{adapter="missing-table",outcome="failed"}' in metrics
        assert 'interlock_adapter_lag_seconds{adapter="sales"}' in metrics

        listed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "interlock.sdk.cli", "adapters", "list"],
            env={"INTERLOCK_API_URL": service.api_url, "PATH": ""},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        header, *rows = listed.stdout.splitlines()
        assert header.split()[:5] == ["NAME", "KIND", "EVERY", "LAST_POLL_AT", "LAG"]
        assert [row.split()[0] for row in rows] == ["missing-table", "sales"]
