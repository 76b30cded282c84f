"""Leases, campaigns and fencing in process, on a real nats-server and PostgreSQL (issue 19).

- :class:`KvLease`: one holder at a time; epochs grow with every new holder; a renewal
  after another took over is :class:`LeaseLost`; a released lease is free at once, an
  abandoned one after its TTL (time injected for the holder's own judgement).
- :class:`Campaign`: of two replicas one runs the work; when the owner stops, the other
  takes over.
- Fencing: a pipeline whose lease expired unnoticed (a partition) keeps consuming, but
  its next batch is refused by the epoch the new owner claimed; its run stops with
  ``Fenced``, and the new owner stores every firing once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from nats.aio.client import Client
from nats.js.kv import KeyValue

from harness.nats import nats_client
from interlock.rules import Rule, on
from interlock.rules.clock import SystemClock
from interlock.rules.engine.engine import Engine
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.service.context import Services
from interlock.service.metrics import Metrics
from interlock.service.ownership import Campaign, KvLease, LeaseLost, open_lease_bucket
from interlock.service.pipeline.consumer import Pipeline
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.settings import load_settings
from interlock.service.store import Fenced, Store

TTL = timedelta(seconds=1)


class Clock:
    """A monotonic clock the test moves (the lease's own judgement of expiry)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[Client]:
    async with nats_client(nats_url) as connected:
        yield connected


@pytest.fixture
async def bucket(client: Client) -> KeyValue:
    return await open_lease_bucket(client.jetstream(), "TEST_LEASES", TTL)


async def test_one_holder_at_a_time_and_epochs_grow(bucket: KeyValue) -> None:
    clock = Clock()
    a = KvLease(bucket, "engine", "a", ttl=TTL, monotonic=clock)
    b = KvLease(bucket, "engine", "b", ttl=TTL, monotonic=clock)
    first = await a.try_acquire()
    assert first is not None
    assert await b.try_acquire() is None
    assert await b.current_holder() == "a"
    await a.renew()
    await a.release()  # a clean stop: free at once
    second = await b.try_acquire()
    assert second is not None
    assert second > first
    with pytest.raises(LeaseLost, match="taken over by another replica"):
        await a.renew()
    assert a.held is False
    assert b.held is True
    clock.now += TTL.total_seconds()
    assert b.expired()  # by its own clock, before the server's


async def test_an_abandoned_lease_is_taken_after_its_ttl(bucket: KeyValue) -> None:
    a = KvLease(bucket, "scheduler", "a", ttl=TTL)
    b = KvLease(bucket, "scheduler", "b", ttl=TTL)
    epoch = await a.try_acquire()
    assert epoch is not None
    assert await b.try_acquire() is None
    taken = None
    async with asyncio.timeout(30):  # the server expires it ~1 s after the last write
        while taken is None:
            await asyncio.sleep(0.05)
            taken = await b.try_acquire()
    assert taken > epoch
    with pytest.raises(LeaseLost):
        await a.renew()


class Work:
    """A role that records its tenures."""

    def __init__(self) -> None:
        self.running: int | None = None
        self.epochs: list[int] = []

    async def start(self, epoch: int) -> None:
        self.running = epoch
        self.epochs.append(epoch)

    async def stop(self) -> None:
        self.running = None

    def ended(self) -> str | None:
        return None


async def test_two_campaigns_one_owner_then_a_takeover(bucket: KeyValue) -> None:
    works = [Work(), Work()]
    campaigns = [
        Campaign(KvLease(bucket, "engine", name, ttl=TTL), work, poll=0.1)
        for name, work in zip("ab", works, strict=True)
    ]
    tasks = [asyncio.create_task(campaign.run()) for campaign in campaigns]
    try:
        async with asyncio.timeout(5):
            # Polled: either may become the owner.
            while sorted(c.state for c in campaigns) != ["owner", "standby"]:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        owner = next(i for i, c in enumerate(campaigns) if c.state == "owner")
        other = 1 - owner
        assert works[owner].running is not None
        assert works[other].running is None
        await asyncio.sleep(3 * TTL.total_seconds())  # renewals keep it
        assert campaigns[owner].state == "owner"
        assert campaigns[owner].tenures == 1
        await campaigns[owner].stop()
        await tasks[owner]
        assert works[owner].running is None
        await _state(campaigns[other], "owner")
        assert works[other].epochs[0] > works[owner].epochs[0]
    finally:
        for campaign in campaigns:
            await campaign.stop()
        await asyncio.gather(*tasks)


class SlowStart(Work):
    """A role whose start takes three TTLs (a checkpoint row locked by a paused owner)."""

    async def start(self, epoch: int) -> None:
        await asyncio.sleep(3 * TTL.total_seconds())
        await super().start(epoch)


async def test_a_slow_start_keeps_its_lease(bucket: KeyValue) -> None:
    # The lease is renewed while the work starts: the standby never takes it over, and
    # the owner's first tenure is the epoch it started with.
    slow, other = SlowStart(), Work()
    first = Campaign(KvLease(bucket, "engine", "a", ttl=TTL), slow, poll=0.1)
    task = asyncio.create_task(first.run())
    second: Campaign | None = None
    tasks = [task]
    try:
        async with asyncio.timeout(5):
            while first.epoch is None:  # noqa: ASYNC110 - polled: taken, still starting
                await asyncio.sleep(0.02)
        second = Campaign(KvLease(bucket, "engine", "b", ttl=TTL), other, poll=0.1)
        tasks.append(asyncio.create_task(second.run()))
        await _state(first, "owner", timeout=10)
        assert first.tenures == 1
        assert slow.epochs == [first.epoch]
        assert other.epochs == []  # never took it while the first one started
        assert second.state == "standby"
    finally:
        for campaign in (first, second):
            if campaign is not None:
                await campaign.stop()
        await asyncio.gather(*tasks)


RULE = Rule(name="each", when=on("fence.tick"))


async def _state(campaign: Campaign, state: str, timeout: float = 5) -> None:
    """Wait until ``campaign`` is in ``state`` (it sets ``changed`` at every change)."""
    async with asyncio.timeout(timeout):
        while campaign.state != state:
            campaign.changed.clear()
            await campaign.changed.wait()


async def _pipeline(
    url: str, nats_url: str, tmp: Path, client: Client, epoch: int
) -> tuple[Pipeline, Store, Publisher]:
    settings = load_settings(
        None,
        database_url=url,
        nats_url=nats_url,
        secret_key=Fernet.generate_key().decode(),
        data_dir=tmp,
        engine={"consumer_max_wait": "50ms", "checkpoint_interval": "0s"},
    )
    store = Store(url)
    await store.migrate()
    publisher = Publisher(
        PublisherConfig(
            nats=NatsOptions(servers=(nats_url,)), source="interlock", spool_dir=tmp / "spool"
        )
    )
    await publisher.connect()
    clock = SystemClock()
    host = RuleHost(store, Engine(now=clock.now()))
    await host.load()
    await host.apply([RULE])
    services = Services(
        settings=settings,
        store=store,
        publisher=publisher,
        clock=clock,
        metrics=Metrics(),
        rules=host,
    )
    pipeline = Pipeline(services, host, client, epoch=epoch)
    await pipeline.start()
    return pipeline, store, publisher


async def _publish(nats_url: str, tmp: Path, first: int, count: int) -> None:
    config = PublisherConfig(
        nats=NatsOptions(servers=(nats_url,)), source="test", spool_dir=tmp / "spool-test"
    )
    async with Publisher(config) as publisher:
        await publisher.publish_many(
            publisher.event("fence.tick", f"r{n}", payload={"n": n})
            for n in range(first, first + count)
        )


async def _count_firings(store: Store, count: int) -> None:
    async with asyncio.timeout(30):
        while len(await store.firings.list(limit=10_000)) < count:  # noqa: ASYNC110 - a database
            await asyncio.sleep(0.05)


async def test_an_owner_whose_lease_expired_unnoticed_cannot_commit(
    nats_url: str, postgres_url: str, tmp_path: Path, bucket: KeyValue
) -> None:
    old_lease = KvLease(bucket, "engine", "old", ttl=TTL)
    new_lease = KvLease(bucket, "engine", "new", ttl=TTL)
    old_epoch = await old_lease.try_acquire()
    assert old_epoch is not None
    resources: list[tuple[Pipeline, Store, Publisher]] = []
    async with nats_client(nats_url) as old_nc, nats_client(nats_url) as new_nc:
        try:
            old = await _pipeline(postgres_url, nats_url, tmp_path / "old", old_nc, old_epoch)
            resources.append(old)
            old_run = asyncio.create_task(old[0].run())
            await _publish(nats_url, tmp_path, 0, 50)
            await _count_firings(old[1], 50)
            # The old owner is cut off from renewing (a partition): its lease expires.
            new_epoch = None
            async with asyncio.timeout(10):
                while (new_epoch := await new_lease.try_acquire()) is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            assert new_epoch > old_epoch
            new = await _pipeline(postgres_url, nats_url, tmp_path / "new", new_nc, new_epoch)
            resources.append(new)
            # The old pipeline still runs and reads its own consumer: its next batch is
            # refused in the store, and its run stops.
            await _publish(nats_url, tmp_path, 50, 50)
            async with asyncio.timeout(30):
                with pytest.raises(Fenced) as refused:
                    await old_run
            assert refused.value.epoch == old_epoch
            assert refused.value.current == new_epoch
            new_run = asyncio.create_task(new[0].run())
            await _count_firings(new[1], 100)
            await new[0].stop()
            await new_run
            firings = await new[1].firings.list(limit=10_000)
            assert len(firings) == len({f.id for f in firings}) == 100
            checkpoint = await new[1].checkpoint()
            assert checkpoint is not None
            assert checkpoint.stream_sequence >= 100
        finally:
            for pipeline, store, publisher in resources:
                with contextlib.suppress(Exception):
                    await pipeline.stop()
                await publisher.close()
                await store.close()
