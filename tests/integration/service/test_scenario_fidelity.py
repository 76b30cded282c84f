"""A scenario predicts production: the same events give the real pipeline's firings.

The service's pipeline runs on real NATS JetStream and SQLite in real time with a
heartbeat, an after-window and a threshold; its stored firings are then compared, by
firing id, with those of a :class:`~interlock.rules.testing.Scenario` given the same
events at the times JetStream stored them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from harness.nats import nats_client
from interlock.rules import Rule, absent, after, heartbeat, notify, on
from interlock.rules.clock import SystemClock
from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing
from interlock.rules.testing import Scenario
from interlock.sdk import EVENTS_STREAM, NatsOptions, Publisher, PublisherConfig, decode_event
from interlock.sdk.connection import connect
from interlock.sdk.event import Event
from interlock.service.context import Services
from interlock.service.metrics import Metrics
from interlock.service.pipeline.consumer import Pipeline
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.settings import load_settings
from interlock.service.store import Store

pytestmark = pytest.mark.slow

HOOK = "json://127.0.0.1:9/x"
RULES = [
    Rule(
        name="beat",
        when=absent("t.beat", by=heartbeat("2s"), for_each="resource.id"),
        then=[notify(HOOK, title="{{ key }} silent since {{ window.start }}")],
        on_resolved=[notify(HOOK, title="{{ key }} back at {{ event.occurred }}")],
    ),
    Rule(
        name="finish",
        when=absent("t.done", by=after("t.start", within="1s"), for_each="payload.run"),
        then=[notify(HOOK, title="run {{ key }} not done")],
    ),
    Rule(
        name="burst",
        when=on("t.fail", at_least=2, within="5s", for_each="resource.id"),
        then=[notify(HOOK, title="{{ key }} failed {{ events | length }} times")],
    ),
]


async def stored(nats_url: str) -> list[tuple[Event, datetime]]:
    """Every event in the stream with the time JetStream stored it, in stream order."""
    async with nats_client(nats_url) as client:
        js = client.jetstream()
        subscription = await js.pull_subscribe(
            "interlock.events.>",
            stream=EVENTS_STREAM,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
        messages = await subscription.fetch(1000, timeout=2)
        await subscription.unsubscribe()
    found = []
    for message in messages:
        timestamp = message.metadata.timestamp
        assert timestamp is not None
        found.append((decode_event(message.data), timestamp))
    return found


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the pipeline"
        await asyncio.sleep(0.02)


async def test_a_scenario_gives_the_firings_of_the_pipeline(
    sqlite_url: str, nats_url: str, tmp_path: Path
) -> None:
    settings = load_settings(
        None, database_url=sqlite_url, nats_url=nats_url,
        secret_key=Fernet.generate_key().decode(), data_dir=tmp_path,
        engine={"consumer_max_wait": "50ms"},
    )  # fmt: skip
    store = Store(sqlite_url)
    await store.migrate()
    options = NatsOptions(servers=(nats_url,))
    config = PublisherConfig(nats=options, source="test", spool_dir=tmp_path / "spool")
    clock = SystemClock()
    start = clock.now()
    host = RuleHost(store, Engine(now=start))
    await host.load()
    await host.apply(RULES)
    async with Publisher(config) as publisher:
        services = Services(
            settings=settings, store=store, publisher=publisher, clock=clock,
            metrics=Metrics(), rules=host,
        )  # fmt: skip
        client = await connect(NatsOptions(servers=(nats_url,), name="fidelity"))
        pipeline = Pipeline(services, host, client)
        await pipeline.start()
        task = asyncio.create_task(pipeline.run())
        steps: list[tuple[float, list[tuple[str, str, dict[str, str]]]]] = [
            (0.0, [("t.beat", "a", {}), ("t.beat", "b", {}), ("t.start", "job", {"run": "r1"}),
                   ("t.start", "job", {"run": "r2"}), ("t.fail", "x", {})]),
            (0.5, [("t.done", "job", {"run": "r1"}), ("t.fail", "x", {}), ("t.beat", "b", {})]),
            (1.5, [("t.beat", "b", {}), ("t.fail", "y", {})]),
            (2.5, [("t.beat", "b", {})]),
            (3.0, [("t.beat", "a", {}), ("t.done", "job", {"run": "r2"})]),
        ]  # fmt: skip
        began = time.monotonic()
        published = 0
        for offset, events in steps:
            await asyncio.sleep(max(0.0, began + offset - time.monotonic()))
            await publisher.publish_many(
                publisher.event(name, resource, payload=data) for name, resource, data in events
            )
            published += len(events)
        await until(lambda: pipeline.stats.events >= published)
        await asyncio.sleep(0.5)  # the next due (b's and a's silences) is 1.5 s away
        await pipeline.stop()
        await task
        end = clock.now()
        await client.close()
    production = await store.firings.list(limit=1000)
    await store.close()

    scenario = Scenario(RULES, start=start, name="fidelity")
    for event, stored_at in await stored(nats_url):
        scenario.event(
            event.event, at=event.occurred, resource=event.resource, payload=event.payload,
            source=event.source, id=event.id, published=max(stored_at, scenario.now),
        )  # fmt: skip
    scenario.advance_to(end)

    def identities(firings: Sequence[Firing]) -> set[tuple[str, str, str, str, bool]]:
        return {(str(f.id), f.rule, f.key, f.status, f.late) for f in firings}

    assert identities(scenario.firings) == identities(production)
    assert sorted((f.rule, f.key, f.status) for f in production) == [
        ("beat", "a", "fired"),
        ("beat", "a", "resolved"),
        ("burst", "x", "fired"),
        ("finish", "r2", "fired"),
        ("finish", "r2", "resolved"),
    ]
    assert end - start < timedelta(seconds=10)
