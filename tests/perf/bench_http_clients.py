"""Why webhooks are httpx requests on an aiohttp transport: HTTP clients side by side.

Each client posts ``--requests`` small JSON bodies with 8 and with 64 requests in flight
(64 is the dispatcher's default concurrency) over keep-alive connections to the
benchmarks' HTTP receiver, in a process of its own. Reported per client and
concurrency: requests per second and the client's CPU per request (the median of
``--rounds`` rounds, clients alternating so the machine's drift hits all alike).

- ``httpx-aiohttp``: what :mod:`interlock.service.actions.webhook` does: an
  ``httpx.Request`` (parsed URL cached) sent to
  :class:`~interlock.service.actions.aiohttp_transport.AiohttpTransport`.
- ``httpx-client-aiohttp``: the same transport under an ``httpx.AsyncClient`` (URL
  merging, cookie jar, redirect and auth handling on every call).
- ``aiohttp``: one bare ``ClientSession``: the floor.
- ``httpx``: an ``httpx.AsyncClient`` on httpx's own transport (httpcore).
- ``httpx-transport``: a prebuilt ``httpx.Request`` sent straight to httpcore's transport
  (no client layer: no cookies, no header merging).

    python tests/perf/bench_http_clients.py [--requests 2000] [--rounds 3] [--out .bench]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import msgspec
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness

from figures import write_figures

from harness.receiver_process import ReceiverProcess
from interlock.service.actions.aiohttp_transport import AiohttpTransport

CONCURRENCY = (8, 64)
HEADERS = {"Content-Type": "application/json", "User-Agent": "Interlock"}
_encoder = msgspec.json.Encoder()

Send = Callable[[int], Awaitable[int]]
"""Post request ``n``; return the answer's status."""


async def aiohttp_client(url: str, limit: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Content-Type"),
    )

    async def send(n: int) -> int:
        headers = {**HEADERS, "Idempotency-Key": str(n)}
        body = _encoder.encode({"n": n})
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as answer:
            await answer.read()
            return answer.status

    return send, session.close


async def httpx_client(url: str, limit: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    client = httpx.AsyncClient(limits=limits, timeout=30)

    async def send(n: int) -> int:
        headers = {**HEADERS, "Idempotency-Key": str(n)}
        answer = await client.post(url, content=_encoder.encode({"n": n}), headers=headers)
        return answer.status_code

    return send, client.aclose


async def httpx_transport(url: str, limit: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    transport = httpx.AsyncHTTPTransport(limits=limits)
    parsed = httpx.URL(url)

    async def send(n: int) -> int:
        headers = {**HEADERS, "Idempotency-Key": str(n)}
        request = httpx.Request("POST", parsed, headers=headers, content=_encoder.encode({"n": n}))
        answer = await transport.handle_async_request(request)
        await answer.aread()
        await answer.aclose()
        return answer.status_code

    return send, transport.aclose


async def httpx_aiohttp(url: str, limit: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    transport = AiohttpTransport(ssl_context=ssl.create_default_context(), max_connections=limit)
    parsed = functools.lru_cache(maxsize=16)(httpx.URL)

    async def send(n: int) -> int:
        headers = {**HEADERS, "Idempotency-Key": str(n)}
        request = httpx.Request(
            "POST", parsed(url), headers=headers, content=_encoder.encode({"n": n})
        )
        return (await transport.handle_async_request(request)).status_code

    return send, transport.aclose


async def httpx_client_aiohttp(url: str, limit: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    transport = AiohttpTransport(ssl_context=ssl.create_default_context(), max_connections=limit)
    client = httpx.AsyncClient(transport=transport, timeout=30, follow_redirects=False)

    async def send(n: int) -> int:
        headers = {**HEADERS, "Idempotency-Key": str(n)}
        answer = await client.post(url, content=_encoder.encode({"n": n}), headers=headers)
        return answer.status_code

    return send, client.aclose


CLIENTS = {
    "httpx-aiohttp": httpx_aiohttp,
    "httpx-client-aiohttp": httpx_client_aiohttp,
    "aiohttp": aiohttp_client,
    "httpx": httpx_client,
    "httpx-transport": httpx_transport,
}


async def measure(name: str, url: str, in_flight: int, count: int) -> tuple[float, float]:
    """(requests per second, client CPU µs per request) of one client."""
    send, close = await CLIENTS[name](url, in_flight + 16)
    limit = asyncio.Semaphore(in_flight)

    async def one(n: int) -> None:
        async with limit:
            status = await send(n)
        if status != 200:
            raise SystemExit(f"{name}: HTTP {status}")

    try:
        await asyncio.gather(*(one(n) for n in range(200)))  # connections open, code warm
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await close()
    return count / elapsed, used / count * 1e6


async def main(count: int, rounds: int, out: Path) -> dict[str, object]:
    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        receiver = ReceiverProcess(Path(scratch))
        receiver.start()
        try:
            for _ in range(rounds):
                for in_flight in CONCURRENCY:
                    for name in CLIENTS:
                        figure = await measure(name, f"{receiver.url}/hook", in_flight, count)
                        results.setdefault(name, {}).setdefault(str(in_flight), []).append(figure)
        finally:
            receiver.stop()
    figures: dict[str, object] = {"benchmark": "http_clients", "requests": count}
    for name, by_concurrency in results.items():
        for in_flight, runs in by_concurrency.items():
            rate = statistics.median(r for r, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            figures[f"{name}@{in_flight}"] = {
                "requests_per_s": round(rate),
                "cpu_us_per_request": round(cpu),
                "runs_requests_per_s": [round(r) for r, _ in runs],
            }
            print(
                f"{name:>20} {in_flight:>3} in flight: {rate:7,.0f} requests/s, "
                f"{cpu:5,.0f} µs CPU per request (runs: {', '.join(f'{r:,.0f}' for r, _ in runs)})"
            )
    write_figures(out / "http_clients.json", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    arguments = parser.parse_args()
    uvloop.run(main(arguments.requests, arguments.rounds, arguments.out))
