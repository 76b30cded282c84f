"""The web UI in a real browser: Debian's Chromium driven by Playwright, against a real server.

- ``browser``: one Chromium per module (``/usr/bin/chromium``, with the switches that
  keep it off the network: see ENVIRONMENT.md); ``pytest-playwright`` is not used (its
  warning is an error here);
- ``server``: one ``interlock server`` (embedded NATS, SQLite) per module, with the
  rules, deployments and webhook receiver of :mod:`ui_rules`;
- ``watched``: a browser context whose every request is checked to stay on 127.0.0.1
  (anything else is refused and recorded) and whose console errors are recorded; the
  test fails at its end if there were any;
- ``rig``: the application in process over a real SQLite store and JetStream, with an
  ``httpx`` client (no browser: statuses, headers, fragments, guards);
- ``shoot(page, name)``: a screenshot, into ``INTERLOCK_UI_SCREENSHOTS`` if set (the
  README's come from there), else the test's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from litestar import Litestar
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    sync_playwright,
)

from harness.interlock_server import RunningServer, interlock_server
from harness.nats import nats_client
from integration.ui.ui_rules import DEPLOYMENTS, SERVER_ENV, FlakyReceiver, rules_module
from integration.ui.watch import Watch
from interlock.rules.clock import SystemClock
from interlock.rules.engine.engine import Engine
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.sdk.streams import ensure_streams
from interlock.service.api.app import create_app
from interlock.service.api.events_query import EVENT_LOG_STATE
from interlock.service.context import Services
from interlock.service.metrics import Metrics
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.settings import load_settings
from interlock.service.store import Store

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: Playwright's sync API runs an event loop on this
    # thread while it is open, and the async tests of other modules need the thread's.
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[FlakyReceiver]:
    with FlakyReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, receiver: FlakyReceiver
) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("interlock")
    with interlock_server(
        workdir,
        rules={"ui_rules.py": rules_module(receiver.url)},
        deployments=DEPLOYMENTS,
        env=SERVER_ENV,
    ) as running:
        yield running


@pytest.fixture
def watched(browser: Browser) -> Iterator[tuple[BrowserContext, Watch]]:
    """A fresh context (own cookies) whose requests and console are watched."""
    context = browser.new_context()
    watch = Watch()

    def only_local(route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            watch.foreign.append(url)
            route.abort()

    context.route("**/*", only_local)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watch.errors.append(f"{message.text} ({message.location.get('url', '')})")

    context.on("console", console)
    context.on("weberror", lambda error: watch.errors.append(str(error.error)))
    yield context, watch
    context.close()
    assert watch.foreign == [], f"requests left 127.0.0.1: {watch.foreign}"
    assert watch.unexpected() == [], f"console errors: {watch.unexpected()}"


@pytest.fixture
def page(watched: tuple[BrowserContext, Watch]) -> Page:
    context, _ = watched
    new = context.new_page()
    new.set_default_timeout(10_000)
    return new


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[Page, str], Path]:
    target = Path(os.environ.get("INTERLOCK_UI_SCREENSHOTS") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = target / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return take


# -- in process: the application over a real store and JetStream, without a browser -------


@dataclass
class Rig:
    """The UI's application in process (``httpx.ASGITransport``) and what is behind it."""

    services: Services
    app: Litestar
    client: httpx.AsyncClient

    async def key(self, scope: str) -> str:
        """Create a key with ``scope`` (this ends local mode); return its token."""
        created = await self.services.store.api_keys.create(f"key-{scope}", [scope])  # type: ignore[list-item]
        return created.token


@pytest.fixture
async def rig(sqlite_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    async with nats_client(nats_url) as client:
        await ensure_streams(client.jetstream())
    settings = load_settings(
        None,
        database_url=sqlite_url,
        nats_url=nats_url,
        secret_key=Fernet.generate_key().decode(),
        data_dir=tmp_path / "data",
    )
    async with contextlib.AsyncExitStack() as stack:
        store = Store(sqlite_url, secret_key=settings.secret_key, clock=SystemClock())
        stack.push_async_callback(store.close)
        await store.migrate()
        publisher = Publisher(
            PublisherConfig(
                nats=NatsOptions(servers=(nats_url,)), source="test", spool_dir=tmp_path / "spool"
            )
        )
        await publisher.connect()
        stack.push_async_callback(publisher.close)
        host = RuleHost(store, Engine(now=SystemClock().now()))
        await host.load()
        services = Services(
            settings=settings,
            store=store,
            publisher=publisher,
            clock=SystemClock(),
            metrics=Metrics(),
            rules=host,
        )
        app = create_app(services, key_cache_ttl=0)
        transport = httpx.ASGITransport(app=app)
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8400")
        )
        stack.push_async_callback(app.state[EVENT_LOG_STATE].close)
        yield Rig(services=services, app=app, client=client)
