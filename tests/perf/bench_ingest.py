"""HTTP ingest rate of ``POST /api/events`` (batches of 100) through uvicorn into JetStream.

The API runs in a child process, as ``interlock server`` would: uvicorn on a free port,
a SQLite store, a ``Publisher`` connected to an embedded nats-server with JetStream.
The parent runs several concurrent clients posting pre-encoded batches, then checks that
the stream holds every event. Three runs are measured: the local mode (no API key
exists), the same with httpx as the client, and with an API key (each request verified
against the store). The first and last post with a lean keep-alive HTTP/1.1 client, as a
C load generator would: the server shares this machine's cores with its clients and
nats-server, and httpx alone takes about half a core at these rates (the httpx run shows
how much that costs the figure). Each run prints the CPU share of server, clients and
nats-server, and how busy the machine was.

    python tests/perf/bench_ingest.py [--events 100000] [--clients 8] [--batch 100]
                                      [--out .bench] [--profile]

``--profile`` runs the server under cProfile and prints where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import multiprocessing
import os
import pstats
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness

from figures import write_figures

from harness.ports import free_port
from interlock.sdk import EVENTS_STREAM, ensure_streams
from interlock.service.embedded_nats import EmbeddedNatsServer

TARGET = 25_000


def serve(nats_url: str, scratch: str, port: int, profile_path: str | None) -> None:
    """The child process: the API over a SQLite store and NATS, until terminated."""
    import signal  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415
    from cryptography.fernet import Fernet  # noqa: PLC0415

    from interlock.rules.clock import SystemClock  # noqa: PLC0415
    from interlock.rules.engine.engine import Engine  # noqa: PLC0415
    from interlock.sdk import NatsOptions, Publisher, PublisherConfig  # noqa: PLC0415
    from interlock.service.api.app import create_app  # noqa: PLC0415
    from interlock.service.context import Services  # noqa: PLC0415
    from interlock.service.metrics import Metrics  # noqa: PLC0415
    from interlock.service.pipeline.rule_host import RuleHost  # noqa: PLC0415
    from interlock.service.settings import load_settings  # noqa: PLC0415
    from interlock.service.store import Store  # noqa: PLC0415

    profiler = cProfile.Profile() if profile_path else None

    async def run() -> None:
        url = f"sqlite:///{scratch}/interlock.db"
        settings = load_settings(
            None,
            database_url=url,
            nats_url=nats_url,
            secret_key=Fernet.generate_key().decode(),
            data_dir=Path(scratch) / "data",
        )
        store = Store(url, secret_key=settings.secret_key)
        await store.migrate()
        publisher = Publisher(
            PublisherConfig(
                nats=NatsOptions(servers=(nats_url,)),
                source="interlock",
                spool_dir=Path(scratch) / "spool",
                timeout=10,
            )
        )
        await publisher.connect()
        clock = SystemClock()
        host = RuleHost(store, Engine(now=clock.now()))
        services = Services(
            settings=settings,
            store=store,
            publisher=publisher,
            clock=clock,
            metrics=Metrics(),
            rules=host,
        )
        config = uvicorn.Config(
            create_app(services), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        gc.collect()  # as `interlock server` does once it has started
        gc.freeze()
        signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
        if profiler:
            profiler.enable()
        await server.serve()
        if profiler:
            profiler.disable()
        await publisher.close()
        await store.close()

    from interlock.service.event_loop import run as run_loop  # noqa: PLC0415

    run_loop(run())
    if profiler and profile_path:
        profiler.dump_stats(profile_path)


def make_batches(count: int, batch: int, run: str) -> list[bytes]:
    occurred = datetime.now(UTC).isoformat()
    pad = "x" * 180
    bodies = []
    for start in range(0, count, batch):
        events = [
            {
                "id": str(uuid.uuid4()),
                "occurred": occurred,
                "event": "bench.table.updated",
                "resource": {"id": "warehouse.sales", "schema": "dw"},
                "payload": {"run": run, "n": n, "pad": pad},
            }
            for n in range(start, min(start + batch, count))
        ]
        bodies.append(json.dumps(events).encode())
    return bodies


async def post_all(
    base_url: str, bodies: list[bytes], clients: int, token: str | None, *, lean: bool = True
) -> tuple[float, list[float]]:
    """Post every body with ``clients`` concurrent connections; (seconds, latencies).

    ``lean`` posts with :func:`lean_client`; otherwise with httpx.
    """
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    latencies: list[float] = []

    async def httpx_client() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await http.post("/api/events", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 202:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

    client = (lambda: lean_client(base_url, queue, headers, latencies)) if lean else httpx_client
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies


async def lean_client(
    base_url: str, queue: asyncio.Queue[bytes], headers: dict[str, str], latencies: list[float]
) -> None:
    """Post bodies from ``queue`` over one keep-alive HTTP/1.1 connection until it is empty.

    A load generator that costs little CPU (as wrk or hey would), so that on a machine
    the server shares with it, the figure is the server's and not httpx's: it writes
    each request as one buffer and reads the answer by its Content-Length.
    """
    url = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request_head = f"POST /api/events HTTP/1.1\r\nhost: {url.host}:{url.port}\r\n{head}".encode()
    try:
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            writer.write(b"%scontent-length: %d\r\n\r\n%s" % (request_head, len(body), body))
            response_head = await reader.readuntil(b"\r\n\r\n")
            status = int(response_head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in response_head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            answer = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 202:
                raise RuntimeError(f"{status}: {answer[:300]!r}")
    finally:
        writer.close()
        await writer.wait_closed()


async def publish_baseline(
    nats_url: str, bodies: list[bytes], clients: int, spool: Path
) -> tuple[float, float]:
    """The SDK's ``publish_many`` alone, same batches and concurrency, no HTTP.

    Returns events/s and CPU seconds per event.
    """
    from interlock.sdk import NatsOptions, Publisher, PublisherConfig  # noqa: PLC0415
    from interlock.service.api.ingest import decode_body  # noqa: PLC0415

    batches = [decode_body(body) for body in bodies]
    queue: asyncio.Queue[list[Any]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    config = PublisherConfig(nats=NatsOptions(servers=(nats_url,)), spool_dir=spool, timeout=10)
    async with Publisher(config) as publisher:

        async def worker() -> None:
            while not queue.empty():
                result = await publisher.publish_many(queue.get_nowait())
                if result.spooled:
                    raise RuntimeError("the baseline spooled events")

        started = time.perf_counter()
        cpu = time.process_time()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
    count = sum(len(b) for b in batches)
    return count / seconds, cpu / count


async def wait_healthy(base_url: str, process: multiprocessing.process.BaseProcess) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base_url) as http:
        while time.monotonic() < deadline:
            if not process.is_alive():
                raise RuntimeError("the API process died at start")
            try:
                if (await http.get("/api/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the API did not become healthy within 60s")


async def create_key(scratch: Path) -> str:
    from interlock.service.store import Store  # noqa: PLC0415

    async with Store(f"sqlite:///{scratch}/interlock.db") as store:
        return (await store.api_keys.create("bench", ["write"])).token


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def machine_cpu() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (Linux /proc/stat)."""
    ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    figures: dict[str, Any] = {
        "benchmark": "api_ingest_throughput",
        "events": args.events,
        "batch": args.batch,
        "clients": args.clients,
        "target_events_per_s": TARGET,
        "cpus": multiprocessing.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        with EmbeddedNatsServer(store_dir=scratch / "js", port=0) as nats_server:
            nc = await nats.connect(nats_server.url)
            js = nc.jetstream()
            await ensure_streams(js)
            port = free_port()
            profile_path = str(scratch / "server.prof") if args.profile else None
            process = context.Process(
                target=serve, args=(nats_server.url, str(scratch), port, profile_path)
            )
            process.start()
            base_url = f"http://127.0.0.1:{port}"
            try:
                await wait_healthy(base_url, process)
                # warm up (imports, connections, JIT-free but cache-warm)
                await post_all(base_url, make_batches(2_000, args.batch, "warm"), 2, None)
                await js.purge_stream(EVENTS_STREAM)
                baseline, baseline_cpu = await publish_baseline(
                    nats_server.url,
                    make_batches(args.events, args.batch, "baseline"),
                    args.clients,
                    scratch / "baseline-spool",
                )
                figures["sdk_publish_many_events_per_s"] = round(baseline)
                figures["sdk_publish_many_cpu_us_per_event"] = round(baseline_cpu * 1e6, 1)
                print(
                    f"  baseline, SDK publish_many without HTTP: {baseline:,.0f} events/s, "
                    f"{baseline_cpu * 1e6:.0f} us CPU/event"
                )
                for mode in ("local", "local_httpx", "api_key"):  # local modes before any key
                    token = await create_key(scratch) if mode == "api_key" else None
                    await js.purge_stream(EVENTS_STREAM)
                    bodies = make_batches(args.events, args.batch, mode)
                    assert process.pid is not None
                    assert nats_server.pid is not None
                    server_cpu = process_cpu(process.pid)
                    nats_cpu = process_cpu(nats_server.pid)
                    client_cpu = time.process_time()
                    machine = machine_cpu()
                    seconds, latencies = await post_all(
                        base_url, bodies, args.clients, token, lean=mode != "local_httpx"
                    )
                    busy, total = (b - a for b, a in zip(machine_cpu(), machine, strict=True))
                    server_cpu = process_cpu(process.pid) - server_cpu
                    nats_cpu = process_cpu(nats_server.pid) - nats_cpu
                    client_cpu = time.process_time() - client_cpu
                    figures[f"{mode}_nats_server_cpu_share"] = round(nats_cpu / seconds, 2)
                    figures[f"{mode}_machine_busy_share"] = round(busy / total, 2)
                    figures[f"{mode}_server_cpu_share"] = round(server_cpu / seconds, 2)
                    figures[f"{mode}_client_cpu_share"] = round(client_cpu / seconds, 2)
                    figures[f"{mode}_server_cpu_us_per_event"] = round(
                        server_cpu / args.events * 1e6, 1
                    )
                    stored = (await js.stream_info(EVENTS_STREAM)).state.messages
                    if stored != args.events:
                        raise RuntimeError(f"{mode}: the stream holds {stored} of {args.events}")
                    rate = args.events / seconds
                    figures[f"{mode}_events_per_s"] = round(rate)
                    figures[f"{mode}_requests_per_s"] = round(len(bodies) / seconds)
                    figures[f"{mode}_latency_p50_ms"] = round(percentile(latencies, 0.5) * 1e3, 1)
                    figures[f"{mode}_latency_p99_ms"] = round(percentile(latencies, 0.99) * 1e3, 1)
                    print(
                        f"  {mode}: {rate:,.0f} events/s ({len(bodies) / seconds:,.0f} req/s, "
                        f"p50 {percentile(latencies, 0.5) * 1e3:.1f} ms, "
                        f"p99 {percentile(latencies, 0.99) * 1e3:.1f} ms); stream holds {stored}; "
                        f"CPU: server {server_cpu / seconds:.0%} "
                        f"({server_cpu / args.events * 1e6:.0f} us/event), "
                        f"clients {client_cpu / seconds:.0%}, "
                        f"nats-server {nats_cpu / seconds:.0%}; machine {busy / total:.0%} busy"
                    )
            finally:
                process.terminate()
                process.join(30)
                await nc.close()
            if profile_path and Path(profile_path).exists():
                stats = pstats.Stats(profile_path)
                stats.sort_stats("cumulative").print_stats(35)
                stats.sort_stats("tottime").print_stats(60)
    figures["meets_target"] = figures["local_events_per_s"] >= TARGET
    figures["local_share_of_baseline"] = round(
        figures["local_events_per_s"] / figures["sdk_publish_many_events_per_s"], 2
    )
    write_figures(args.out / "ingest.json", figures)
    print(
        f"API ingest: {figures['local_events_per_s']:,} events/s local mode, "
        f"{figures['api_key_events_per_s']:,} with an API key (target {TARGET:,}; batches "
        f"of {args.batch}, {args.clients} clients); SDK publish_many alone "
        f"{figures['sdk_publish_many_events_per_s']:,} -> {args.out / 'ingest.json'}"
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    parser.add_argument("--profile", action="store_true", help="profile the server")
    asyncio.run(main(parser.parse_args()))
