"""SDK publish throughput against a raw nats-py JetStream loop, in the same run.

Both publish 400-byte events to ``INTERLOCK_EVENTS`` on an embedded nats-server with
acknowledgements pipelined (the same bound on publishes in flight) and wait for every
ack. The raw loop publishes pre-encoded bytes with ``Nats-Msg-Id``; the SDK publishes
``Event`` objects (encoding included). Rounds alternate so drift hits both alike; the
median of each is reported with their ratio.

    python tests/perf/bench_publish.py [--events 50000] [--rounds 3] [--out .bench]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import nats
from figures import write_figures

from interlock.sdk import (
    EVENTS_STREAM,
    Event,
    NatsOptions,
    Publisher,
    PublisherConfig,
    encode_event,
    ensure_streams,
)
from interlock.service.embedded_nats import EmbeddedNatsServer

EVENT_BYTES = 400


def make_events(count: int, run: int) -> list[Event]:
    template = Event(
        event="bench.table.updated",
        resource={"id": "warehouse.sales", "schema": "dw"},
        payload={"run": run, "n": 0, "pad": ""},
        source="bench",
    )
    pad = "x" * max(0, EVENT_BYTES - len(encode_event(template)) - 6)
    return [
        Event(
            event="bench.table.updated",
            resource={"id": "warehouse.sales", "schema": "dw"},
            payload={"run": run, "n": n, "pad": pad},
            source="bench",
        )
        for n in range(count)
    ]


async def raw_round(url: str, events: list[Event], in_flight: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=in_flight)
    payloads = [(e.subject, encode_event(e), str(e.id)) for e in events]
    started = time.perf_counter()
    futures = [
        await js.publish_async(subject, data, headers={"Nats-Msg-Id": msg_id})
        for subject, data, msg_id in payloads
    ]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await nc.close()
    return len(events) / elapsed


async def sdk_round(url: str, events: list[Event], in_flight: int, spool: Path) -> float:
    config = PublisherConfig(
        nats=NatsOptions(servers=(url,)), max_in_flight=in_flight, spool_dir=spool, timeout=10
    )
    async with Publisher(config) as publisher:
        started = time.perf_counter()
        result = await publisher.publish_many(events)
        elapsed = time.perf_counter() - started
    assert result.stored == len(events), result
    return len(events) / elapsed


async def main(count: int, rounds: int, in_flight: int, out: Path) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory() as scratch,
        EmbeddedNatsServer(store_dir=Path(scratch) / "js", port=0) as server,
    ):
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_streams(js)
        raw: list[float] = []
        sdk: list[float] = []
        size = len(encode_event(make_events(1, 0)[0]))
        for run in range(rounds):
            for name, results in (("raw", raw), ("sdk", sdk)):
                await js.purge_stream(EVENTS_STREAM)
                events = make_events(count, run * 2 + (name == "sdk"))
                if name == "raw":
                    rate = await raw_round(server.url, events, in_flight)
                else:
                    rate = await sdk_round(server.url, events, in_flight, Path(scratch) / "spool")
                results.append(rate)
                print(f"  round {run + 1} {name}: {rate:,.0f} events/s")
        stored = (await js.stream_info(EVENTS_STREAM)).state.messages
        await nc.close()
    figures: dict[str, object] = {
        "benchmark": "sdk_publish_throughput",
        "event_bytes": size,
        "events_per_round": count,
        "rounds": rounds,
        "max_in_flight": in_flight,
        "raw_nats_py_events_per_s": round(statistics.median(raw)),
        "sdk_events_per_s": round(statistics.median(sdk)),
        "ratio": round(statistics.median(sdk) / statistics.median(raw), 3),
        "raw_rounds": [round(rate) for rate in raw],
        "sdk_rounds": [round(rate) for rate in sdk],
        "last_round_stored": stored,
    }
    write_figures(out / "publish.json", figures)
    print(
        f"SDK publish: {figures['sdk_events_per_s']:,} events/s; raw nats-py: "
        f"{figures['raw_nats_py_events_per_s']:,} events/s; ratio {figures['ratio']:.2f} "
        f"({size}-byte events, {in_flight} in flight, median of {rounds})"
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.rounds, arguments.in_flight, arguments.out))
