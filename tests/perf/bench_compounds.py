"""Twelve thousand compound rules through a running service (the shape of prefect#21976).

Each rule waits for six deployments' ``prefect.flow-run.Completed`` within an hour
(``all_of`` of six ``on()`` with ``resource.id == ...``): 12,000 rules, 72,000
sub-triggers on one event name. ``interlock server`` runs in a child process on SQLite,
with a nats-server of its own. For 10 rules and then for 12,000, the benchmark measures:

- **apply**: one ``interlock rules apply`` of the rule module, as a user runs it;
- **RSS after loading** (the server process) and after the events;
- **throughput**: 20,000 events published in one burst with the SDK, from the first
  publish until ``interlock_events_consumed_total`` counted them all; the figure that
  matters is the ratio of the 12,000-rule rate to the 10-rule one (issue 15: at least 0.5);
- **restart**: SIGTERM, then ``interlock server`` again until ``/api/health`` answers
  (which it does only once every rule is loaded).

    python tests/perf/bench_compounds.py [--rules 12000] [--events 20000] [--out .bench]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_service import launch, process_cpu, rss_kib, stop
from cryptography.fernet import Fernet
from figures import write_figures

from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.service.embedded_nats import EmbeddedNatsServer

PARTS = 6
EVENT = "prefect.flow-run.Completed"
_CONSUMED = re.compile(r"^interlock_events_consumed_total(?:\{[^}]*\})? (\S+)$", re.MULTILINE)


def rules_module(count: int) -> str:
    return f"""
from interlock.rules import Rule, all_of, on, resource

rules = [
    Rule(
        name=f"downstream-{{i}}",
        when=all_of(
            *[
                on("{EVENT}", where=resource.id == f"prefect.deployment.d{{i}}-{{j}}")
                for j in range({PARTS})
            ],
            within="1h",
        ),
    )
    for i in range({count})
]
"""


def consumed(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(value) for value in _CONSUMED.findall(text))


async def publish(nats_url: str, rules: int, events: int, spool: Path) -> None:
    config = PublisherConfig(nats=NatsOptions(servers=(nats_url,)), source="bench", spool_dir=spool)
    rnd = random.Random(1)
    async with Publisher(config) as publisher:
        batch = [
            publisher.event(
                EVENT, f"prefect.deployment.d{rnd.randrange(rules)}-{rnd.randrange(PARTS)}"
            )
            for _ in range(events)
        ]
        for start in range(0, events, 1_000):
            await publisher.publish_many(batch[start : start + 1_000])


def run(scratch: Path, rules: int, events: int) -> dict[str, Any]:
    work = scratch / f"r{rules}"
    (work / "rules").mkdir(parents=True)
    module = work / "rules" / "downstream.py"
    module.write_text(rules_module(rules))
    with EmbeddedNatsServer(store_dir=work / "js", port=0) as nats_server:
        env = {
            **os.environ,
            "INTERLOCK_NATS_URL": nats_server.url,
            "INTERLOCK_DATABASE_URL": f"sqlite:///{work / 'interlock.db'}",
            "INTERLOCK_SECRET_KEY": Fernet.generate_key().decode(),
            "INTERLOCK_DATA_DIR": str(work / "data"),
            "INTERLOCK_RULES_DIR": str(work / "none"),
            "INTERLOCK_API__PORT": "0",
        }
        process, url, _ = launch(env, work / "server.log", work)
        try:
            idle = rss_kib(process.pid)
            started = time.perf_counter()
            applied = subprocess.run(
                [sys.executable, "-m", "interlock.sdk.cli", "rules", "apply", str(module)],
                env={**env, "INTERLOCK_API_URL": url},
                capture_output=True,
                text=True,
                check=False,
            )
            apply_s = time.perf_counter() - started
            if applied.returncode != 0:
                raise SystemExit(f"rules apply failed:\n{applied.stderr[-3000:]}")
            time.sleep(1)
            loaded = rss_kib(process.pid)

            before = consumed(url)
            cpu = process_cpu(process.pid)
            started = time.perf_counter()
            asyncio.run(publish(nats_server.url, rules, events, work / "spool"))
            while consumed(url) < before + events:
                time.sleep(0.02)
            took = time.perf_counter() - started
            cpu = process_cpu(process.pid) - cpu
            after = rss_kib(process.pid)

            stop(process)
            process, url, restart_s = launch(env, work / "restart.log", work)
        finally:
            stop(process)
    result = {
        "rules": rules,
        "apply_s": round(apply_s, 2),
        "rss_idle_mib": round(idle / 1024),
        "rss_loaded_mib": round(loaded / 1024),
        "rss_after_events_mib": round(after / 1024),
        "events": events,
        "events_s": round(took, 2),
        "events_per_s": round(events / took),
        "cpu_ms_per_event": round(cpu * 1000 / events, 3),
        "restart_s": round(restart_s, 2),
    }
    print(
        f"{rules:>6,} rules: apply {apply_s:.2f} s; RSS idle {result['rss_idle_mib']} MiB, "
        f"loaded {result['rss_loaded_mib']} MiB, after {events:,} events "
        f"{result['rss_after_events_mib']} MiB; {events:,} events in {took:.2f} s "
        f"({result['events_per_s']:,}/s, {result['cpu_ms_per_event']} ms CPU each); "
        f"restart {restart_s:.2f} s"
    )
    return result


def main(rules: int, events: int, out: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        few = run(Path(scratch), 10, events)
        many = run(Path(scratch), rules, events)
    ratio = many["events_per_s"] / few["events_per_s"]
    print(f"throughput with {rules:,} rules / with 10: {ratio:.2f} (issue 15: at least 0.5)")
    figures = {"benchmark": "compounds", "few": few, "many": many, "ratio": round(ratio, 2)}
    write_figures(out / "compounds.json", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=12_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    arguments = parser.parse_args()
    main(arguments.rules, arguments.events, arguments.out)
