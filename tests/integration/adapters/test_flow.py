"""Plain Python flows: decorator and context manager emit run events, never breaking the flow."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from interlock.adapters.flow import flow, flow_run
from interlock.sdk import (
    EVENTS_STREAM,
    Event,
    NatsOptions,
    PublisherConfig,
    SyncPublisher,
    decode_event,
    ensure_streams,
)
from interlock.service.embedded_nats import EmbeddedNatsServer


async def _stored(url: str) -> list[Event]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js)
    subscription = await js.pull_subscribe(
        "interlock.events.flow.>",
        stream=EVENTS_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
    )
    try:
        messages = await subscription.fetch(100, timeout=1)
    except TimeoutError:  # nats-py raises its own subclass or a plain one
        messages = []
    await nc.close()
    return [decode_event(message.data) for message in messages]


def stored(url: str) -> list[Event]:
    return asyncio.run(_stored(url))


@pytest.fixture
def publisher(nats_url: str, tmp_path: Path) -> SyncPublisher:
    asyncio.run(_stored(nats_url))  # provisions the streams
    config = PublisherConfig(
        nats=NatsOptions(servers=(nats_url,), reconnect_wait=0.1),
        source="cron.nightly",
        spool_dir=tmp_path / "spool",
        timeout=0.5,
    )
    with SyncPublisher(config) as sync_publisher:
        yield sync_publisher


def test_decorated_function_reports_start_and_success(
    publisher: SyncPublisher, nats_url: str
) -> None:
    @flow("nightly-export", labels={"team": "finance"}, publisher=publisher)
    def export(day: str, rows: int = 10, blob: bytes = b"x" * 500) -> int:
        return rows * 2

    assert export("2026-11-24") == 20
    started, succeeded = stored(nats_url)
    assert (started.event, succeeded.event) == ("flow.run.started", "flow.run.succeeded")
    assert started.resource == {"team": "finance", "id": "nightly-export"}
    assert started.payload["run_id"] == succeeded.payload["run_id"]
    assert started.payload["parameters"]["day"] == "2026-11-24"
    assert len(started.payload["parameters"]["blob"]) <= 200  # summarized, not copied
    assert succeeded.payload["duration_s"] >= 0
    assert succeeded.source == "cron.nightly"


def test_a_failure_is_reported_and_re_raised(publisher: SyncPublisher, nats_url: str) -> None:
    @flow(publisher=publisher)
    def load() -> None:
        raise ValueError("bad row 17")

    with pytest.raises(ValueError, match="bad row 17"):
        load()
    _, failed = stored(nats_url)
    assert failed.event == "flow.run.failed"
    assert failed.resource["id"].endswith("load")
    assert failed.payload["error"]["type"] == "ValueError"
    assert failed.payload["error"]["message"] == "bad row 17"
    assert "raise ValueError" in failed.payload["error"]["traceback"]


def test_async_function_and_context_manager(publisher: SyncPublisher, nats_url: str) -> None:
    @flow("async-flow", publisher=publisher)
    async def compute(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    async def main() -> int:
        async with flow_run("block", parameters={"n": 1}, publisher=publisher) as run:
            run.payload["rows"] = 42
        return await compute(1)

    assert asyncio.run(main()) == 2
    with flow_run("sync-block", run_id="fixed-run", publisher=publisher):
        pass
    events = stored(nats_url)
    names = [(event.resource_id, event.event) for event in events]
    assert names == [
        ("block", "flow.run.started"),
        ("block", "flow.run.succeeded"),
        ("async-flow", "flow.run.started"),
        ("async-flow", "flow.run.succeeded"),
        ("sync-block", "flow.run.started"),
        ("sync-block", "flow.run.succeeded"),
    ]
    assert events[1].payload["rows"] == 42
    assert events[4].payload["run_id"] == "fixed-run"


def test_nats_down_neither_breaks_nor_stalls_the_flow(
    nats_server: EmbeddedNatsServer, publisher: SyncPublisher
) -> None:
    nats_server.stop()

    @flow("while-down", publisher=publisher)
    def work() -> str:
        return "done"

    started = time.monotonic()
    assert work() == "done"
    assert time.monotonic() - started < 3  # bounded by the publish timeout
    nats_server.start()
    assert publisher.flush(timeout=20)
    assert [event.event for event in stored(nats_server.url)] == [
        "flow.run.started",
        "flow.run.succeeded",
    ]
