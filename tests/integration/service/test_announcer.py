"""The announcer publishes stored firings as ``interlock.rule.*`` events, against real NATS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.nats import nats_client, read_events
from interlock.rules.engine.firing import Firing, firing_id
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.sdk.streams import ensure_streams
from interlock.service.embedded_nats import EmbeddedNatsServer
from interlock.service.pipeline.announcer import Announcer

pytestmark = pytest.mark.slow

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def firing(number: int, status: str = "fired") -> Firing:
    return Firing(
        id=firing_id("sales-sla", f"key-{number}", status, number),
        rule="sales-sla",
        key=f"key-{number}",
        status=status,  # type: ignore[arg-type]
        at=AT,
        window_end=AT,
        late=number % 2 == 0,
        summary=f"firing {number}",
    )


async def publisher_for(nats_url: str, spool: Path) -> Publisher:
    async with nats_client(nats_url) as client:
        await ensure_streams(client.jetstream())
    options = NatsOptions(servers=(nats_url,), name="announcer-test")
    publisher = Publisher(PublisherConfig(nats=options, source="interlock", spool_dir=spool))
    return await publisher.connect()


async def test_firings_are_announced_in_order_and_close_publishes_the_queue(
    nats_url: str, tmp_path: Path
) -> None:
    publisher = await publisher_for(nats_url, tmp_path / "spool")
    announcer = Announcer(publisher, limit=3)
    announcer.start()
    firings = [firing(n, "resolved" if n == 7 else "fired") for n in range(10)]
    # Submitted faster than published: the bounded queue makes later submits wait.
    await asyncio.gather(*(announcer.submit(firings[i : i + 2]) for i in range(0, 10, 2)))
    await announcer.close()
    await publisher.close()

    async with nats_client(nats_url) as client:
        events = await read_events(client, expected=10)
    assert [event.id for event in events] == [f.id for f in firings]
    assert [event.event for event in events].count("interlock.rule.resolved") == 1
    first = events[0]
    assert first.source == "interlock"
    assert first.resource_id == "sales-sla"
    assert first.payload["firing_id"] == str(firings[0].id)
    assert first.payload["late"] is True
    assert first.payload["window_end"] == AT.isoformat()
    assert first.payload["summary"] == "firing 0"
    assert announcer.published == 10


async def test_a_replayed_firing_is_announced_once(nats_url: str, tmp_path: Path) -> None:
    publisher = await publisher_for(nats_url, tmp_path / "spool")
    announcer = Announcer(publisher)
    announcer.start()
    await announcer.submit([firing(1), firing(2)])
    await announcer.submit([firing(1)])  # the pipeline replaying after a restart
    await announcer.close()
    await publisher.close()

    async with nats_client(nats_url) as client:
        events = await read_events(client, expected=2)
    assert len(events) == 2
    assert sorted(event.payload["key"] for event in events) == ["key-1", "key-2"]


async def test_announcements_made_while_nats_is_down_arrive_after_it_returns(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    publisher = await publisher_for(nats_server.url, tmp_path / "spool")
    announcer = Announcer(publisher)
    announcer.start()
    nats_server.stop()
    await announcer.submit([firing(n) for n in range(5)])
    await asyncio.sleep(0.2)
    nats_server.restart()
    assert await publisher.flush(timeout=20)
    await announcer.close()
    await publisher.close()

    async with nats_client(nats_server.url) as client:
        events = await read_events(client, expected=5)
    assert sorted(event.payload["key"] for event in events) == [f"key-{n}" for n in range(5)]
