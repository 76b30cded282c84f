"""Helpers of the deployment tests: services over a real store and NATS, workers run as
tasks, polling with generous deadlines, commands run with this interpreter."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from interlock.rules.clock import SystemClock
from interlock.rules.engine.engine import Engine
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.service.context import Services
from interlock.service.deployments import Worker
from interlock.service.deployments.ledger import StoreLedger
from interlock.service.metrics import Metrics
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.settings import load_settings
from interlock.service.store import Run, Store

SECRET_KEY = Fernet.generate_key().decode()
PYTHON = sys.executable


@contextlib.asynccontextmanager
async def open_services(
    database_url: str, nats_url: str, data_dir: Path
) -> AsyncIterator[Services]:
    """Services as ``interlock server`` builds them (a real store, publisher and engine)."""
    settings = load_settings(
        None,
        database_url=database_url,
        nats_url=nats_url,
        secret_key=SECRET_KEY,
        data_dir=data_dir,
    )
    clock = SystemClock()
    store = Store(database_url, secret_key=SECRET_KEY, clock=clock)
    await store.migrate()
    publisher = Publisher(
        PublisherConfig(
            nats=NatsOptions(servers=(nats_url,)), source="interlock", spool_dir=data_dir / "spool"
        )
    )
    await publisher.connect()
    try:
        yield Services(
            settings=settings,
            store=store,
            publisher=publisher,
            clock=clock,
            metrics=Metrics(),
            rules=RuleHost(store, Engine(now=clock.now())),
        )
    finally:
        await publisher.close()
        await store.close()


class Workers:
    """Starts workers as tasks; stops them all at the end of the test."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.running: list[tuple[Worker, asyncio.Task[None]]] = []

    def start(self, queues: list[str] | None, **options: Any) -> Worker:
        options.setdefault("poll_interval", 0.05)
        options.setdefault("grace", 2.0)
        worker = Worker(StoreLedger(self.services), queues, **options)
        self.running.append((worker, asyncio.create_task(worker.run())))
        return worker

    async def stop(self, worker: Worker) -> None:
        for known, task in self.running:
            if known is worker:
                await worker.stop()
                await asyncio.wait_for(task, 30)

    async def stop_all(self) -> None:
        for worker, task in self.running:
            if not task.done():
                await worker.stop()
        for _, task in self.running:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 30)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30, what: str = "condition"
) -> None:
    """Poll ``check`` until true; the deadline is generous (a slow machine is no failure)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_state(services: Services, run: Run, *states: str, timeout: float = 30) -> Run:
    """The run once it is in one of ``states``."""
    found = run

    async def reached() -> bool:
        nonlocal found
        found = await services.store.runs.get(run.id)
        return found.state in states

    await eventually(reached, timeout=timeout, what=f"run {run.id} to become {'/'.join(states)}")
    return found


def python(code: str) -> list[str]:
    """A command running ``code`` with this interpreter."""
    return [PYTHON, "-c", code]


def read(path: str | Path | None) -> str:
    """The text of a file (a run's log)."""
    assert path is not None
    return Path(path).read_text()
