"""Queues and deployments declared in TOML are created once, and bad files say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlock.sdk.errors import ConfigurationError
from interlock.service.declared import apply_declared
from interlock.service.store import Store

DECLARED = """
[queues.etl]
concurrency_limit = 2

[deployments.backfill-sales]
queue = "etl"
description = "Reload one day of sales"
parameters = { date = "today" }
target = { type = "process", command = ["python", "-c", "print('ok')"] }
policy = { retries = 2, retry_delay = 60, timeout = 3600 }
concurrency_limit = 1

[deployments.sales-dag]
target = { type = "airflow", connection = "prod-airflow", dag_id = "sales_daily" }
"""


async def test_declared_queues_and_deployments_are_created_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "deployments.toml"
    path.write_text(DECLARED)
    async with Store(sqlite_url) as store:
        await store.migrate()
        created = await apply_declared(store, path)
        assert created == [
            "queue default",
            "queue etl",
            "deployment backfill-sales",
            "deployment sales-dag",
        ]
        assert await apply_declared(store, path) == []
        deployment = await store.deployments.get("backfill-sales")
        assert (deployment.queue, deployment.parameters) == ("etl", {"date": "today"})
        assert (await store.queues.get("etl")).concurrency_limit == 2
        assert deployment.policy == {"retries": 2, "retry_delay": 60.0, "timeout": 3600.0}
        assert deployment.concurrency_limit == 1
        # Its connection may come later (a rule starting it is warned at apply meanwhile).
        assert (await store.deployments.get("sales-dag")).target["type"] == "airflow"


async def test_a_missing_file_declares_only_the_default_queue(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with Store(sqlite_url) as store:
        await store.migrate()
        assert await apply_declared(store, tmp_path / "absent.toml") == ["queue default"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[deployments.x\n", "is not valid TOML"),
        ("[jobs.x]\n", "unknown tables ['jobs']"),
        ('[deployments.x]\nqueue = "default"\n', "[deployments.x]: needs a target"),
        ('[deployments.x]\ntarget = {type = "process"}\ncron = "*"\n', "unknown fields ['cron']"),
        (
            '[deployments.x]\nqueue = "nope"\ntarget = {type = "process", command = ["x"]}\n',
            "queue 'nope'",
        ),
        (
            '[deployments.x]\ntarget = {type = "ftp"}\n',
            "target.type is not a known target type 'ftp' (known: airflow, http, prefect",
        ),
        ('[deployments.x]\ntarget = {type = "airflow", dag_id = "d"}\n', "target.connection"),
        (
            '[deployments.x]\ntarget = {type = "process", command = ["x"]}\n'
            "policy = {retries = -1}\n",
            "policy.retries must be a whole number 0 to 100",
        ),
    ],
)
async def test_a_bad_file_names_the_file_and_the_entry(
    sqlite_url: str, tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "deployments.toml"
    path.write_text(text)
    async with Store(sqlite_url) as store:
        await store.migrate()
        with pytest.raises(ConfigurationError) as raised:
            await apply_declared(store, path)
    assert str(path) in str(raised.value)
    assert problem in str(raised.value)
