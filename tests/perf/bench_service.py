"""The whole service as users run it: ``interlock server`` in a child process.

- **Cold start**: from launching ``interlock server`` in embedded mode (it starts its own
  nats-server, migrates a fresh SQLite database, loads the example rules) to the first
  200 from ``/api/health``, ``--starts`` times (each with a fresh data directory: the
  machine's speed varies, so the median and the slowest are reported); and its **idle
  RSS** (the server process plus its nats-server child) a few seconds after the last.
- **End-to-end latency**: events published with the SDK at a steady 100 and 1,000
  events/s, 1,000 rules loaded, every 10th event firing a rule whose webhook posts to a
  local receiver; latency = the webhook's arrival minus the event's ``occurred`` (publish
  time): p50, p95, p99; and the server's CPU per event in each phase.
- **Burst**: ``BURST`` events published at once, each firing a webhook: the server's CPU
  per event, against which the steady 200 events/s is compared (issue 15's target is
  a ratio in one run: a trickle may cost at most about twice a burst per event).

    python tests/perf/bench_service.py [--seconds 10] [--starts 5] [--out .bench]

The webhook receiver runs in a process of its own (HTTP/1.1, keep-alive) and stamps each
request's arrival. ``BENCH_PROFILE=FILE`` runs the server under cProfile into ``FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness

from figures import write_figures

from harness.receiver_process import ReceiverProcess
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.service.embedded_nats import EmbeddedNatsServer

ROOT = Path(__file__).resolve().parents[2]
RULES = 1_000
SETTLE = 3.0
"""Seconds between phases, so that one phase's tail is not the next one's start."""
PHASES = ((100, 10), (200, 1), (1_000, 10), (1_000, 100))
"""(events per second, one event in N fires a rule): 10% as the heavy case, 1% as in
the pipeline's throughput benchmark; a steady 200 events/s each firing a webhook is
issue 15's trickle (its CPU per event against a burst's)."""
PROFILE = (
    ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
)
_SERVING = re.compile(r"serving the API at (http://\S+)")


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` and its children, in KiB."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        pids.extend(int(child) for child in children)
    return total


def launch(env: dict[str, str], log: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    started = time.perf_counter()
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, *PROFILE, "-m", "interlock.sdk.cli", "server"],
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=output,
        )
    url = ""
    while not url:
        if found := _SERVING.search(log.read_text(errors="replace")):
            url = found.group(1)
        elif process.poll() is not None:
            raise SystemExit(f"interlock server failed:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)
    with httpx.Client(timeout=2) as probe:  # one client: no TLS setup per probe
        while True:
            try:
                if probe.get(f"{url}/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
    return process, url, time.perf_counter() - started


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cold_start(scratch: Path, starts: int) -> dict[str, Any]:
    env = {**os.environ, "INTERLOCK_API__PORT": "0"}
    env.pop("INTERLOCK_NATS_URL", None)
    seconds: list[float] = []
    rss = 0
    for start in range(starts):
        workdir = scratch / f"cold-{start}"
        workdir.mkdir()
        (workdir / "config").symlink_to(ROOT / "config")
        process, _, took = launch(env, workdir / "server.log", workdir)
        seconds.append(took)
        if start == starts - 1:
            time.sleep(5)
            rss = rss_kib(process.pid)
        stop(process)
    median = statistics.median(seconds)
    print(
        f"cold start (embedded, fresh data dir) to a healthy /api/health, {starts} starts: "
        f"median {median:.2f} s, slowest {max(seconds):.2f} s "
        f"({', '.join(f'{s:.2f}' for s in seconds)})"
    )
    print(f"idle RSS (server + nats-server child): {rss / 1024:.0f} MiB")
    return {
        "cold_start_s": round(median, 2),
        "cold_start_slowest_s": round(max(seconds), 2),
        "cold_start_runs_s": [round(s, 2) for s in seconds],
        "idle_rss_mib": round(rss / 1024),
    }


def rules_module(receiver_url: str) -> str:
    return f'''
from interlock.rules import Rule, on, webhook

rules = [
    Rule(
        name=f"bench-{{i}}",
        when=on(f"bench.fire.r{{i}}"),
        then=[webhook("{receiver_url}/hook", body={{"sent": "{{{{ event.occurred }}}}"}})],
    )
    for i in range({RULES})
]
'''


BURST = 2_000
"""Events of the burst, each firing a rule's webhook."""


async def burst(url: str, count: int, spool: Path) -> int:
    """Publish ``count`` events at once, each firing a rule (one ``publish_many``)."""
    config = PublisherConfig(nats=NatsOptions(servers=(url,)), source="bench", spool_dir=spool)
    async with Publisher(config) as publisher:
        await publisher.publish_many(
            publisher.event(f"bench.fire.r{n % RULES}", "bench", payload={"n": n})
            for n in range(count)
        )
    return count


async def steady(url: str, rate: int, every: int, seconds: float, spool: Path) -> int:
    """Publish ``rate`` events/s for ``seconds``; every ``every``-th fires a rule."""
    config = PublisherConfig(nats=NatsOptions(servers=(url,)), source="bench", spool_dir=spool)
    sent = 0
    async with Publisher(config) as publisher:
        started = time.perf_counter()
        tick = 0.01
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(elapsed * rate) - sent
            batch = []
            for _ in range(max(0, due)):
                n = sent + len(batch)
                firing = n % every == 0
                name = f"bench.fire.r{n % RULES}" if firing else f"bench.noise.n{n % 97}"
                batch.append(publisher.event(name, "bench", payload={"n": n}))
            if batch:
                await publisher.publish_many(batch)
                sent += len(batch)
            await asyncio.sleep(tick)
    return sent


def latency(scratch: Path, seconds: float) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    receiver = ReceiverProcess(scratch)
    receiver.start()
    phases: list[tuple[int, int, float, float, float]] = []  # rate, every, start, end, CPU
    try:
        with EmbeddedNatsServer(store_dir=scratch / "lat" / "js", port=0) as nats_server:
            rules_dir = scratch / "lat" / "rules"
            rules_dir.mkdir(parents=True)
            (rules_dir / "bench.py").write_text(rules_module(receiver.url))
            env = {
                **os.environ,
                "INTERLOCK_NATS_URL": nats_server.url,
                "INTERLOCK_DATABASE_URL": f"sqlite:///{scratch / 'lat' / 'interlock.db'}",
                "INTERLOCK_SECRET_KEY": Fernet.generate_key().decode(),
                "INTERLOCK_DATA_DIR": str(scratch / "lat" / "data"),
                "INTERLOCK_RULES_DIR": str(rules_dir),
                "INTERLOCK_API__PORT": "0",
            }
            process, _, _ = launch(env, scratch / "lat" / "server.log", scratch / "lat")
            try:
                expected = 0
                for rate, every in PHASES:
                    cpu = process_cpu(process.pid)
                    started = time.time()
                    sent = asyncio.run(
                        steady(nats_server.url, rate, every, seconds, scratch / f"sp{rate}-{every}")
                    )
                    ended = time.time()
                    expected += (sent + every - 1) // every
                    receiver.wait_for(expected)
                    time.sleep(SETTLE)  # the phase's own events and actions done
                    cpu = (process_cpu(process.pid) - cpu) / seconds
                    phases.append((rate, every, started, ended, cpu))
                cpu = process_cpu(process.pid)
                expected += asyncio.run(burst(nats_server.url, BURST, scratch / "sp-burst"))
                receiver.wait_for(expected)
                time.sleep(SETTLE)
                burst_cpu = process_cpu(process.pid) - cpu
            finally:
                stop(process)
    finally:
        recorded = receiver.stop()
    hooks = [  # (sent, arrived) of every webhook, each body decoded once
        (datetime.fromisoformat(json.loads(body)["sent"]).timestamp(), arrived)
        for path, arrived, body in recorded.requests
        if path == "/hook"
    ]
    for rate, every, started, ended, cpu in phases:
        delays = sorted(
            (arrived - sent) * 1000 for sent, arrived in hooks if started <= sent <= ended
        )
        result = {
            "actions": len(delays),
            "p50_ms": round(statistics.median(delays), 1),
            "p95_ms": round(delays[int(len(delays) * 0.95) - 1], 1),
            "p99_ms": round(delays[int(len(delays) * 0.99) - 1], 1),
            "max_ms": round(delays[-1], 1),
            "server_cpu_share": round(cpu, 2),
            "server_cpu_ms_per_event": round(cpu * 1000 / rate, 2),
        }
        figures[f"{rate}_per_s_{100 // every}pct_firing"] = result
        print(
            f"publish → webhook start at {rate:,} events/s, {100 / every:g}% firing "
            f"({RULES:,} rules, "
            f"{len(delays)} actions): p50 {result['p50_ms']} ms, "
            f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms; "
            f"server CPU {cpu:.0%} ({result['server_cpu_ms_per_event']} ms per event)"
        )
    per_event = burst_cpu * 1000 / BURST
    figures["burst"] = {"events": BURST, "server_cpu_ms_per_event": round(per_event, 2)}
    print(f"a burst of {BURST:,} events, each firing a webhook: {per_event:.2f} ms CPU/event")
    trickle = figures.get("200_per_s_100pct_firing")
    if trickle is not None:
        ratio = trickle["server_cpu_ms_per_event"] / per_event
        figures["trickle_to_burst_cpu_ratio"] = round(ratio, 2)
        print(f"200 events/s each firing, per event, against the burst: {ratio:.2f}x")
    return figures


def main(seconds: float, starts: int, out: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {"benchmark": "service", "rules": RULES}
    with tempfile.TemporaryDirectory() as scratch:
        figures.update(cold_start(Path(scratch), starts))
        figures["latency"] = latency(Path(scratch), seconds)
    write_figures(out / "service.json", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--starts", type=int, default=5, help="cold starts to measure")
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    arguments = parser.parse_args()
    main(arguments.seconds, arguments.starts, arguments.out)
