"""Pipelined JetStream publishes and their acknowledgements, against a real nats-server."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from harness.nats import nats_client
from interlock.sdk.acked_publish import AckedPublishing


async def test_each_publish_gets_its_own_ack_and_a_repeated_id_is_a_duplicate(
    nats_url: str,
) -> None:
    async with nats_client(nats_url) as client:
        await client.jetstream().add_stream(StreamConfig(name="ORDERS", subjects=["orders.>"]))
        acks = AckedPublishing(client)
        await acks.start()
        futures = [await acks.publish("orders.new", b"{}", f"order-{n}") for n in range(300)]
        again = await acks.publish("orders.new", b"{}", "order-7")
        replies = await asyncio.gather(*futures, again)
        assert [reply.seq for reply in replies[:-1]] == list(range(1, 301))
        assert {reply.stream for reply in replies} == {"ORDERS"}
        assert not any(reply.duplicate for reply in replies[:-1])
        assert replies[-1].duplicate
        assert replies[-1].seq == 8
        assert acks.pending == 0
        info = await client.jetstream().stream_info("ORDERS")
        assert info.state.messages == 300
        await acks.close()


async def test_no_stream_for_the_subject_fails_the_future(nats_url: str) -> None:
    async with nats_client(nats_url) as client:
        acks = AckedPublishing(client)
        await acks.start()
        future = await acks.publish("nowhere.at.all", b"{}", "x-1")
        with pytest.raises(NoStreamResponseError):
            await asyncio.wait_for(future, 5)
        await acks.close()


async def test_a_message_jetstream_refuses_fails_with_its_reason(nats_url: str) -> None:
    async with nats_client(nats_url) as client:
        await client.jetstream().add_stream(
            StreamConfig(name="SMALL", subjects=["small.>"], max_msg_size=128)
        )
        acks = AckedPublishing(client)
        await acks.start()
        fits = await acks.publish("small.a", b"{}", "s-1")
        too_big = await acks.publish("small.a", b"x" * 200, "s-2")
        assert (await fits).seq == 1
        with pytest.raises(APIError) as refused:
            await asyncio.wait_for(too_big, 5)
        assert "size" in str(refused.value.description)
        await acks.close()


async def test_futures_given_up_on_are_forgotten(nats_url: str) -> None:
    async with nats_client(nats_url) as client:
        await client.jetstream().add_stream(StreamConfig(name="LOST", subjects=["lost.>"]))
        acks = AckedPublishing(client)
        await acks.start()
        futures = [await acks.publish("lost.a", b"{}", f"l-{n}") for n in range(5)]
        for future in futures[2:]:
            future.cancel()
        acks.forget(futures[2:])
        assert acks.pending <= 2
        await asyncio.gather(*futures[:2])
        assert acks.pending == 0
        await acks.close()
