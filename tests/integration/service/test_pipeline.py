"""The pipeline against real NATS JetStream and a real database (SQLite and PostgreSQL).

Events go in with the SDK's publisher; what comes out is read back from the store (the
firings, their rendered outbox entries, the checkpoint) and from the stream (dead
letters, ``interlock.rule.*`` announcements).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from nats.aio.client import Client

from harness.nats import nats_client, read_events
from interlock.rules import Rule, absent, heartbeat, notify, on, payload, webhook
from interlock.rules.clock import SystemClock
from interlock.rules.engine.engine import Engine
from interlock.sdk import DEAD_STREAM, EVENTS_STREAM, NatsOptions, Publisher, PublisherConfig
from interlock.sdk.streams import ensure_streams
from interlock.sdk.subjects import DEAD_REASON_HEADER
from interlock.service.context import Services
from interlock.service.metrics import Metrics
from interlock.service.pipeline.consumer import Pipeline
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.settings import load_settings
from interlock.service.store import Store

pytestmark = pytest.mark.slow

FAILED = Rule(
    name="load-failed",
    when=on("job.failed", where=payload.attempt >= 2),
    then=[notify("json://127.0.0.1:9/x", title="{{ event.resource.id }} failed twice")],
)


@dataclass
class Rig:
    """A pipeline over a real store and NATS, restartable over the same state."""

    url: str
    nats_url: str
    tmp: Path
    pipeline: Pipeline | None = None
    task: asyncio.Task[None] | None = None
    store: Store | None = None
    publisher: Publisher | None = None

    async def start(self, rules: list[Rule], checkpoint_interval: str = "0s") -> Pipeline:
        settings = load_settings(
            None,
            database_url=self.url,
            nats_url=self.nats_url,
            secret_key=Fernet.generate_key().decode(),
            data_dir=self.tmp,
            engine={"consumer_max_wait": "50ms", "checkpoint_interval": checkpoint_interval},
        )
        self.store = store = Store(self.url)
        await store.migrate()
        options = NatsOptions(servers=(self.nats_url,))
        self.publisher = Publisher(
            PublisherConfig(nats=options, source="interlock", spool_dir=self.tmp / "spool")
        )
        await self.publisher.connect()
        clock = SystemClock()
        host = RuleHost(store, Engine(now=clock.now()))
        await host.load()
        await host.apply(rules)
        services = Services(
            settings=settings,
            store=store,
            publisher=self.publisher,
            clock=clock,
            metrics=Metrics(),
            rules=host,
        )
        client = await _connect(self.nats_url)
        self.pipeline = Pipeline(services, host, client)
        await self.pipeline.start()
        self.task = asyncio.create_task(self.pipeline.run())
        self._client = client
        return self.pipeline

    async def crash(self) -> None:
        """Stop without a final checkpoint, as ``kill -9`` would."""
        assert self.task is not None
        assert self.store is not None
        assert self.publisher is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self._client.close()
        await self.publisher.close()
        await self.store.close()

    async def stop(self) -> None:
        assert self.pipeline is not None
        assert self.task is not None
        await self.pipeline.stop()
        await self.task
        await self._client.close()
        assert self.publisher is not None
        assert self.store is not None
        await self.publisher.close()
        await self.store.close()


async def _connect(url: str) -> Client:
    from interlock.sdk.connection import connect  # noqa: PLC0415

    return await connect(NatsOptions(servers=(url,), name="pipeline-test"))


@pytest.fixture
async def rig(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(database_url, nats_url, tmp_path)
    yield rig
    if rig.task is not None and not rig.task.done():
        await rig.crash()


async def eventually(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the pipeline"
        await asyncio.sleep(0.05)


async def publish(nats_url: str, tmp_path: Path, *events: tuple[str, str, dict[str, Any]]) -> None:
    config = PublisherConfig(
        nats=NatsOptions(servers=(nats_url,)), source="test", spool_dir=tmp_path / "producer"
    )
    async with Publisher(config) as publisher:
        await publisher.publish_many(
            publisher.event(name, resource, payload=data) for name, resource, data in events
        )


FAILED_TWICE_THEN_OK = (
    ("job.failed", "etl.sales", {"attempt": 1}),
    ("job.failed", "etl.sales", {"attempt": 2}),  # FAILED fires
    ("job.ok", "etl.sales", {}),
)


async def test_an_event_fires_a_rule_and_its_actions_are_stored_rendered(
    rig: Rig, nats_url: str, tmp_path: Path
) -> None:
    pipeline = await rig.start([FAILED])
    await publish(nats_url, tmp_path, *FAILED_TWICE_THEN_OK)
    assert rig.store is not None
    [firing] = await eventually(lambda: rig.store.firings.list(rule="load-failed"))
    [action] = await rig.store.outbox.list(firing_id=firing.id)
    assert action.kind == "notify"
    assert action.action["title"] == "etl.sales failed twice"
    assert action.state == "pending"
    await until(lambda: pipeline.stats.events >= 3)
    async with nats_client(nats_url) as client:
        announced = await read_events(client, expected=4)
    fired = [e for e in announced if e.event == "interlock.rule.fired"]
    assert [(e.resource_id, e.payload["firing_id"]) for e in fired] == [
        ("load-failed", str(firing.id))
    ]
    await rig.stop()


async def test_metrics_count_the_work_and_the_lag_is_read_at_its_source(
    rig: Rig, nats_url: str, tmp_path: Path
) -> None:
    pipeline = await rig.start([FAILED])
    await publish(nats_url, tmp_path, *FAILED_TWICE_THEN_OK)
    await until(lambda: pipeline.stats.events >= 4)  # and interlock.rule.fired, its own
    metrics = pipeline.services.metrics
    samples = (await metrics.collect()).decode()
    assert "interlock_events_consumed_total 4.0" in samples
    assert 'interlock_firings_total{status="fired"} 1.0' in samples
    assert "interlock_consumer_lag 0.0" in samples
    # The pipeline stops consuming (stuck, or gone): the lag still tells how far behind.
    assert rig.task is not None
    rig.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await rig.task
    await publish(nats_url, tmp_path, *[("job.ok", "etl.sales", {})] * 5)
    samples = (await metrics.collect()).decode()
    assert "interlock_consumer_lag 5.0" in samples
    assert "interlock_events_consumed_total 4.0" in samples
    await rig.crash()


async def test_a_trickle_is_acknowledged_in_few_acks_and_fully_by_the_end(
    rig: Rig, nats_url: str, tmp_path: Path
) -> None:
    # Acks are flow control (the checkpoint decides what is replayed): at a trickle one
    # AckAll covers what was fed over ACK_AFTER, not one per message; stopping acks the
    # rest.
    pipeline = await rig.start([FAILED])
    async with nats_client(nats_url) as watcher:
        acks: list[str] = []

        async def seen(msg: Any) -> None:
            acks.append(msg.subject)

        await watcher.subscribe(f"$JS.ACK.{EVENTS_STREAM}.{pipeline.consumer}.>", cb=seen)
        await watcher.flush()
        for _ in range(20):
            await publish(nats_url, tmp_path, ("job.ok", "etl.sales", {}))
            await asyncio.sleep(0.03)
        await until(lambda: pipeline.stats.events >= 20)
        await rig.stop()
        js = watcher.jetstream()

        async def all_acked() -> bool:  # the server applies acks asynchronously
            info = await js.consumer_info(EVENTS_STREAM, pipeline.consumer)
            return info.num_ack_pending == 0 and info.ack_floor.stream_seq == 20

        assert await eventually(all_acked, timeout=10)
        await watcher.flush()
    assert 1 <= len(acks) <= 12, acks


async def test_an_invalid_message_is_dead_lettered_and_the_rest_flows(
    rig: Rig, nats_url: str, tmp_path: Path
) -> None:
    pipeline = await rig.start([FAILED])
    async with nats_client(nats_url) as client:
        js = client.jetstream()
        await ensure_streams(js)
        await js.publish("interlock.events.job.failed", b'{"event": "job.failed"')
        await js.publish("interlock.events.job.failed", b'{"event": "job.failed", "x": 1}')
    await publish(nats_url, tmp_path, ("job.failed", "etl.fx", {"attempt": 3}))
    assert rig.store is not None
    [firing] = await eventually(lambda: rig.store.firings.list(rule="load-failed"))
    assert firing.key == ""
    assert pipeline.stats.dead_letters == 2
    async with nats_client(nats_url) as client:
        js = client.jetstream()
        info = await js.stream_info(DEAD_STREAM)
        assert info.state.messages == 2
        first = await js.get_msg(DEAD_STREAM, info.state.first_seq)
        assert first.headers is not None
        assert (
            "JSON" in first.headers[DEAD_REASON_HEADER]
            or "json" in first.headers[DEAD_REASON_HEADER].lower()
        )
    samples = pipeline.services.metrics.render().decode()
    assert 'interlock_dead_letters_total{reason="invalid"} 2.0' in samples
    await rig.stop()


async def test_a_crash_replays_from_the_checkpoint_without_firing_twice(
    rig: Rig, nats_url: str, tmp_path: Path
) -> None:
    threshold = Rule(
        name="three-failures",
        when=on("job.failed", at_least=3, within="1h", for_each="resource.id"),
        then=[webhook("http://127.0.0.1:9/hook", body={"key": "{{ key }}"})],
    )
    # Checkpoints only with firings: a crash replays every event since the last one.
    pipeline = await rig.start([threshold], checkpoint_interval="1h")
    await publish(nats_url, tmp_path, *[("job.failed", "a", {}) for _ in range(2)])
    await until(lambda: pipeline.stats.events >= 2)
    await rig.crash()
    await publish(nats_url, tmp_path, ("job.failed", "a", {}), ("job.failed", "b", {}))
    pipeline = await rig.start([threshold], checkpoint_interval="1h")
    assert rig.store is not None
    [firing] = await eventually(lambda: rig.store.firings.list(rule="three-failures"))
    assert firing.key == "a"
    assert pipeline.stats.events >= 3  # the two events before the crash were fed again
    await publish(nats_url, tmp_path, ("job.failed", "b", {}))
    await until(lambda: pipeline.stats.events >= 5)
    await rig.crash()
    # The third start replays b's two events since the firing's checkpoint: b counts 2,
    # not 4, and nothing fires again.
    pipeline = await rig.start([threshold], checkpoint_interval="1h")
    await until(lambda: pipeline.stats.events >= 2)
    await asyncio.sleep(0.3)
    firings = await rig.store.firings.list(rule="three-failures")
    actions = await rig.store.outbox.list(rule="three-failures")
    assert [f.key for f in firings] == ["a"]
    assert [action.action["body"] for action in actions] == [{"key": "a"}]
    await rig.stop()


async def test_a_missed_heartbeat_fires_in_real_time_and_resolves(
    rig: Rig, nats_url: str, tmp_path: Path
) -> None:
    rule = Rule(
        name="beat",
        when=absent("worker.heartbeat", by=heartbeat("1s"), for_each="resource.id", keys=["w1"]),
        on_resolved=[notify("json://127.0.0.1:9/x", body="{{ key }} is back")],
    )
    await rig.start([rule])
    assert rig.store is not None
    [missed] = await eventually(lambda: rig.store.firings.list(rule="beat"))
    assert (missed.status, missed.key) == ("fired", "w1")
    await publish(nats_url, tmp_path, ("worker.heartbeat", "w1", {}))

    async def resolved() -> list[Any]:
        assert rig.store is not None
        return [f for f in await rig.store.firings.list(rule="beat") if f.status == "resolved"]

    [resolution] = await eventually(resolved)
    [action] = await rig.store.outbox.list(firing_id=resolution.id)
    assert action.action["body"] == "w1 is back"
    await rig.stop()
