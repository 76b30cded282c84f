"""EventLog reads INTERLOCK_EVENTS back from a real JetStream: by time, by cursor, live."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nats.aio.client import Client

from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.sdk.event import Event
from interlock.sdk.subjects import EVENTS_STREAM, subject_for
from interlock.service.api.event_log import EventFilter, EventLog


async def _publish(nats_url: str, tmp_path: Path, events: list[Event]) -> None:
    config = PublisherConfig(
        nats=NatsOptions(servers=(nats_url,)), source="test", spool_dir=tmp_path / "spool"
    )
    async with Publisher(config) as publisher:
        await publisher.publish_many(events)


def _events(count: int, name: str = "db.table.updated", prefix: str = "warehouse") -> list[Event]:
    return [
        Event(event=name, resource={"id": f"{prefix}.t{n}", "team": "sales" if n % 2 else "ops"})
        for n in range(count)
    ]


async def test_read_pages_through_the_stream_with_a_cursor(
    streams_client: Client, nats_url: str, tmp_path: Path
) -> None:
    sent = _events(25)
    await _publish(nats_url, tmp_path, sent)
    log = EventLog(NatsOptions(servers=(nats_url,)))
    try:
        seen: list[Event] = []
        after = None
        while True:
            page = await log.read(EventFilter(), after=after, limit=10)
            seen.extend(e.event for e in page.events if e.event is not None)
            if page.next_after is None:
                break
            after = page.next_after
        assert [e.id for e in seen] == [e.id for e in sent]
        assert page.last_sequence == 25
    finally:
        await log.close()


async def test_read_filters_by_name_resource_label_and_time(
    streams_client: Client, nats_url: str, tmp_path: Path
) -> None:
    await _publish(nats_url, tmp_path, _events(4, "s3.object.created", "s3://landing"))
    middle = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await _publish(nats_url, tmp_path, _events(6))
    log = EventLog(NatsOptions(servers=(nats_url,)))
    try:
        by_name = await log.read(EventFilter(name="s3.object.*"))
        assert len(by_name.events) == 4
        by_resource = await log.read(EventFilter(resource="warehouse.t[12]"))
        assert [e.event.resource["id"] for e in by_resource.events if e.event] == [
            "warehouse.t1",
            "warehouse.t2",
        ]
        by_label = await log.read(EventFilter(name="db.>", label="team=sales"))
        assert len(by_label.events) == 3
        since = await log.read(EventFilter(), since=middle)
        assert {e.name for e in since.events} == {"db.table.updated"}
        until = await log.read(EventFilter(), until=middle)
        assert {e.name for e in until.events} == {"s3.object.created"}
    finally:
        await log.close()


async def test_a_scan_stops_at_max_scan_with_a_cursor(
    streams_client: Client, nats_url: str, tmp_path: Path
) -> None:
    await _publish(nats_url, tmp_path, _events(50))
    log = EventLog(NatsOptions(servers=(nats_url,)))
    try:
        page = await log.read(EventFilter(resource="nothing.*"), max_scan=20)
        assert (page.events, page.scanned, page.next_after) == ([], 20, 20)
        rest = await log.read(EventFilter(resource="nothing.*"), after=page.next_after)
        assert (rest.scanned, rest.next_after) == (30, None)
    finally:
        await log.close()


async def test_latest_is_the_newest_first_across_chunks(
    streams_client: Client, nats_url: str, tmp_path: Path
) -> None:
    sent = _events(700)
    await _publish(nats_url, tmp_path, sent)
    log = EventLog(NatsOptions(servers=(nats_url,)))
    try:
        page = await log.latest(EventFilter(), limit=5)
        assert [e.sequence for e in page.events] == [700, 699, 698, 697, 696]
        sparse = await log.latest(EventFilter(resource="warehouse.t1?"), limit=20)
        assert [e.event.resource["id"] for e in sparse.events if e.event] == [
            f"warehouse.t{n}" for n in range(19, 9, -1)
        ]
        assert sparse.scanned == 700  # read back through three chunks to the first event
    finally:
        await log.close()


async def test_follow_delivers_what_is_stored_after_a_position(
    streams_client: Client, nats_url: str, tmp_path: Path
) -> None:
    await _publish(nats_url, tmp_path, _events(3))
    log = EventLog(NatsOptions(servers=(nats_url,)))
    got: list[int] = []

    async def collect() -> None:
        async for _position, batch in log.follow(EventFilter(), after=2, wake_every=0.2):
            got.extend(e.sequence for e in batch)
            if len(got) >= 3:
                return

    try:
        task = asyncio.create_task(collect())
        await asyncio.sleep(0.3)
        await _publish(nats_url, tmp_path, _events(2))
        await asyncio.wait_for(task, 10)
        assert got == [3, 4, 5]
    finally:
        await log.close()


async def test_get_and_an_invalid_message(
    streams_client: Client, nats_url: str, tmp_path: Path
) -> None:
    js = streams_client.jetstream()
    await js.publish(subject_for("bad.one"), b"{not json")
    log = EventLog(NatsOptions(servers=(nats_url,)))
    try:
        logged = await log.get(1)
        assert logged is not None
        assert logged.event is None
        assert logged.name == "bad.one"
        assert logged.raw == "{not json"
        assert logged.problem
        assert await log.get(99) is None
        assert await log.consumer_lag("nobody") is None
        info = await js.stream_info(EVENTS_STREAM)
        assert info.state.consumer_count == 0  # every read's consumer was deleted
        assert logged.stored_at > datetime.now(UTC) - timedelta(minutes=1)
    finally:
        await log.close()
