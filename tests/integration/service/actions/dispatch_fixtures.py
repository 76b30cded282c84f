"""Helpers for the dispatcher tests: a real store (SQLite and PostgreSQL), real NATS, a
receiver for webhooks and Apprise, and builders for queued firings."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from cryptography.fernet import Fernet

from harness.nats import nats_client, read_events
from interlock.rules import Rule, on
from interlock.rules.clock import Clock, FakeClock, SystemClock
from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing, firing_id
from interlock.sdk import Event, NatsOptions, Publisher, PublisherConfig
from interlock.service.actions.dispatcher import Dispatcher
from interlock.service.context import Services
from interlock.service.metrics import Metrics
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.settings import ActionSettings, load_settings
from interlock.service.store import OutboxAction, Store, outbox_entries

SECRET_KEY = Fernet.generate_key().decode()
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@asynccontextmanager
async def running_services(
    database_url: str,
    nats_url: str,
    spool: Path,
    *,
    clock: Clock | None = None,
    **actions: Any,
) -> AsyncIterator[Services]:
    """Services over a migrated store and a connected publisher."""
    clock = clock or SystemClock()
    defaults: dict[str, Any] = {"backoff_initial": "10ms", "backoff_max": "50ms", "timeout": "5s"}
    settings = load_settings(
        config_file=None,
        database_url=database_url,
        nats_url=nats_url,
        secret_key=SECRET_KEY,
        actions=ActionSettings(**(defaults | actions)),
    )
    store = Store(database_url, secret_key=SECRET_KEY, clock=clock)
    await store.migrate()
    publisher = Publisher(
        PublisherConfig(nats=NatsOptions(servers=(nats_url,)), source="interlock", spool_dir=spool)
    )
    await publisher.connect()
    engine = Engine(now=clock.now(), lateness_tolerance=timedelta(seconds=30))
    host = RuleHost(store, engine)
    try:
        yield Services(
            settings=settings,
            store=store,
            publisher=publisher,
            clock=clock,
            metrics=Metrics(),
            rules=host,
        )
    finally:
        await publisher.close()
        await store.close()


def make_rule(name: str, actions: list[msgspec.Struct], **fields: Any) -> Rule:
    return Rule(name=name, when=on("test.happened"), then=actions, **fields)  # type: ignore[arg-type]


def make_firing(rule: str, n: int = 0, at: datetime = START) -> Firing:
    event = uuid.uuid5(uuid.NAMESPACE_URL, f"{rule}/{n}")
    return Firing(
        id=firing_id(rule, "", "fired", event),
        rule=rule,
        key="",
        status="fired",
        at=at,
        event_ids=[event],
        summary=f"{rule} fired ({n})",
    )


async def queue(services: Services, rule: Rule, count: int = 1, *, first: int = 0) -> list[Firing]:
    """Store ``count`` firings of ``rule`` with its actions (as written: no templates)."""
    firings = [make_firing(rule.name, n) for n in range(first, first + count)]
    entries = [e for f in firings for e in outbox_entries(f, rule.then)]
    await services.store.store_batch(firings, entries)
    return firings


@dataclass
class Running:
    dispatcher: Dispatcher
    task: asyncio.Task[None]

    async def stop(self) -> None:
        await self.dispatcher.stop()
        await asyncio.wait_for(self.task, 30)

    async def kill(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@asynccontextmanager
async def dispatching(services: Services, **options: Any) -> AsyncIterator[Running]:
    options.setdefault("poll_interval", 0.05)
    dispatcher = Dispatcher(services, **options)
    running = Running(dispatcher, asyncio.create_task(dispatcher.run()))
    try:
        yield running
    finally:
        if not running.task.done():
            await running.stop()
        elif not running.task.cancelled() and running.task.exception() is not None:
            raise running.task.exception()  # type: ignore[misc]


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 20, what: str = "condition"
) -> None:
    """Poll ``check`` until true (generous deadline: never fails because CI is slow)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def actions_of(services: Services, rule: str) -> list[OutboxAction]:
    return await services.store.outbox.list(rule=rule, limit=10_000)


async def states(services: Services, rule: str) -> list[str]:
    return [a.state for a in await actions_of(services, rule)]


async def all_in(services: Services, rule: str, *wanted: str) -> bool:
    found = await states(services, rule)
    return bool(found) and all(state in wanted for state in found)


async def events_named(
    nats_url: str, prefix: str, expected: int = 0, *, timeout: float = 20
) -> list[Event]:
    """The stored events whose name starts with ``prefix``, once there are ``expected``."""
    deadline = time.monotonic() + timeout
    async with nats_client(nats_url) as client:
        while True:
            found = await read_events(client, timeout=5, subject="interlock.events.>")
            named = [e for e in found if e.event.startswith(prefix)]
            if len(named) >= expected or time.monotonic() > deadline:
                return named
            await asyncio.sleep(0.1)


__all__ = [
    "SECRET_KEY",
    "START",
    "FakeClock",
    "Running",
    "actions_of",
    "all_in",
    "dispatching",
    "events_named",
    "eventually",
    "make_firing",
    "make_rule",
    "queue",
    "running_services",
    "states",
]
