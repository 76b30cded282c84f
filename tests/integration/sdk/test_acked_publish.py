"""Pipelined JetStream publishes and their acknowledgements, against a real nats-server."""

from __future__ import annotations

import asyncio

import pytest
from nats.errors import BadSubjectError, MaxPayloadError
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from harness.nats import nats_client
from interlock.sdk.acked_publish import AckedPublishing


@pytest.mark.parametrize("direct", [True, False], ids=["direct-hpub", "client-publish"])
async def test_each_publish_gets_its_own_ack_and_a_repeated_id_is_a_duplicate(
    nats_url: str, direct: bool
) -> None:
    async with nats_client(nats_url) as client:
        await client.jetstream().add_stream(StreamConfig(name="ORDERS", subjects=["orders.>"]))
        acks = AckedPublishing(client, direct=direct)
        await acks.start()
        futures = [
            await acks.publish("orders.new", b'{"n": %d}' % n, f"order-{n}") for n in range(300)
        ]
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
        stored = await client.jetstream().get_msg("ORDERS", 8)
        assert stored.subject == "orders.new"
        assert stored.data == b'{"n": 7}'
        assert stored.headers is not None
        assert stored.headers["Nats-Msg-Id"] == "order-7"
        await acks.close()


async def test_what_would_break_the_protocol_is_refused_before_it_is_sent(
    nats_url: str,
) -> None:
    async with nats_client(nats_url) as client:
        await client.jetstream().add_stream(StreamConfig(name="ORDERS", subjects=["orders.>"]))
        acks = AckedPublishing(client)
        await acks.start()
        with pytest.raises(BadSubjectError):
            await acks.publish("orders.new\r\nPUB x 1", b"{}", "o-1")
        with pytest.raises(BadSubjectError):
            await acks.publish("orders.new", b"{}", "o-2\r\nX: y")
        with pytest.raises(MaxPayloadError):
            await acks.publish("orders.new", b"x" * client.max_payload, "o-3")
        fine = await acks.publish("orders.new", b"{}", "o-4")
        assert (await asyncio.wait_for(fine, 5)).seq == 1  # the connection is still sound
        assert acks.pending == 0
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
