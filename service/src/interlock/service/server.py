"""The running service: every component started in order, stopped in reverse.

:class:`Service` is what ``interlock server`` runs and what end-to-end tests and
benchmarks start in-process::

    async with Service(load_settings()) as service:
        await service.serve_forever()

Start order: the data directory's lock (one server per data directory, see
:mod:`.data_dir`), the embedded nats-server (when ``nats_url`` is ``embedded``), the
database (migrated), the rules (the store's, then the modules under ``rules_dir`` applied
over them; with replicas, by the engine's owner once per content of the directory, see
:mod:`.rules_dir`), the engine checkpoint, the pipeline's consumer, the dispatcher, the
in-process worker, the scheduler, and last the HTTP API — so ``/api/health`` answers only
once everything behind it runs. Then ``<data_dir>/server.json`` tells local command lines
where the API and the embedded NATS are (:mod:`interlock.sdk.local_server`).

With ``replicas.enabled`` (PostgreSQL and a NATS server or cluster, see
:mod:`.ownership`), the pipeline and the scheduler are not started directly: they run on
whichever replica holds their lease, and this one may stand by (``/api/health`` says
which). The dispatcher, the worker and the API run on every replica. Without it, a second
server on the same SQLite file or on this server's embedded nats-server is refused
(:mod:`.ownership.refusal`).

The embedded nats-server keeps its port across restarts: ``embedded_nats_port`` when set
(the start fails if it is taken), else the port it had last time, else 4222, else a free
port — each written to ``server.json`` for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn
from nats.aio.client import Client as NATS

from interlock.rules.clock import Clock, SystemClock
from interlock.rules.engine.engine import Engine
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.sdk.connection import connect
from interlock.sdk.errors import ConfigurationError
from interlock.sdk.local_server import LocalServer, read_local_server, write_local_server
from interlock.service.actions.dispatcher import Dispatcher
from interlock.service.adapter_connections import AdapterConnections
from interlock.service.adapter_polls import load_adapter_polls
from interlock.service.adapter_status import AdapterBoard
from interlock.service.connections.events import forget_on_change
from interlock.service.context import Services
from interlock.service.data_dir import DataDirLock
from interlock.service.declared import apply_declared
from interlock.service.deployments.ledger import StoreLedger
from interlock.service.deployments.worker import Worker
from interlock.service.embedded_nats import EmbeddedNatsServer
from interlock.service.metrics import Metrics
from interlock.service.ownership import (
    EMBEDDED_NATS_NAME,
    EngineRole,
    Replica,
    ScheduleRole,
    SqliteLock,
    refuse_embedded_nats_of_another,
)
from interlock.service.pipeline.broken_rules import BrokenRuleReporter
from interlock.service.pipeline.consumer import Pipeline
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.rules_dir import apply_rules_dir
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
        self._data_dir_lock = DataDirLock(settings.data_dir)
        self._sqlite_lock = SqliteLock(settings.database_url)
        self.replica: Replica | None = None
        self._listening: socket.socket | None = None
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
        self._data_dir_lock.acquire()
        self._sqlite_lock.acquire()
        if self.serve_api:  # taken first: a port clash stops the start before anything runs
            api = settings.api
            self._listening = _bind(api.host, api.port)
        nats_options = self._start_nats()
        store = Store.from_settings(settings, clock=self.clock)
        self.store = store
        self._closers.append(store.close)
        await store.migrate()
        await apply_declared(store, settings.deployments_file)
        self._nc = await connect(nats_options)
        self._closers.append(self._nc.close)
        # A connection changed through another replica: forget it here at once.
        await forget_on_change(self._nc, store.connections)
        if self.nats_server is None:
            refuse_embedded_nats_of_another(self._nc, self.nats_url)
        publisher = Publisher(
            PublisherConfig(
                nats=nats_options, source="interlock", spool_dir=settings.data_dir / "spool"
            )
        )
        await publisher.connect()
        self._publisher = publisher
        self._closers.append(publisher.close)
        metrics = Metrics()
        engine = Engine(now=self.clock.now(), lateness_tolerance=settings.engine.lateness_tolerance)
        host = RuleHost(store, engine)
        await host.load()
        if not settings.replicas.enabled:  # replicas: the engine's owner, once per content
            await apply_rules_dir(host, settings)
        self.services = services = Services(
            settings=settings,
            store=store,
            publisher=publisher,
            clock=self.clock,
            metrics=metrics,
            rules=host,
            adapters=AdapterBoard(metrics),
            replica=self._replica_status if settings.replicas.enabled else None,
        )
        self.broken_rules = BrokenRuleReporter(services)
        host.on_broken = self.broken_rules.report
        host.flush_broken()  # rules found broken while loading
        services.metrics.rules_broken.set_function(lambda: len(host.broken()))
        self.dispatcher = Dispatcher(services)
        if settings.replicas.enabled:
            await self._start_replica(services, host, nats_options)
        else:
            await self._start_engine(services, host, engine, nats_options)
        if self.serve_api:
            await self._start_api(services)
        # Built now rather than by the first action of each kind, but after the API is up:
        # they are not needed to start (the Airflow and Prefect clients take ~0.3 s).
        self.dispatcher.prepare(host.action_kinds())
        self._tell_local_command_lines()
        logger.info("interlock service running: API %s, NATS %s", self.api_url, self.nats_url)

    async def _start_engine(
        self, services: Services, host: RuleHost, engine: Engine, nats_options: NatsOptions
    ) -> None:
        """One server: the pipeline, dispatcher, worker and scheduler, all here."""
        assert self.dispatcher is not None
        assert self._nc is not None
        settings = self.settings
        self.pipeline = Pipeline(
            services, host, self._nc, on_queued=self.dispatcher.wake, slots=self.dispatcher
        )
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
            functools.partial(
                load_adapter_polls,
                settings.adapters_file,
                nats_options,
                settings.data_dir / "spool" / "adapters",
                checkpoint_dir=settings.data_dir / "checkpoints",
                board=services.adapters,
                connections=AdapterConnections(
                    services.store.connections, asyncio.get_running_loop()
                ),
            )
        )
        await self.scheduler.add_adapter_polls(polls)

    async def _start_replica(
        self, services: Services, host: RuleHost, nats_options: NatsOptions
    ) -> None:
        """One of several replicas: the engine and the schedules run under their leases."""
        assert self.dispatcher is not None
        assert self._nc is not None
        engine_role = EngineRole(
            services, host, self._nc, on_queued=self.dispatcher.wake, slots=self.dispatcher
        )
        schedules = ScheduleRole(services, engine_role, nats_options)
        self.replica = Replica(self.settings, self._nc, engine_role, schedules)
        campaigns = await self.replica.open()
        logger.info(
            "replica %s: the engine and the schedules run where their leases are "
            "(bucket %s, TTL %s)",
            self.replica.name,
            self.settings.replicas.lease_bucket,
            self.settings.replicas.lease_ttl,
        )
        for name, campaign in zip(self.replica.campaigns, campaigns, strict=True):
            self._spawn(campaign, f"{name}-lease")
        self._spawn(self.dispatcher.run(), "dispatcher")
        if self.run_worker:
            await self._start_worker(services)

    def _replica_status(self) -> dict[str, Any] | None:
        return self.replica.status() if self.replica is not None else None

    def _tell_local_command_lines(self) -> None:
        embedded = self.nats_url if self.nats_server is not None else ""
        about = LocalServer(pid=os.getpid(), api_url=self.api_url, nats_url=embedded)
        try:
            write_local_server(self.settings.data_dir, about)
        except OSError as exc:
            logger.warning("cannot write %s/server.json (%s)", self.settings.data_dir, exc)

    def _start_nats(self) -> NatsOptions:
        settings = self.settings
        if not settings.nats_embedded:
            options = settings.nats_options()
            self.nats_url = ",".join(options.servers)
            return options
        port, required = settings.embedded_nats_port, True
        if port is None:
            port, required = _remembered_nats_port(settings.data_dir) or 4222, False
        server = EmbeddedNatsServer(
            store_dir=settings.data_dir / "nats",
            port=port,
            fallback=not required,
            name=EMBEDDED_NATS_NAME,  # how a second server on it is refused
        )
        server.start()
        if server.port != port:
            logger.warning(
                "the embedded nats-server listens on %s, not on port %d (taken): producers "
                "configured with the old URL spool until they are given this one; set "
                "embedded_nats_port to choose a port",
                server.url,
                port,
            )
        self.nats_server = server
        self.nats_url = server.url
        logger.info("embedded nats-server at %s (store %s)", server.url, server.store_dir)
        return NatsOptions(servers=(server.url,), name="interlock-service")

    async def _start_worker(self, services: Services) -> None:
        # Every queue, those created while the service runs included.
        # One of several replicas: a name per process, so a replica starting on the same
        # host does not take the other's running runs for its own lost ones.
        name = f"embedded-{socket.gethostname()}"
        if self.settings.replicas.enabled:
            name += f"-{os.getpid()}"
        self.worker = Worker(StoreLedger(services), None, name=name)
        self._spawn(self.worker.run(), "worker")

    async def _start_api(self, services: Services) -> None:
        from interlock.service.api.app import check_can_serve, create_app  # noqa: PLC0415

        await check_can_serve(services)
        app = create_app(services)
        api = self.settings.api
        listening = self._listening or _bind(api.host, api.port)
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        server = _QuietServer(config)
        self._uvicorn = server
        self._spawn(server.serve(sockets=[listening]), "api")
        while not server.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()  # raises why it could not serve
                raise ConfigurationError("api", f"cannot serve on {api.host}:{api.port}")
            await asyncio.sleep(0.02)
        port = listening.getsockname()[1]
        host = f"[{api.host}]" if ":" in api.host else api.host
        self.api_url = f"http://{host}:{port}"

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
            from interlock.service.api.app import stop_streams  # noqa: PLC0415

            # Open pages' streams end first: the web server waits for them before it stops.
            stop_streams(self._uvicorn.config.app)
            self._uvicorn.should_exit = True
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.replica is not None:
            await self.replica.stop()  # each campaign stops its work, then its lease
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
        if self._listening is not None:
            self._listening.close()
            self._listening = None
        self._sqlite_lock.release()
        self._data_dir_lock.release()

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


def _remembered_nats_port(data_dir: Path) -> int | None:
    """The port the embedded nats-server had the last time (``server.json``)."""
    last = read_local_server(data_dir)
    if last is None or not last.nats_url:
        return None
    try:
        return int(last.nats_url.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket for the API, or a one-line :class:`ConfigurationError`.

    Bound here rather than by uvicorn, whose own error for a port in use is a log line
    and an exit from inside the event loop.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
        listening.listen(2048)
    except OSError as exc:
        listening.close()
        if exc.errno == errno.EADDRINUSE:
            reason = (
                f"{host}:{port} is in use by another process: stop it, or choose another "
                "port (--port, INTERLOCK_API__PORT or [api] port)"
            )
        else:
            reason = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise ConfigurationError("api.port", reason) from None
    listening.setblocking(False)
    return listening


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to ``interlock server`` (it runs in our loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
