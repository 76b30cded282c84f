"""The pipeline's pull fetcher against a real nats-server with JetStream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from interlock.sdk import EVENTS_STREAM, ensure_streams, subject_filter
from interlock.service.pipeline.pull import PullFetcher

CONSUMER = "pull-test"


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    await ensure_streams(client.jetstream())
    yield client
    await client.close()


async def create_consumer(nc: NATS, start: int = 1) -> None:
    await nc.jetstream().add_consumer(
        EVENTS_STREAM,
        ConsumerConfig(
            durable_name=CONSUMER,
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            filter_subject=subject_filter(">"),
        ),
    )


async def publish(nc: NATS, count: int, first: int = 0) -> None:
    js = nc.jetstream()
    for n in range(first, first + count):
        await js.publish(f"interlock.events.test.n{n}", str(n).encode())


async def test_an_empty_wait_returns_nothing_and_the_next_fetch_gets_what_came_since(
    nc: NATS,
) -> None:
    await create_consumer(nc)
    fetcher = PullFetcher(nc, EVENTS_STREAM, CONSUMER)
    await fetcher.start()
    started = time.monotonic()
    assert await fetcher.fetch(1, 0.3) == []
    assert time.monotonic() - started < 2
    await publish(nc, 1)
    [message] = await fetcher.fetch(1, 5)
    assert message.data == b"0"
    await fetcher.close()


async def test_a_backlog_comes_in_stream_order_in_batches_and_ack_all_covers_it(
    nc: NATS,
) -> None:
    await publish(nc, 600)
    await create_consumer(nc)
    fetcher = PullFetcher(nc, EVENTS_STREAM, CONSUMER)
    await fetcher.start()
    seen: list[int] = []
    while len(seen) < 600:
        batch = await fetcher.fetch(256, 5)
        assert batch, f"stalled after {len(seen)} messages"
        assert len(batch) <= 256
        seen.extend(int(m.data) for m in batch)
        await batch[-1].ack()
    assert seen == list(range(600))
    assert await fetcher.fetch(10, 0.2) == []
    await nc.flush()
    info = await nc.jetstream().consumer_info(EVENTS_STREAM, CONSUMER)
    assert info.num_ack_pending == 0
    assert info.num_pending == 0
    await fetcher.close()


async def test_a_deleted_consumer_is_reported_and_a_new_one_redelivers_from_its_start(
    nc: NATS,
) -> None:
    await publish(nc, 3)
    await create_consumer(nc)
    fetcher = PullFetcher(nc, EVENTS_STREAM, CONSUMER)
    await fetcher.start()
    assert [m.data for m in await fetcher.fetch(3, 5)] == [b"0", b"1", b"2"]
    waiting = asyncio.ensure_future(fetcher.fetch(1, 5))  # a request is open
    await asyncio.sleep(0.2)
    await nc.jetstream().delete_consumer(EVENTS_STREAM, CONSUMER)
    with pytest.raises(NotFoundError):
        await waiting
    await create_consumer(nc, start=2)
    await fetcher.start()
    assert [m.data for m in await fetcher.fetch(5, 1)] == [b"1", b"2"]
    await fetcher.close()
