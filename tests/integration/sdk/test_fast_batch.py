"""JetStream fast batches against a real nats-server (2.14+): storage, flow, refusals."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.errors import BadSubjectError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from harness.nats import (
    nats_client,
    nats_server_binary,
    read_events,
    running_nats_cluster,
    running_nats_server,
)
from interlock.sdk import (
    EVENTS_STREAM,
    Event,
    NatsOptions,
    Publisher,
    PublisherConfig,
    StreamLimits,
    ensure_streams,
    fast_batch,
)
from interlock.sdk.fast_batch import FLOW, RETRY_AFTER, FastBatches, server_takes_fast_batches


def messages(
    count: int, prefix: str = "m", subject: str = "orders.new"
) -> list[tuple[str, bytes, str]]:
    return [(subject, b'{"n": %d}' % n, f"{prefix}-{n}") for n in range(count)]


async def stream_with(client: Client, name: str, **config: object) -> None:
    stream = StreamConfig(name=name, subjects=[f"{name.lower()}.>"], **config)  # type: ignore[arg-type]
    await client.jetstream().add_stream(stream)


async def stored_payloads(client: Client, stream: str) -> list[tuple[str, bytes, str]]:
    js = client.jetstream()
    info = await js.stream_info(stream)
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        assert msg.subject is not None
        assert msg.data is not None
        assert msg.headers is not None
        found.append((msg.subject, msg.data, msg.headers["Nats-Msg-Id"]))
    return found


async def test_a_batch_longer_than_the_flow_window_is_stored_whole_and_in_order(
    nats_url: str,
) -> None:
    count = FLOW * 5 + 17  # several flow windows: the sender waits for acknowledgements
    async with nats_client(nats_url) as client:
        await stream_with(client, "ORDERS", allow_batched=True)
        batches = FastBatches(client)
        assert batches.usable
        outcome = await batches.publish(messages(count), timeout=5)
        assert (outcome.stored, outcome.refusal) == (count, None)
        assert await stored_payloads(client, "ORDERS") == messages(count)


async def test_concurrent_batches_share_one_subscription_and_each_gets_its_replies(
    nats_url: str,
) -> None:
    """Batches sent at once through one FastBatches have ids of their own: each learns
    its own outcome from the replies on the one inbox subscription."""
    async with nats_client(nats_url) as client:
        await stream_with(client, "ORDERS", allow_batched=True)
        batches = FastBatches(client)
        sizes = [FLOW * 2 + 3, 1, 40, FLOW]
        subscriptions = len(client._subs)  # nats-py keeps its subscriptions there
        outcomes = await asyncio.gather(
            *(
                batches.publish(messages(size, prefix=f"b{index}"), timeout=5)
                for index, size in enumerate(sizes)
            )
        )
        assert [(o.stored, o.refusal) for o in outcomes] == [(size, None) for size in sizes]
        assert len(client._subs) == subscriptions + 1
        stored = await stored_payloads(client, "ORDERS")
        assert sorted(stored) == sorted(
            m for index, size in enumerate(sizes) for m in messages(size, prefix=f"b{index}")
        )
        assert (await batches.publish(messages(3, prefix="after"), timeout=5)).stored == 3
        assert len(client._subs) == subscriptions + 1


async def test_repeated_ids_are_stored_once_and_count_as_stored(nats_url: str) -> None:
    async with nats_client(nats_url) as client:
        await stream_with(client, "ORDERS", allow_batched=True, duplicate_window=120)
        batches = FastBatches(client)
        first = messages(5)
        again = first[1:3] + messages(3, prefix="new") + first[4:]
        assert (await batches.publish(first, timeout=5)).stored == 5
        outcome = await batches.publish(again, timeout=5)
        assert (outcome.stored, outcome.refusal) == (len(again), None)
        assert await stored_payloads(client, "ORDERS") == first + messages(3, prefix="new")


async def test_a_stream_without_batches_refuses_and_batches_are_tried_again_later(
    nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    async with nats_client(nats_url) as client:
        await stream_with(client, "ORDERS")
        batches = FastBatches(client, clock=lambda: now[0])
        with caplog.at_level(logging.INFO, logger="interlock.sdk.fast_batch"):
            outcome = await batches.publish(messages(10), timeout=5)
        assert outcome.stored == 0
        assert isinstance(outcome.refusal, APIError)
        assert outcome.refusal.err_code == 10205
        assert not batches.usable
        assert "allow_batched" in caplog.text
        js = client.jetstream()
        assert (await js.stream_info("ORDERS")).state.messages == 0
        # The operator gives the stream batches; the publisher finds out by itself.
        config = (await js.stream_info("ORDERS")).config
        config.allow_batched = True
        await js.update_stream(config)
        now[0] += RETRY_AFTER - 1
        assert not batches.usable
        now[0] += 1
        assert batches.usable
        assert (await batches.publish(messages(10), timeout=5)).stored == 10


async def test_a_refused_message_ends_the_batch_with_jetstreams_reason(nats_url: str) -> None:
    async with nats_client(nats_url) as client:
        await stream_with(client, "ORDERS", allow_batched=True, max_msg_size=128)
        batches = FastBatches(client)
        items = messages(5)
        items[2] = ("orders.new", b"x" * 200, "too-big")
        outcome = await batches.publish(items, timeout=5)
        assert isinstance(outcome.refusal, APIError)
        assert "size" in str(outcome.refusal.description)
        stored = await stored_payloads(client, "ORDERS")
        assert outcome.stored <= len(stored) == 2  # never more than what JetStream holds
        assert stored == items[:2]
        assert batches.usable  # one message's problem, not the stream's


async def test_no_stream_for_the_subject_is_a_refusal(nats_url: str) -> None:
    async with nats_client(nats_url) as client:
        outcome = await FastBatches(client).publish(messages(3, subject="nowhere.x"), timeout=5)
        assert outcome.stored == 0
        assert isinstance(outcome.refusal, NoStreamResponseError)


async def test_what_would_break_the_protocol_is_refused_before_anything_is_sent(
    nats_url: str,
) -> None:
    async with nats_client(nats_url) as client:
        await stream_with(client, "ORDERS", allow_batched=True)
        batches = FastBatches(client)
        items = messages(3)
        items[2] = ("orders.new", b"{}", "bad id\r\nX: y")
        with pytest.raises(BadSubjectError):
            await batches.publish(items, timeout=5)
        assert (await client.jetstream().stream_info("ORDERS")).state.messages == 0
        assert (await batches.publish(messages(3), timeout=5)).stored == 3


async def test_the_publisher_goes_message_by_message_when_the_stream_has_no_batches(
    nats_url: str, tmp_path: Path
) -> None:
    async with nats_client(nats_url) as client:
        await client.jetstream().add_stream(
            StreamConfig(name=EVENTS_STREAM, subjects=["interlock.events.>"])
        )
        options = NatsOptions(servers=(nats_url,))
        events = [Event(event="test.n", resource={"id": "r"}, payload={"n": n}) for n in range(300)]
        async with Publisher(PublisherConfig(nats=options, spool_dir=tmp_path)) as publisher:
            first = await publisher.publish_many(events[:150])
            second = await publisher.publish_many(events[150:])
        assert (first.stored, first.spooled, second.stored, second.spooled) == (150, 0, 150, 0)
        stored = await read_events(client, 300)
        assert [event.payload["n"] for event in stored] == list(range(300))


async def test_an_older_nats_server_takes_events_message_by_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    binary = nats_server_binary("2.12.8")  # the last release before fast batches
    with running_nats_server(tmp_path / "nats", binary=binary) as server:
        async with nats_client(server.url) as client:
            assert not server_takes_fast_batches(client)
            with caplog.at_level(logging.INFO, logger="interlock.sdk.streams"):
                events_info, _ = await ensure_streams(client.jetstream())
                await ensure_streams(client.jetstream())
            assert not events_info.config.allow_batched
            assert "updating stream" not in caplog.text  # the second run found nothing to do
            assert not FastBatches(client).usable
            options = NatsOptions(servers=(server.url,))
            events = [
                Event(event="test.n", resource={"id": "r"}, payload={"n": n}) for n in range(300)
            ]
            async with Publisher(
                PublisherConfig(nats=options, spool_dir=tmp_path / "spool")
            ) as pub:
                result = await pub.publish_many(events)
            assert (result.stored, result.spooled) == (300, 0)
            stored = await read_events(client, 300)
            assert [event.id for event in stored] == [event.id for event in events]


async def test_a_server_that_ignores_the_batch_protocol_is_found_out_at_its_first_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 2.12 server that claims to be newer: it stores each message and answers each
    # with a plain PubAck, as for any publish with a reply subject.
    monkeypatch.setattr(fast_batch, "server_takes_fast_batches", lambda nc: True)
    with running_nats_server(tmp_path / "nats", binary=nats_server_binary("2.12.8")) as server:
        async with nats_client(server.url) as client:
            await stream_with(client, "ORDERS")
            batches = FastBatches(client)
            assert batches.usable
            outcome = await batches.publish(messages(50), timeout=5)
            assert outcome.stored == 0  # nothing is counted that the protocol did not confirm
            assert isinstance(outcome.refusal, APIError)
            assert not batches.usable
            # the rest arrive as lone publishes, each stored (the publisher re-sends them)
            for _ in range(100):
                if (await client.jetstream().stream_info("ORDERS")).state.messages == 50:
                    break
                await asyncio.sleep(0.05)
            assert await stored_payloads(client, "ORDERS") == messages(50)


async def test_fast_batches_into_a_stream_replicated_on_three_servers(tmp_path: Path) -> None:
    with running_nats_cluster(tmp_path / "cluster") as servers:
        async with nats_client(servers[0].url) as client:
            for _ in range(100):  # the cluster elects its JetStream leader first
                try:
                    info, _ = await ensure_streams(client.jetstream(), StreamLimits(replicas=3))
                    break
                except (APIError, NatsTimeoutError):
                    await asyncio.sleep(0.1)
            assert info.config.num_replicas == 3
            assert info.config.allow_batched
            config = PublisherConfig(  # through another server than the one it was created on
                nats=NatsOptions(servers=(servers[2].url,)), spool_dir=tmp_path / "spool"
            )
            events = [
                Event(event="test.n", resource={"id": "r"}, payload={"n": n}) for n in range(1000)
            ]
            async with Publisher(config) as publisher:
                result = await publisher.publish_many(events)
                link = publisher._link
                assert link is not None
                assert link.sender.batches.usable  # went as fast batches
            assert (result.stored, result.spooled) == (1000, 0)
            stored = await read_events(client, 1000)
            assert [event.id for event in stored] == [event.id for event in events]
