"""The running service: every component started in order, stopped in reverse.

:class:`Service` is what ``interlock server`` runs and what end-to-end tests and
benchmarks start in-process::

    async with Service(load_settings()) as service:
        await service.serve_forever()

Start order: the embedded nats-server (when ``nats_url`` is ``embedded``), the database
(migrated), the rules (the store's, then the modules under ``rules_dir`` applied over
them), the engine checkpoint, the pipeline's consumer, the dispatcher, the in-process
worker, the scheduler, and last the HTTP API — so ``/api/health`` answers only once
everything behind it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Self

import uvicorn
from nats.aio.client import Client as NATS

from interlock.rules.clock import Clock, SystemClock
from interlock.rules.engine.engine import Engine
from interlock.rules.loader import load_paths
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.sdk.connection import connect
from interlock.sdk.errors import ConfigurationError
from interlock.service.actions.destinations import webhook_destination_issues
from interlock.service.actions.dispatcher import Dispatcher
from interlock.service.adapter_polls import load_adapter_polls
from interlock.service.context import Services
from interlock.service.declared import apply_declared
from interlock.service.deployments.worker import Worker
from interlock.service.embedded_nats import EmbeddedNatsServer
from interlock.service.metrics import Metrics
from interlock.service.pipeline.broken_rules import BrokenRuleReporter
from interlock.service.pipeline.consumer import Pipeline
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.scheduler import Scheduler
from interlock.service.settings import Settings
from interlock.service.store import Store

__all__ = ["Service"]

logger = logging.getLogger(__name__)


class Service:
    """Interlock's service: pipeline, dispatcher, worker, scheduler and API in one process.

    Args:
        settings: The configuration.
        clock: Wall-clock time (a ``FakeClock`` in tests).
        serve_api: Start the HTTP API (benchmarks of the pipeline alone turn it off).
        worker: Run an in-process worker for the ``default`` queue.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        serve_api: bool = True,
        worker: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.serve_api = serve_api
        self.run_worker = worker
        self.nats_server: EmbeddedNatsServer | None = None
        self.nats_url = ""
        self.api_url = ""
        self.store: Store | None = None
        self.services: Services | None = None
        self.pipeline: Pipeline | None = None
        self.scheduler: Scheduler | None = None
        self.dispatcher: Dispatcher | None = None
        self.worker: Worker | None = None
        self.broken_rules: BrokenRuleReporter | None = None
        self._nc: NATS | None = None
        self._publisher: Publisher | None = None
        self._uvicorn: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []

    # -- start ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every component; on failure, stop what started and raise."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        nats_options = self._start_nats()
        store = Store.from_settings(settings, clock=self.clock)
        self.store = store
        self._closers.append(store.close)
        await store.migrate()
        await apply_declared(store, settings.deployments_file)
        self._nc = await connect(nats_options)
        self._closers.append(self._nc.close)
        publisher = Publisher(
            PublisherConfig(
                nats=nats_options, source="interlock", spool_dir=settings.data_dir / "spool"
            )
        )
        await publisher.connect()
        self._publisher = publisher
        self._closers.append(publisher.close)
        engine = Engine(now=self.clock.now(), lateness_tolerance=settings.engine.lateness_tolerance)
        host = RuleHost(store, engine)
        await host.load()
        await self._load_rule_files(host)
        self.services = services = Services(
            settings=settings,
            store=store,
            publisher=publisher,
            clock=self.clock,
            metrics=Metrics(),
            rules=host,
        )
        self.broken_rules = BrokenRuleReporter(services)
        host.on_broken = self.broken_rules.report
        host.flush_broken()  # rules found broken while loading
        services.metrics.rules_broken.set_function(lambda: len(host.broken()))
        self.dispatcher = Dispatcher(services)
        self.pipeline = Pipeline(services, host, self._nc, on_queued=self.dispatcher.wake)
        await self.pipeline.start()
        self._spawn(self.pipeline.run(), "pipeline")
        self._spawn(self.dispatcher.run(), "dispatcher")
        if self.run_worker:
            await self._start_worker(services)
        self.scheduler = Scheduler(
            services, on_deadline=self.pipeline.wake, next_due=engine.next_due
        )
        await self.scheduler.start()
        polls = await asyncio.to_thread(
            load_adapter_polls,
            settings.adapters_file,
            nats_options,
            settings.data_dir / "spool" / "adapters",
        )
        await self.scheduler.add_adapter_polls(polls)
        if self.serve_api:
            await self._start_api(services)
        # Built now rather than by the first action of each kind, but after the API is up:
        # they are not needed to start (the Airflow and Prefect clients take ~0.3 s).
        self.dispatcher.prepare(host.action_kinds())
        logger.info("interlock service running: API %s, NATS %s", self.api_url, self.nats_url)

    def _start_nats(self) -> NatsOptions:
        settings = self.settings
        if not settings.nats_embedded:
            options = settings.nats_options()
            self.nats_url = ",".join(options.servers)
            return options
        server = EmbeddedNatsServer(store_dir=settings.data_dir / "nats", port=4222)
        server.start()
        self.nats_server = server
        self.nats_url = server.url
        logger.info("embedded nats-server at %s (store %s)", server.url, server.store_dir)
        return NatsOptions(servers=(server.url,), name="interlock-service")

    async def _load_rule_files(self, host: RuleHost) -> None:
        rules_dir = self.settings.rules_dir
        if not rules_dir.exists():
            logger.info("no rules directory %s: using the stored rules only", rules_dir)
            return
        loaded = load_paths([rules_dir])
        for problem in loaded.problems:
            logger.error("rules: %s (the other rules still load)", problem)
        allowed = []
        for rule in loaded.rules:
            issues = webhook_destination_issues(rule, self.settings)
            for issue in issues:
                logger.error("rules: %s (the other rules still load)", issue)
            if not issues:
                allowed.append(rule)
        changes = await host.apply(allowed)
        changed = sum(1 for change in changes if change.change != "unchanged")
        logger.info("rules: %d from %s (%d new or changed)", len(changes), rules_dir, changed)

    async def _start_worker(self, services: Services) -> None:
        # Every queue, those created while the service runs included.
        self.worker = Worker(services, None, name=f"embedded-{socket.gethostname()}")
        self._spawn(self.worker.run(), "worker")

    async def _start_api(self, services: Services) -> None:
        from interlock.service.api.app import check_can_serve, create_app  # noqa: PLC0415

        await check_can_serve(services)
        app = create_app(services)
        api = self.settings.api
        config = uvicorn.Config(
            app, host=api.host, port=api.port, log_level="warning", lifespan="on"
        )
        server = _QuietServer(config)
        self._uvicorn = server
        self._spawn(server.serve(), "api")
        while not server.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()  # raises why it could not serve
                raise ConfigurationError("api", f"cannot serve on {api.host}:{api.port}")
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1] if server.servers else api.port
        self.api_url = f"http://{api.host}:{port}"

    def _spawn(self, work: Awaitable[Any], name: str) -> None:
        async def guarded() -> Any:
            try:
                return await work
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("interlock %s stopped with an error", name)
                raise

        self._tasks.append(asyncio.create_task(guarded(), name=f"interlock-{name}"))

    # -- run and stop --------------------------------------------------------------------

    async def serve_forever(self) -> None:
        """Wait until a component stops (it should not) or the task is cancelled."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()

    async def stop(self) -> None:
        """Stop every component, the newest first."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self.scheduler is not None:
            await self.scheduler.stop()
        for component in (self.worker, self.dispatcher, self.pipeline):
            if component is not None:
                with contextlib.suppress(Exception):
                    await component.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        while self._closers:
            close = self._closers.pop()
            with contextlib.suppress(Exception):
                await close()
        if self.nats_server is not None:
            self.nats_server.stop()
            self.nats_server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to ``interlock server`` (it runs in our loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
