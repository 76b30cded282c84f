"""The whole service in one process: SDK event → rule → action received over HTTP.

``Service`` runs as ``interlock server`` does (pipeline, dispatcher, worker, scheduler,
API), on a real NATS JetStream server and a real database, with Apprise and webhooks
delivered to a local HTTP receiver and deployment runs executed by the in-process worker.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
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
from interlock.rules import Rule, absent, heartbeat, notify, on, payload, run_deployment, webhook

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
    then=[
        notify(
            "json://127.0.0.1:{port}/missed",
            title="{{{{ key }}}} was not updated",
            body="rule {{{{ rule.name }}}} missed its deadline; backfilling",
        ),
        run_deployment("backfill-table", parameters={{"table": "{{{{ key }}}}"}}),
    ],
    on_resolved=[webhook("http://127.0.0.1:{port}/resolved", body={{"table": "{{{{ key }}}}"}})],
)
"""

DEPLOYMENTS = """
[deployments.backfill-table]
queue = "default"
target = {{ type = "process", command = [
    {python}, "-c",
    "import json, os; print('backfilled', json.loads(os.environ['INTERLOCK_PARAMETERS'])['table'])",
] }}
"""


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
    deployments = tmp_path / "deployments.toml"
    deployments.write_text(DEPLOYMENTS.format(python=json.dumps(sys.executable)))
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
            deployments_file=deployments,
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
            if len(registry.executors) >= 3:
                break
            await asyncio.sleep(0.05)
        assert set(registry.executors) == {"notify", "webhook", "run_deployment"}
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
    async with (
        running_service() as service,
        httpx.AsyncClient(base_url=service.api_url) as client,
    ):
        [missed] = await received(receiver, 1, "/missed")
        assert missed.json()["title"] == "warehouse.sales was not updated"
        assert missed.json()["message"] == "rule table-silent missed its deadline; backfilling"
        run = await finished_run(client, "backfill-table")
        assert run["state"] == "completed", run
        assert run["parameters"] == {"table": "warehouse.sales"}
        log = await client.get(f"/api/runs/{run['id']}/logs")
        assert "backfilled warehouse.sales" in log.text
        await publish(nats_url, tmp_path, ("db.table.updated", "warehouse.sales", {"rows": 3}))
        [resolved] = await received(receiver, 1, "/resolved")
        assert resolved.json() == {"table": "warehouse.sales"}
        assert resolved.headers.get("Idempotency-Key")


async def test_stopping_with_a_live_page_open_ends_its_stream_and_does_not_wait_for_it(
    running_service: ServiceFactory,
) -> None:
    """Service.stop ends the UI's open streams before the web server stops.

    A web server waits for open responses before it stops; an events page's stream sends
    only a keep-alive every 15 s, so without this the stop waited for Service.stop's
    10 s limit on its components and then cancelled the web server.
    """
    async with httpx.AsyncClient(timeout=30) as client:
        async with running_service(worker=False) as service:
            request = client.build_request("GET", f"{service.api_url}/events/stream")
            response = await client.send(request, stream=True)
            assert response.status_code == 200, await response.aread()
            lines = response.aiter_lines()
            assert await anext(lines) == ": connected"  # the stream is open
            stopping = time.monotonic()
        took = time.monotonic() - stopping  # the service stopped, the page still open
        assert took < 5, f"stopping took {took:.1f} s with a page open"
        async with asyncio.timeout(5):
            rest = [line async for line in lines]  # the server ended it, no error
        await response.aclose()
    assert ": keep-alive" not in rest


async def finished_run(client: httpx.AsyncClient, deployment: str) -> dict[str, Any]:
    """The deployment's one run, once it has ended (completed, failed, crashed, ...)."""
    for _ in range(600):
        runs = (await client.get("/api/runs", params={"deployment": deployment})).json()
        if runs and runs[0]["state"] not in {"scheduled", "pending", "running"}:
            assert len(runs) == 1, runs
            run: dict[str, Any] = runs[0]
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"no run of {deployment} ended within 30 s: {runs}")
