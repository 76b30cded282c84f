"""The Publisher against a real nats-server with JetStream: storage, de-duplication, spool."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.js.api import StreamConfig

from harness.nats import nats_client, read_events
from interlock.sdk import (
    EVENTS_STREAM,
    Event,
    EventValidationError,
    NatsOptions,
    Publisher,
    PublisherConfig,
    StreamLimits,
    SyncPublisher,
    decode_event,
    ensure_streams,
)
from interlock.sdk.publisher import REFUSED_FILE
from interlock.service.embedded_nats import EmbeddedNatsServer


def config_for(url: str, spool: Path, **fields: object) -> PublisherConfig:
    options = NatsOptions(servers=(url,), reconnect_wait=0.1, connect_timeout=0.5)
    return PublisherConfig(nats=options, spool_dir=spool, source="test", **fields)  # type: ignore[arg-type]


stored_events = read_events


def numbered(count: int, start: int = 0) -> list[Event]:
    return [
        Event(event="test.numbered", resource={"id": f"r{n % 7}"}, payload={"n": n})
        for n in range(start, start + count)
    ]


async def test_every_field_arrives_unchanged(
    streams_client: Client, nats_url: str, tmp_path: Path
) -> None:
    async with Publisher(config_for(nats_url, tmp_path)) as publisher:
        event = publisher.event(
            "db.table.updated",
            "warehouse.sales",
            labels={"schema": "dw", "team": "finance"},
            related=[{"id": "airflow.load_sales", "role": "producer"}],
            payload={"rows": 1200, "watermark": "2026-11-24T08:59:00Z", "tags": ["a"]},
        )
        result = await publisher.publish(event)
    assert (result.stored, result.spooled) == (1, 0)
    [stored] = await stored_events(streams_client, 1)
    assert stored == event
    assert stored.source == "test"


async def test_a_duplicate_id_is_stored_once(
    streams_client: Client, nats_url: str, tmp_path: Path
) -> None:
    event = Event(event="test.dup", resource={"id": "x"}, source="test")
    async with Publisher(config_for(nats_url, tmp_path)) as publisher:
        await publisher.publish(event)
        await publisher.publish(event)
        await publisher.publish_many([event, event])
    stored = await stored_events(streams_client, 1)
    assert [item.id for item in stored] == [event.id]


async def test_a_batch_is_stored_in_order(
    streams_client: Client, nats_url: str, tmp_path: Path
) -> None:
    events = numbered(2000)
    async with Publisher(config_for(nats_url, tmp_path, max_in_flight=64)) as publisher:
        result = await publisher.publish_many(events)
    assert (result.stored, result.spooled) == (2000, 0)
    assert [item.payload["n"] for item in await stored_events(streams_client, 2000)] == list(
        range(2000)
    )


async def test_invalid_events_are_refused_before_anything_is_sent(
    streams_client: Client, nats_url: str, tmp_path: Path
) -> None:
    async with Publisher(config_for(nats_url, tmp_path)) as publisher:
        too_big = Event(event="test.big", resource={"id": "x"}, payload={"blob": "a" * 2_000_000})
        with pytest.raises(EventValidationError) as caught:
            await publisher.publish_many([numbered(1)[0], too_big])
        assert caught.value.field == "payload"
        assert "at most 1,000,000" in caught.value.reason  # the wire contract's limit
        with pytest.raises(EventValidationError) as caught:
            await publisher.publish(publisher.event("bad..name", "x"))
        assert caught.value.field == "event"
    assert await stored_events(streams_client, 0, timeout=0) == []


async def test_ten_thousand_events_across_a_server_outage_arrive_once_and_in_order(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    await ensure_streams(nc.jetstream())
    events = numbered(10_000)
    spooled = 0
    async with Publisher(config_for(nats_server.url, tmp_path / "spool", timeout=1.0)) as pub:
        for index in range(0, 10_000, 100):
            if index == 3000:
                nats_server.stop()
            if index == 7000:
                nats_server.restart()
            result = await pub.publish_many(events[index : index + 100])
            spooled += result.spooled
        assert await pub.flush(timeout=30)
        resent = pub.stats.resent
    assert spooled >= 4000  # everything handed over while the server was down
    assert resent >= spooled
    stored = await stored_events(nc, 10_000)
    assert [item.payload["n"] for item in stored] == list(range(10_000))
    assert len({item.id for item in stored}) == 10_000
    await nc.close()


async def test_the_next_process_sends_what_an_earlier_one_spooled(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    url = nats_server.url
    nc = await nats.connect(url)
    await ensure_streams(nc.jetstream())
    await nc.close()
    nats_server.stop()
    started = time.monotonic()
    async with Publisher(config_for(url, spool, timeout=0.5)) as publisher:
        result = await publisher.publish_many(numbered(500))
        assert (result.stored, result.spooled) == (0, 500)
        assert not await publisher.flush(timeout=0.2)
    assert time.monotonic() - started < 5  # the producer was never held for long
    assert list(spool.glob("*.jsonl"))  # left on disk for the next producer

    nats_server.start()
    async with Publisher(config_for(url, spool)) as publisher:
        await publisher.publish_many(numbered(10, start=500))
        assert await publisher.flush(timeout=20)
    nc = await nats.connect(url)
    stored = await stored_events(nc, 510)
    assert [item.payload["n"] for item in stored] == list(range(510))
    assert list(spool.glob("*.jsonl")) == []
    await nc.close()


def test_sync_publisher_never_blocks_longer_than_its_timeout(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    url = nats_server.url
    nats_server.stop()
    started = time.monotonic()
    with SyncPublisher(config_for(url, tmp_path, timeout=0.5)) as publisher:
        result = publisher.publish(publisher.event("test.sync", "x"))
        assert result.spooled == 1
    assert time.monotonic() - started < 0.5 * 3 + 1


def test_sync_publisher_publishes(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    async def prepare() -> None:
        nc = await nats.connect(nats_server.url)
        await ensure_streams(nc.jetstream())
        await nc.close()

    asyncio.run(prepare())
    with SyncPublisher(config_for(nats_server.url, tmp_path)) as publisher:
        event = publisher.event("test.sync", "x", payload={"k": 1})
        assert publisher.publish(event).stored == 1


async def test_stream_provisioning_is_idempotent_and_updates_limits(streams_client: Client) -> None:
    js = streams_client.jetstream()
    first, _ = await ensure_streams(js)
    again, _ = await ensure_streams(js)
    assert again.config.duplicate_window == first.config.duplicate_window
    changed, dead = await ensure_streams(
        js, StreamLimits(max_age=timedelta(days=2), max_bytes=50_000_000)
    )
    assert changed.config.max_age == timedelta(days=2).total_seconds()
    assert changed.config.max_bytes == 50_000_000
    assert changed.config.duplicate_window >= 120
    assert changed.config.storage == "file"
    assert dead.config.name == "INTERLOCK_DEAD"


async def test_publishing_with_unknown_stream_spools_instead_of_losing(
    nats_url: str, tmp_path: Path
) -> None:
    # No streams provisioned: JetStream has no responder for the subject.
    async with Publisher(config_for(nats_url, tmp_path / "spool", timeout=0.5)) as publisher:
        result = await publisher.publish(publisher.event("test.nostream", "x"))
        assert result.spooled == 1
        nc = await nats.connect(nats_url)
        await ensure_streams(nc.jetstream())
        assert await publisher.flush(timeout=10)
    stored = await stored_events(nc, 1)
    assert [item.event for item in stored] == ["test.nostream"]
    await nc.close()


async def test_an_event_jetstream_refuses_for_good_is_set_aside_and_holds_up_nothing(
    nats_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limited = StreamConfig(
        name=EVENTS_STREAM,
        subjects=["interlock.events.>"],
        allow_batched=True,
        max_msg_size=400,  # the stream's own limit, below NATS' max_payload
    )

    def big(n: int) -> Event:
        return Event(
            event="test.numbered", resource={"id": "r"}, payload={"n": n, "pad": "x" * 500}
        )

    async with nats_client(nats_url) as client:
        js = client.jetstream()
        await js.add_stream(limited)
        events = numbered(6)
        events[3] = big(3)
        spool = tmp_path / "spool"
        async with Publisher(config_for(nats_url, spool, timeout=2)) as publisher:
            # Published at once: the caller learns which event was refused, and why.
            result = await publisher.publish_many(events)
            assert (result.stored, result.spooled) == (5, 0)
            [refusal] = result.refused
            assert (refusal.index, refusal.id) == (3, str(events[3].id))
            assert refusal.reason == "message size exceeds maximum allowed"
            # From the spool (no stream while they were published): set aside as well.
            await js.delete_stream(EVENTS_STREAM)
            spooled = await publisher.publish_many([*numbered(1, start=6), big(7)])
            assert (spooled.stored, spooled.spooled, spooled.refused) == (0, 2, ())
            await js.add_stream(limited)
            assert await publisher.flush(timeout=10)  # the spool empties despite event 7
            assert publisher.stats.refused == 2
        stored = await stored_events(client, 1)
        assert [item.payload["n"] for item in stored] == [6]
        kept = (spool / REFUSED_FILE).read_bytes().splitlines()
        assert [decode_event(line).payload["n"] for line in kept] == [3, 7]
        assert decode_event(kept[0]) == msgspec.structs.replace(events[3], source="test")
        assert f"refused event {events[3].id} for good" in caplog.text
        assert "message size exceeds" in caplog.text


def test_unique_event_ids_by_default() -> None:
    assert len({Event(event="a.b", resource={"id": "x"}).id for _ in range(1000)}) == 1000
    assert isinstance(Event(event="a.b", resource={"id": "x"}).id, uuid.UUID)
