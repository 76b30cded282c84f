"""Helpers for tests that need a real ``nats-server`` with JetStream.

The server is the service's own :class:`EmbeddedNatsServer`, so the tests exercise the
launcher that embedded mode ships. The client helper closes its connection however the
test ends, so no socket or reconnect task outlives the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from interlock.service.embedded_nats import EmbeddedNatsServer

__all__ = ["nats_client", "running_nats_server"]

# Fast reconnects, so a test that restarts the server is not waiting on the 2 s default.
_TEST_CLIENT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 2,
    "reconnect_time_wait": 0.05,
    "max_reconnect_attempts": 200,
}


@contextmanager
def running_nats_server(directory: Path, *, port: int = 0) -> Iterator[EmbeddedNatsServer]:
    """Run a fresh JetStream server with its store and log under ``directory``; stop it after."""
    server = EmbeddedNatsServer(
        directory / "jetstream", port=port, name="interlock-test", log_path=directory / "nats.log"
    )
    with server:
        yield server


@asynccontextmanager
async def nats_client(url: str, **options: Any) -> AsyncIterator[Client]:
    """Connect a nats-py client to ``url`` (test-friendly reconnect settings); close it after."""
    client = await nats.connect(url, **{**_TEST_CLIENT_OPTIONS, **options})
    try:
        yield client
    finally:
        await client.close()
