"""The work a lease guards: the engine (:class:`EngineRole`), the schedules (:class:`ScheduleRole`).

**The engine.** Taking it over builds a fresh engine with the stored rules (the rules
may have changed on the old owner since this replica started), applies the rules
directory if its content was never applied (:mod:`interlock.service.rules_dir`), then
starts a
:class:`~interlock.service.pipeline.consumer.Pipeline` with the lease's epoch: it claims
the checkpoint row with the epoch, imports the checkpoint and reads the stream from the
sequence after it (not from the ack floor: acks run ahead of checkpoints) through a
consumer of its own, ``interlock-service-<epoch>``. Consumers of older epochs belong to
owners that are fenced; they are deleted (never the consumer of a newer epoch), and any
left behind expire after an hour of inactivity. The pipeline's run ends by itself with
:class:`~interlock.service.store.Fenced` when a newer owner claimed the row: the
campaign then stops it. While it runs, a :class:`~.rule_sync.RuleWatch` loads the rule
changes made through other replicas (announced in the lease bucket, reconciled every
10 s).

**The schedules.** Deployments' cron schedules and adapter polls run in the APScheduler
of the replica holding the ``scheduler`` lease: one job store, one scheduler at a time,
as APScheduler requires. The adapters' cursors are kept in the database, so the next
owner polls on from them. A run a schedule starts carries an idempotency key of its
scheduled minute, so a schedule that runs twice around a takeover starts one run. The
engine's deadline job follows the engine when one replica holds both; otherwise it is
removed (the pipeline judges deadlines on time by itself; the job is only their record).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.kv import KeyValue

from interlock.adapters.checkpoints import CheckpointStore, FileCheckpointStore
from interlock.adapters.config import AdapterSection
from interlock.rules.engine.engine import Engine
from interlock.sdk import EVENTS_STREAM, NatsOptions
from interlock.service.adapter_checkpoints import DatabaseCheckpointStore
from interlock.service.adapter_connections import AdapterConnections
from interlock.service.adapter_polls import load_adapter_polls
from interlock.service.context import Services
from interlock.service.ownership.rule_sync import RuleWatch
from interlock.service.pipeline.consumer import CONSUMER_NAME, ActionSlots, Pipeline
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.rules_dir import apply_rules_dir_once
from interlock.service.scheduler import Scheduler, sync_url
from interlock.service.store import Fenced

__all__ = ["EngineRole", "ScheduleRole"]

logger = logging.getLogger(__name__)

_STOP_TIMEOUT = 10.0


class EngineRole:
    """The engine and its pipeline, run by the owner of the ``engine`` lease.

    Args:
        services: The service's resources.
        host: The rule host (its engine is replaced at each takeover).
        nc: A connected NATS client.
        on_queued: Called after actions were queued (wakes the dispatcher).
        slots: The local dispatcher's free slots, lent to each batch's transaction
            (:class:`~interlock.service.pipeline.consumer.ActionSlots`).
    """

    def __init__(
        self,
        services: Services,
        host: RuleHost,
        nc: NATS,
        *,
        on_queued: Callable[[], None] | None = None,
        slots: ActionSlots | None = None,
    ) -> None:
        self.services = services
        self.host = host
        self.nc = nc
        self.on_queued = on_queued
        self.slots = slots
        self.pipeline: Pipeline | None = None
        self._task: asyncio.Task[None] | None = None
        self.rules_kv: KeyValue | None = None
        """The lease bucket, where rule changes are announced (set by the replica)."""
        self.rule_watch: RuleWatch | None = None
        self.replica_name: str | None = None
        """This replica's name (set by the replica): it applies the rules directory."""
        self._watch_task: asyncio.Task[None] | None = None

    async def start(self, epoch: int) -> None:
        """Build a fresh engine from the stored rules and consume after the checkpoint."""
        settings = self.services.settings.engine
        self.host.engine = Engine(
            now=self.services.clock.now(), lateness_tolerance=settings.lateness_tolerance
        )
        await self.host.load()
        if self.replica_name is not None:
            await apply_rules_dir_once(self.host, self.services.settings, self.replica_name)
        await self._delete_older_consumers(epoch)
        pipeline = Pipeline(
            self.services,
            self.host,
            self.nc,
            on_queued=self.on_queued,
            slots=self.slots,
            epoch=epoch,
        )
        await pipeline.start()
        self.pipeline = pipeline
        self._task = asyncio.create_task(pipeline.run(), name=f"interlock-pipeline-{epoch}")
        if self.rules_kv is not None:
            self.rule_watch = RuleWatch(self.rules_kv, self.host)
            self._watch_task = asyncio.create_task(
                self.rule_watch.run(), name=f"interlock-rule-watch-{epoch}"
            )

    async def _delete_older_consumers(self, epoch: int) -> None:
        js = self.nc.jetstream()
        try:
            consumers = await js.consumers_info(EVENTS_STREAM)
        except NatsError as exc:  # the stream may not exist yet: the pipeline creates it
            logger.debug("cannot list the consumers of %s: %s", EVENTS_STREAM, exc)
            return
        for info in consumers:
            older = _epoch_of(info.name)
            if older is not None and older < epoch:
                with contextlib.suppress(NatsError):
                    await js.delete_consumer(EVENTS_STREAM, info.name)
                    logger.info("deleted consumer %s of fenced epoch %d", info.name, older)

    async def stop(self) -> None:
        """Finish the batch in hand and stop the pipeline (its last checkpoint is fenced)."""
        watch, watch_task = self.rule_watch, self._watch_task
        self.rule_watch, self._watch_task = None, None
        if watch is not None and watch_task is not None:
            await watch.stop()
            done, _ = await asyncio.wait({watch_task}, timeout=_STOP_TIMEOUT)
            if not done:
                watch_task.cancel()
            with contextlib.suppress(BaseException):
                await watch_task
        pipeline, task = self.pipeline, self._task
        self.pipeline, self._task = None, None
        if pipeline is None or task is None:
            return
        await pipeline.stop()
        done, _ = await asyncio.wait({task}, timeout=_STOP_TIMEOUT)
        if not done:
            task.cancel()
        try:
            await task
        except Fenced as exc:  # its batch in hand was refused: nothing of it was stored
            logger.warning("the engine's last batch was refused: %s", exc)
        except BaseException as exc:  # noqa: BLE001 - stopping: logged, never raised
            logger.warning("the engine stopped with %s: %s", type(exc).__name__, exc)

    def ended(self) -> str | None:
        """Why the pipeline stopped by itself (fenced by the store), if it did."""
        task = self._task
        if task is None or not task.done():
            return None
        if task.cancelled():
            return "its pipeline was cancelled"
        exc = task.exception()
        return f"its pipeline stopped: {exc}" if exc is not None else "its pipeline stopped"

    def wake(self) -> None:
        """Judge due windows now, if this replica runs the engine."""
        if self.pipeline is not None:
            self.pipeline.wake()

    def next_due(self) -> datetime | None:
        """The engine's next due time while this replica runs it; else ``None``."""
        return self.host.engine.next_due() if self.pipeline is not None else None


def _epoch_of(consumer: str | None) -> int | None:
    """The epoch in a consumer name ``interlock-service-<epoch>``, if it is one."""
    prefix = CONSUMER_NAME + "-"
    if consumer is None or not consumer.startswith(prefix):
        return None
    suffix = consumer.removeprefix(prefix)
    return int(suffix) if suffix.isdigit() else None


class ScheduleRole:
    """Cron schedules and adapter polls, run by the owner of the ``scheduler`` lease.

    Args:
        services: The service's resources.
        engine: The engine role (its deadlines, when this replica runs the engine too).
        nats: How adapter polls publish.
    """

    def __init__(self, services: Services, engine: EngineRole, nats: NatsOptions) -> None:
        self.services = services
        self.engine = engine
        self.nats = nats
        self.scheduler: Scheduler | None = None
        self._cursors: sa.Engine | None = None

    async def start(self, epoch: int) -> None:
        """Start the APScheduler with its persisted jobs, and the adapters' polls.

        The adapters' cursors are read from and saved to the database
        (:mod:`interlock.service.adapter_checkpoints`), so they continue from where the
        previous owner of the lease stopped.
        """
        scheduler = Scheduler(
            self.services, on_deadline=self.engine.wake, next_due=self.engine.next_due
        )
        self.scheduler = scheduler
        await scheduler.start()
        settings = self.services.settings
        data_dir: Path = settings.data_dir
        cursors = self._cursors = sa.create_engine(
            sync_url(settings.database_url), pool_size=2, max_overflow=2, pool_pre_ping=True
        )

        def checkpoints(section: AdapterSection) -> CheckpointStore:
            seed = FileCheckpointStore(section.checkpoint_dir)
            return DatabaseCheckpointStore(cursors, seed=seed)

        polls: Any = await asyncio.to_thread(
            functools.partial(
                load_adapter_polls,
                settings.adapters_file,
                self.nats,
                data_dir / "spool" / "adapters",
                checkpoint_dir=data_dir / "checkpoints",
                board=self.services.adapters,
                connections=AdapterConnections(
                    self.services.store.connections, asyncio.get_running_loop()
                ),
                checkpoints=checkpoints,
            )
        )
        await scheduler.add_adapter_polls(polls)

    async def stop(self) -> None:
        """Stop the scheduler (its jobs stay in the store for the next owner)."""
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            await scheduler.stop()  # its polls end first: then no cursor is saved
        cursors, self._cursors = self._cursors, None
        if cursors is not None:
            await asyncio.to_thread(cursors.dispose)

    def ended(self) -> str | None:
        """The scheduler does not end by itself."""
        return None
