"""The service pipeline: sustained throughput and deadline lateness, against a raw consumer.

- **Ceiling**: a raw nats-py pull consumer (``fetch(256)`` + ``ack()`` per message) drains
  the same backlog of events from ``INTERLOCK_EVENTS``.
- **Throughput**: the pipeline (durable pull consumer, decode, engine with 1,000 rules,
  firings + rendered outbox + checkpoint stored, AckAll per batch) drains the same backlog,
  in which 1% of the events fire a rule; with SQLite and with PostgreSQL.
- **Deadline lateness**: 10,000 keys each with a heartbeat deadline, spread over a few
  seconds, judged in real time: lateness = when the firing was stored minus its deadline.

    python tests/perf/bench_pipeline.py [--events 50000] [--out .bench]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import sqlalchemy as sa
from cryptography.fernet import Fernet
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness

from figures import write_figures

from harness.postgres import PostgresCluster
from interlock.rules import Rule, absent, heartbeat, on, webhook
from interlock.rules.clock import SystemClock
from interlock.rules.engine.engine import Engine
from interlock.sdk import EVENTS_STREAM, Event, NatsOptions, Publisher, PublisherConfig
from interlock.sdk.connection import connect
from interlock.sdk.streams import ensure_streams
from interlock.service.context import Services
from interlock.service.embedded_nats import EmbeddedNatsServer
from interlock.service.metrics import Metrics
from interlock.service.pipeline.consumer import Pipeline
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.settings import load_settings
from interlock.service.store import Store
from interlock.service.store import tables as t

RULES = 1_000


def bench_rules() -> list[Rule]:
    return [
        Rule(
            name=f"bench-{i}",
            when=on(f"bench.match.r{i}"),
            then=[webhook("http://127.0.0.1:9/hook", body={"rule": "{{ rule.name }}"})],
        )
        for i in range(RULES)
    ]


def bench_events(count: int) -> list[Event]:
    events = []
    for n in range(count):
        name = f"bench.match.r{n % RULES}" if n % 100 == 0 else f"bench.noise.n{n % 50}"
        events.append(
            Event(event=name, resource={"id": f"table.{n % 200}"}, payload={"n": n}, source="b")
        )
    return events


async def fill(url: str, events: list[Event], spool: Path) -> None:
    config = PublisherConfig(nats=NatsOptions(servers=(url,)), source="bench", spool_dir=spool)
    async with Publisher(config) as publisher:
        for start in range(0, len(events), 5_000):
            await publisher.publish_many(events[start : start + 5_000])


async def raw_consumer(url: str, count: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    config = ConsumerConfig(
        durable_name="raw-bench", ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL
    )
    subscription = await js.pull_subscribe(
        "interlock.events.>", durable="raw-bench", stream=EVENTS_STREAM, config=config
    )
    seen = 0
    started = time.perf_counter()
    while seen < count:
        for message in await subscription.fetch(256, timeout=5):
            await message.ack()
            seen += 1
    elapsed = time.perf_counter() - started
    await js.delete_consumer(EVENTS_STREAM, "raw-bench")
    await nc.close()
    return count / elapsed


async def make_pipeline(
    nats_url: str, database_url: str, data_dir: Path, rules: list[Rule], **engine: Any
) -> tuple[Pipeline, Store, Publisher, Any]:
    settings = load_settings(
        None,
        database_url=database_url,
        nats_url=nats_url,
        secret_key=Fernet.generate_key().decode(),
        data_dir=data_dir,
        engine=engine,
    )
    store = Store(database_url)
    await store.migrate()
    options = NatsOptions(servers=(nats_url,))
    publisher = Publisher(
        PublisherConfig(nats=options, source="interlock", spool_dir=data_dir / "spool")
    )
    await publisher.connect()
    clock = SystemClock()
    host = RuleHost(store, Engine(now=clock.now()))
    await host.load()
    await host.apply(rules)
    services = Services(
        settings=settings,
        store=store,
        publisher=publisher,
        clock=clock,
        metrics=Metrics(),
        rules=host,
    )
    client = await connect(NatsOptions(servers=(nats_url,), name="bench"))
    pipeline = Pipeline(services, host, client)
    await pipeline.start()
    gc.collect()  # as `interlock server` does once it has started
    gc.freeze()
    return pipeline, store, publisher, client


async def pipeline_throughput(
    nats_url: str, database_url: str, data_dir: Path, count: int
) -> dict[str, Any]:
    pipeline, store, publisher, client = await make_pipeline(
        nats_url, database_url, data_dir, bench_rules()
    )
    started = time.perf_counter()
    task = asyncio.create_task(pipeline.run())
    while pipeline.stats.events < count:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    await pipeline.stop()
    await task
    firings = len(await store.firings.list(limit=100_000))
    await client.close()
    await publisher.close()
    await store.close()
    return {
        "events_per_s": round(count / elapsed),
        "seconds": round(elapsed, 2),
        "batches": pipeline.stats.batches,
        "checkpoints": pipeline.stats.checkpoints,
        "firings_stored": firings,
    }


async def deadline_lateness(
    nats_url: str, database_url: str, data_dir: Path, keys: int
) -> dict[str, Any]:
    rule = Rule(
        name="bench-heartbeat",
        when=absent("bench.beat", by=heartbeat("3s"), for_each="resource.id"),
    )
    pipeline, store, publisher, client = await make_pipeline(
        nats_url, database_url, data_dir, [rule], consumer_max_wait="200ms"
    )
    task = asyncio.create_task(pipeline.run())
    now = datetime.now(UTC)
    beats = [
        Event(
            event="bench.beat",
            resource={"id": f"worker-{k}"},
            occurred=now + timedelta(milliseconds=3 * k * 1000 // keys),
            source="bench",
        )
        for k in range(keys)
    ]
    await fill(nats_url, beats, data_dir / "producer-beats")
    while pipeline.stats.firings < keys:
        await asyncio.sleep(0.05)
    await pipeline.stop()
    await task
    query = sa.select(t.firings.c.window_end, t.firings.c.stored_at).where(
        t.firings.c.rule == "bench-heartbeat"
    )
    async with store._db.transaction() as connection:  # a benchmark peeks at stored_at
        rows = (await connection.execute(query)).all()
    lateness = sorted((row.stored_at - row.window_end).total_seconds() * 1000 for row in rows)
    await client.close()
    await publisher.close()
    await store.close()
    return {
        "deadlines": len(lateness),
        "lateness_ms_p50": round(statistics.median(lateness), 1),
        "lateness_ms_p99": round(lateness[int(len(lateness) * 0.99) - 1], 1),
        "lateness_ms_max": round(lateness[-1], 1),
    }


async def main(count: int, out: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {"benchmark": "pipeline", "events": count, "rules": RULES}
    events = bench_events(count)
    with tempfile.TemporaryDirectory() as scratch, PostgresCluster() as cluster:
        root = Path(scratch)
        for backend in ("sqlite", "postgresql"):
            with EmbeddedNatsServer(store_dir=root / backend / "js", port=0) as server:
                nc = await nats.connect(server.url)
                await ensure_streams(nc.jetstream())
                await nc.close()
                await fill(server.url, events, root / backend / "producer")
                if backend == "sqlite":
                    raw = await raw_consumer(server.url, count)
                    figures["raw_consumer_events_per_s"] = round(raw)
                    print(f"raw nats-py consumer (fetch 256 + ack): {raw:,.0f} events/s")
                    url = f"sqlite:///{root / 'bench.db'}"
                    result = await pipeline_throughput(server.url, url, root / backend, count)
                    figures["sqlite"] = result
                else:
                    with cluster.database() as url:
                        result = await pipeline_throughput(server.url, url, root / backend, count)
                    figures["postgresql"] = result
                share = result["events_per_s"] / figures["raw_consumer_events_per_s"]
                result["share_of_raw"] = round(share, 2)
                print(
                    f"pipeline ({backend}, {RULES} rules, 1% firing): "
                    f"{result['events_per_s']:,} events/s = {share:.0%} of raw "
                    f"({result['firings_stored']} firings, {result['batches']} batches)"
                )
        with EmbeddedNatsServer(store_dir=root / "late" / "js", port=0) as server:
            nc = await nats.connect(server.url)
            await ensure_streams(nc.jetstream())
            await nc.close()
            url = f"sqlite:///{root / 'late.db'}"
            late = await deadline_lateness(server.url, url, root / "late", 10_000)
        figures["deadlines"] = late
        print(
            f"deadline lateness, {late['deadlines']:,} pending deadlines over 3 s (SQLite): "
            f"p50 {late['lateness_ms_p50']} ms, p99 {late['lateness_ms_p99']} ms, "
            f"max {late['lateness_ms_max']} ms"
        )
    write_figures(out / "pipeline.json", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    arguments = parser.parse_args()
    from interlock.service.event_loop import run

    run(main(arguments.events, arguments.out))
