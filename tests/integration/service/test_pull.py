"""The pipeline's pull fetcher against a real nats-server with JetStream."""

from __future__ import annotations

import asyncio
import time

import pytest
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from interlock.sdk import EVENTS_STREAM, subject_filter
from interlock.service.pipeline.pull import PullFetcher

CONSUMER = "pull-test"


async def create_consumer(streams_client: NATS, start: int = 1) -> None:
    await streams_client.jetstream().add_consumer(
        EVENTS_STREAM,
        ConsumerConfig(
            durable_name=CONSUMER,
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            filter_subject=subject_filter(">"),
        ),
    )


async def started_fetcher(streams_client: NATS) -> PullFetcher:
    """A new consumer from the stream's start, and a started fetcher of it."""
    await create_consumer(streams_client)
    fetcher = PullFetcher(streams_client, EVENTS_STREAM, CONSUMER)
    await fetcher.start()
    return fetcher


async def publish(streams_client: NATS, count: int, first: int = 0) -> None:
    js = streams_client.jetstream()
    for n in range(first, first + count):
        await js.publish(f"interlock.events.test.n{n}", str(n).encode())


async def test_an_empty_wait_returns_nothing_and_the_next_fetch_gets_what_came_since(
    streams_client: NATS,
) -> None:
    fetcher = await started_fetcher(streams_client)
    started = time.monotonic()
    assert await fetcher.fetch(1, 0.3) == []
    assert time.monotonic() - started < 2
    await publish(streams_client, 1)
    [message] = await fetcher.fetch(1, 5)
    assert message.data == b"0"
    await fetcher.close()


async def test_a_backlog_comes_in_stream_order_in_batches_and_ack_all_covers_it(
    streams_client: NATS,
) -> None:
    await publish(streams_client, 600)
    fetcher = await started_fetcher(streams_client)
    seen: list[int] = []
    while len(seen) < 600:
        batch = await fetcher.fetch(256, 5)
        assert batch, f"stalled after {len(seen)} messages"
        assert len(batch) <= 256
        seen.extend(int(m.data) for m in batch)
        await batch[-1].ack()
    assert seen == list(range(600))
    assert await fetcher.fetch(10, 0.2) == []
    await streams_client.flush()
    info = await streams_client.jetstream().consumer_info(EVENTS_STREAM, CONSUMER)
    assert info.num_ack_pending == 0
    assert info.num_pending == 0
    await fetcher.close()


async def test_a_deleted_consumer_is_reported_and_a_new_one_redelivers_from_its_start(
    streams_client: NATS,
) -> None:
    await publish(streams_client, 3)
    fetcher = await started_fetcher(streams_client)
    assert [m.data for m in await fetcher.fetch(3, 5)] == [b"0", b"1", b"2"]
    waiting = asyncio.ensure_future(fetcher.fetch(1, 5))  # a request is open
    await asyncio.sleep(0.2)
    await streams_client.jetstream().delete_consumer(EVENTS_STREAM, CONSUMER)
    with pytest.raises(NotFoundError):
        await waiting
    await create_consumer(streams_client, start=2)
    await fetcher.start()
    assert [m.data for m in await fetcher.fetch(5, 1)] == [b"1", b"2"]
    await fetcher.close()


async def test_a_trickle_is_served_by_one_open_request_each_message_as_it_arrives(
    streams_client: NATS, nats_url: str
) -> None:
    # Caught up, a fetch of a whole batch returns each message the moment it arrives
    # (its pending count says nothing more waits), and the next fetch waits on the same
    # open request instead of sending one per message.
    watcher = NATS()
    await watcher.connect(nats_url)
    requests: list[bytes] = []

    async def count(msg: object) -> None:
        requests.append(getattr(msg, "data", b""))

    await watcher.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{CONSUMER}", cb=count)
    await watcher.flush()
    fetcher = await started_fetcher(streams_client)
    try:
        for n in range(5):
            fetching = asyncio.ensure_future(fetcher.fetch(256, 10))
            await asyncio.sleep(0.05)
            await publish(streams_client, 1, first=n)
            started = time.monotonic()
            [message] = await fetching
            assert message.data == str(n).encode()
            assert time.monotonic() - started < 5  # not at the request's expiry
        await watcher.flush()
        assert len(requests) == 1, requests
    finally:
        await fetcher.close()
        await watcher.close()
