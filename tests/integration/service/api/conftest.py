"""An API over a real store (SQLite and PostgreSQL) and a real NATS JetStream server.

``rig`` builds the service's ``Services`` the way ``interlock server`` does (a real
``Store``, a connected ``Publisher``, the pipeline's ``RuleHost`` over a real ``Engine``)
and serves ``create_app(services)`` in-process through ``httpx.ASGITransport``.
``make_rig`` makes more (another bind address, a smaller body limit, the key cache on).
The rigs serve this API's own controllers (``api_controllers()``), not the optional
ones of other parts of the service, which have their own tests. They turn the API-key
cache off (``key_cache_ttl=0``) so that a key created by a test counts at once;
``test_auth.py`` checks the cached default separately.

Why not Litestar's ``AsyncTestClient``: it runs the application in a blocking portal
(another thread and event loop) and blocks the test's loop while a request runs, so the
NATS connection made on the test's loop never sees its acknowledgements (every publish
times out into the spool). ``ASGITransport`` runs the same ASGI app on the test's loop,
as uvicorn does on the service's; ``test_uvicorn_cli.py`` serves it with uvicorn for real.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from litestar import Litestar

from harness.nats import nats_client
from interlock.rules.clock import SystemClock
from interlock.rules.engine.engine import Engine
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.sdk.streams import ensure_streams
from interlock.service.api.app import DEFAULT_MAX_BODY_SIZE, api_controllers, create_app
from interlock.service.context import Services
from interlock.service.metrics import Metrics
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.settings import load_settings
from interlock.service.store import Store


@dataclass
class Rig:
    """One API under test and what is behind it."""

    services: Services
    app: Litestar
    client: httpx.AsyncClient
    nats_url: str

    async def admin_token(self) -> str:
        """Create an admin key in the store; return its token."""
        return (await self.services.store.api_keys.create("admin", ["admin"])).token

    async def token(self, scope: str) -> str:
        """Create a key with ``scope``; return its token."""
        created = await self.services.store.api_keys.create(f"key-{scope}", [scope])  # type: ignore[list-item]
        return created.token


RigFactory = Callable[..., Awaitable[Rig]]


def api_client(app: Litestar) -> httpx.AsyncClient:
    """An HTTP client of ``app`` running on the current event loop."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


@pytest.fixture
async def make_rig(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[RigFactory]:
    async with nats_client(nats_url) as client:
        await ensure_streams(client.jetstream())
    stack = contextlib.AsyncExitStack()
    count = 0

    async def make(
        *,
        host: str = "127.0.0.1",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        key_cache_ttl: float = 0,
        **extra: Any,
    ) -> Rig:
        nonlocal count
        count += 1
        settings = load_settings(
            None,
            database_url=database_url,
            nats_url=nats_url,
            secret_key=Fernet.generate_key().decode(),
            data_dir=tmp_path / f"data{count}",
            api={"host": host},
            **extra,
        )
        store = Store(database_url, secret_key=settings.secret_key, clock=SystemClock())
        stack.push_async_callback(store.close)
        await store.migrate()
        publisher = Publisher(
            PublisherConfig(
                nats=NatsOptions(servers=(nats_url,)),
                source="interlock",
                spool_dir=tmp_path / f"spool{count}",
            )
        )
        await publisher.connect()
        stack.push_async_callback(publisher.close)
        clock = SystemClock()
        host_ = RuleHost(store, Engine(now=clock.now()))
        await host_.load()
        services = Services(
            settings=settings,
            store=store,
            publisher=publisher,
            clock=clock,
            metrics=Metrics(),
            rules=host_,
        )
        app = create_app(
            services,
            controllers=api_controllers(),
            max_body_size=max_body_size,
            key_cache_ttl=key_cache_ttl,
        )
        client = await stack.enter_async_context(api_client(app))
        return Rig(services=services, app=app, client=client, nats_url=nats_url)

    try:
        yield make
    finally:
        await stack.aclose()


@pytest.fixture
async def rig(make_rig: RigFactory) -> Rig:
    return await make_rig()
