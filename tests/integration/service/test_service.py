"""The whole service in one process: SDK event → rule → action received over HTTP.

``Service`` runs as ``interlock server`` does (pipeline, dispatcher, worker, scheduler,
API), on a real NATS JetStream server and a real database, with Apprise and webhooks
delivered to a local HTTP receiver.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from harness.receiver import HttpReceiver, http_receiver
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.service.server import Service
from interlock.service.settings import load_settings

pytestmark = pytest.mark.slow

RULES = """
from interlock.rules import Rule, absent, heartbeat, notify, on, payload, webhook

failed = Rule(
    name="load-failed",
    when=on("job.failed", where=payload.attempt >= 2, for_each="resource.id"),
    then=[
        notify(
            "json://127.0.0.1:{port}/notify",
            title="{{{{ key }}}} failed on attempt {{{{ event.payload.attempt }}}}",
            body="rule {{{{ rule.name }}}}, status {{{{ firing.status }}}}",
        )
    ],
)

silent = Rule(
    name="table-silent",
    when=absent("db.table.updated", by=heartbeat("2s"), for_each="resource.id",
                keys=["warehouse.sales"]),
    then=[webhook("http://127.0.0.1:{port}/missed", body={{"table": "{{{{ key }}}}"}})],
    on_resolved=[webhook("http://127.0.0.1:{port}/resolved", body={{"table": "{{{{ key }}}}"}})],
)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'interlock.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


ServiceFactory = Callable[..., AbstractAsyncContextManager[Service]]


@pytest.fixture
def running_service(
    database_url: str, nats_url: str, tmp_path: Path, receiver: HttpReceiver
) -> ServiceFactory:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "test_rules.py").write_text(RULES.format(port=receiver.port))
    key = Fernet.generate_key().decode()

    @asynccontextmanager
    async def run(**options: Any) -> AsyncIterator[Service]:
        settings = load_settings(
            None,
            database_url=database_url,
            nats_url=nats_url,
            secret_key=key,
            data_dir=tmp_path / "data",
            rules_dir=rules_dir,
            api={"port": 0},
            engine={"consumer_max_wait": "50ms"},
            actions={"backoff_initial": "50ms"},
        )
        async with Service(settings, **options) as service:
            yield service

    return run


async def publish(nats_url: str, tmp_path: Path, *events: tuple[str, str, dict[str, Any]]) -> None:
    config = PublisherConfig(
        nats=NatsOptions(servers=(nats_url,)), source="test", spool_dir=tmp_path / "producer"
    )
    async with Publisher(config) as publisher:
        await publisher.publish_many(
            publisher.event(name, resource, payload=data) for name, resource, data in events
        )


async def received(receiver: HttpReceiver, count: int, path: str) -> list[Any]:
    return await asyncio.to_thread(receiver.wait_for, count, path, 30)


async def test_an_event_from_the_sdk_ends_as_an_apprise_notification(
    running_service: ServiceFactory, receiver: HttpReceiver, nats_url: str, tmp_path: Path
) -> None:
    async with running_service(worker=False) as service:
        async with httpx.AsyncClient(base_url=service.api_url) as client:
            health = await client.get("/api/health")
            assert health.status_code == 200, health.text
        # The executors of the kinds the rules use are built after start, before any
        # action runs; the others (Airflow, Prefect, ...) only when an action needs them.
        assert service.dispatcher is not None
        registry = service.dispatcher.registry
        for _ in range(200):
            if len(registry.executors) >= 2:
                break
            await asyncio.sleep(0.05)
        assert set(registry.executors) == {"notify", "webhook"}
        assert {"airflow_trigger_dag", "prefect_run_deployment", "emit"} <= registry.kinds
        await publish(
            nats_url,
            tmp_path,
            ("job.failed", "etl.sales", {"attempt": 1}),
            ("job.failed", "etl.sales", {"attempt": 2}),
        )
        [notification] = await received(receiver, 1, "/notify")
        message = notification.json()
        assert message["title"] == "etl.sales failed on attempt 2"
        assert message["message"] == "rule load-failed, status fired"


async def test_an_sla_missed_in_real_time_then_resolved_by_a_late_event(
    running_service: ServiceFactory, receiver: HttpReceiver, nats_url: str, tmp_path: Path
) -> None:
    async with running_service(worker=False):
        [missed] = await received(receiver, 1, "/missed")
        assert missed.json() == {"table": "warehouse.sales"}
        assert missed.headers.get("Idempotency-Key")
        await publish(nats_url, tmp_path, ("db.table.updated", "warehouse.sales", {"rows": 3}))
        [resolved] = await received(receiver, 1, "/resolved")
        assert resolved.json() == {"table": "warehouse.sales"}
