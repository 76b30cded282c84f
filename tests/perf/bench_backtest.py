"""``interlock rules backtest`` with 1,000 rules: replay rate and peak memory (issue 18).

Rules (a module written for the run, loaded by the command as a user's would be):
700 event rules on 70 event names (ten per name, each ``resource.id == "t<i>"`` and a
payload test, a webhook with templates), 200 count thresholds (three events of one
``resource.id`` within a minute) and 100 heartbeat absences (every ten minutes per
``resource.id``). Events: on those names, over 200 resources, about 1% firing an event
rule or a threshold, every one feeding a heartbeat of its name.

- **End to end**: the events are published to an embedded nats-server's
  ``INTERLOCK_EVENTS``; then ``interlock rules backtest RULES --since 1h --no-compare
  --json`` runs as a child process (loading the rules, reading the stream through its
  filtered consumer, the engine, rendering every firing's actions). Its replay rate is
  the events it fed per second of its replay (its own ``rate``), and per second of the
  whole command; its peak RSS comes from ``getrusage(RUSAGE_CHILDREN)``.
Rates are given per wall-clock second and per CPU second of the replaying process (on
a shared machine, other load slows the first, not the second).

- **Spread in time**: the same events fed to :class:`~interlock.service.backtest.replay.Replay`
  in process with stored times 10 ms apart (100 events/s, a recorded week's spacing),
  so the watermark rule judges windows between small batches as it would on a real
  week; no NATS (that part is measured above).

Target: at least 20,000 events/s.

    python tests/perf/bench_backtest.py [--events 200000] [--out .bench]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness

from figures import write_figures

from interlock.rules.loader import load_paths
from interlock.sdk import Event, NatsOptions, Publisher, PublisherConfig
from interlock.sdk.codec import encode_event
from interlock.sdk.connection import connect
from interlock.sdk.streams import ensure_streams
from interlock.sdk.subjects import EVENTS_SUBJECT_PREFIX
from interlock.service.backtest.horizon import Horizon
from interlock.service.backtest.reader import StoredMessage
from interlock.service.backtest.replay import Replay
from interlock.service.embedded_nats import EmbeddedNatsServer

NAMES = 70
RESOURCES = 200
TARGET = 20_000

RULES = """
from interlock.rules import Rule, absent, heartbeat, on, payload, resource, webhook

hook = [webhook("http://127.0.0.1:9/hook", body={"rule": "{{ rule.name }}", "key": "{{ key }}"})]
events = [
    Rule(
        name=f"event-{i}",
        when=on(
            f"bench.e{i % 70}.done", where=(resource.id == f"t{i % 200}") & (payload.rows >= 1)
        ),
        then=hook,
    )
    for i in range(700)
]
thresholds = [
    Rule(
        name=f"threshold-{i}",
        when=on(
            f"bench.e{i % 70}.done",
            where=resource.id == f"t{i % 200}",
            at_least=3,
            within="1m",
            for_each="resource.id",
        ),
        then=hook,
    )
    for i in range(200)
]
heartbeats = [
    Rule(
        name=f"heartbeat-{i}",
        when=absent(f"bench.e{i % 70}.done", by=heartbeat("10m"), for_each="resource.id"),
        then=hook,
    )
    for i in range(100)
]
"""


def bench_events(count: int) -> list[Event]:
    """Events on the rules' names; one in a hundred carries a resource an event rule has."""
    made = []
    for n in range(count):
        k = n % NAMES
        # event-i listens to name i % 70 and resource t(i % 200): i = k + 70 * j.
        owner = k + NAMES * (n // NAMES % 10)
        resource = f"t{owner % RESOURCES}" if n % 100 == 0 else f"x{n % RESOURCES}"
        made.append(
            Event(
                event=f"bench.e{k}.done",
                resource={"id": resource},
                payload={"rows": n % 50 + 1},
                source="bench",
            )
        )
    return made


async def publish(url: str, events: list[Event], spool: Path) -> None:
    nc = await connect(NatsOptions(servers=(url,)))
    await ensure_streams(nc.jetstream())
    await nc.close()
    config = PublisherConfig(nats=NatsOptions(servers=(url,)), source="bench", spool_dir=spool)
    async with Publisher(config) as publisher:
        for start in range(0, len(events), 5_000):
            await publisher.publish_many(events[start : start + 5_000])


def end_to_end(workdir: Path, rules: Path, events: list[Event]) -> dict[str, Any]:
    with EmbeddedNatsServer(store_dir=workdir / "js", port=0) as server:
        asyncio.run(publish(server.url, events, workdir / "spool"))
        environ = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
        command = [sys.executable, "-m", "interlock.sdk.cli", "rules", "backtest", str(rules)]
        command += ["--since", "1h", "--warmup", "0s", "--no-compare", "--json"]
        command += ["--nats-url", server.url]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=environ, capture_output=True, check=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads(done.stdout)
    assert report["events"] == len(events), (report["events"], len(events))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    firings = sum(rule["fired"] + rule["resolved"] for rule in report["rules"])
    return {
        "events": report["events"],
        "firings": firings,
        "replay_seconds": round(report["seconds"], 2),
        "replay_events_per_s": round(report["rate"]),
        "replay_cpu_seconds": round(report["cpu_seconds"], 2),
        "replay_events_per_cpu_s": round(report["events"] / report["cpu_seconds"]),
        "command_seconds": round(wall, 2),
        "command_events_per_s": round(len(events) / wall),
        "command_cpu_seconds": round(cpu, 2),
        "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
    }


def spread(rules_file: Path, events: list[Event]) -> dict[str, Any]:
    rules = load_paths([rules_file]).rules
    start = datetime.now(UTC) - timedelta(days=7)
    step = timedelta(milliseconds=10)
    messages = [
        StoredMessage(n + 1, start + n * step, EVENTS_SUBJECT_PREFIX + e.event, encode_event(e))
        for n, e in enumerate(events)
    ]
    until = start + len(events) * step
    replay = Replay(rules, Horizon(start=start, since=start, until=until))
    cpu = time.process_time()
    started = time.perf_counter()
    for at in range(0, len(messages), 1024):
        replay.feed(messages[at : at + 1024])
    replay.finish()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {
        "events": replay.counts.events,
        "event_time_span_hours": round(len(events) * step.total_seconds() / 3600, 1),
        "firings": len(replay.firings),
        "seconds": round(wall, 2),
        "events_per_s": round(replay.counts.events / wall),
        "events_per_cpu_s": round(replay.counts.events / cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    args = parser.parse_args()
    events = bench_events(args.events)
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        workdir = Path(tmp)
        rules = workdir / "bench_rules.py"
        rules.write_text(RULES)
        whole = end_to_end(workdir, rules, events)
        print(
            f"end to end, 1,000 rules, {whole['events']:,} events: replay "
            f"{whole['replay_events_per_s']:,}/s ({whole['replay_seconds']} s; "
            f"{whole['replay_events_per_cpu_s']:,} per CPU s), whole command "
            f"{whole['command_events_per_s']:,}/s ({whole['command_seconds']} s, "
            f"{whole['command_cpu_seconds']} CPU s), peak RSS {whole['peak_rss_mib']} MiB, "
            f"{whole['firings']:,} firings rendered (target {TARGET:,}/s)"
        )
        timed = spread(rules, events)
        print(
            f"spread over {timed['event_time_span_hours']} h of event time (100 events/s): "
            f"{timed['events_per_s']:,}/s ({timed['events_per_cpu_s']:,} per CPU s), "
            f"{timed['firings']:,} firings"
        )
    figures = {
        "rules": 1_000,
        "target_events_per_s": TARGET,
        "end_to_end": whole,
        "spread_100_per_s": timed,
    }
    print(f"written to {write_figures(args.out / 'backtest.json', figures)}")


if __name__ == "__main__":
    main()
