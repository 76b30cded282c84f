"""Time-driven work, kept in APScheduler's persistent SQLAlchemy job store.

Jobs (in the service's database, table ``apscheduler_jobs``):

- ``engine-deadline``: at the engine's next due time (an SLA deadline, a window to
  judge) it wakes the pipeline, which judges every due window. It is moved whenever the
  engine's next due time changes. The deadline itself is also in the engine checkpoint;
  the job makes it visible and survives restarts: a deadline that passed while the
  service was down runs at start (``misfire_grace_time=None``), and the firings it
  produces are marked late by the engine.
- ``deployment:<name>``: a deployment's cron schedule (UTC unless it starts with
  ``CRON_TZ=Zone``), as a :class:`~interlock.service.cron_trigger.CronScheduleTrigger`:
  the cron of :mod:`interlock.rules.crontab`, the one rules' ``cron()`` windows use. Each
  firing starts a run with the idempotency key ``schedule:<name>:<minute>``, the minute
  being the scheduled time the run is for (the latest one at or before the job ran), so
  a job run twice (a restart at the wrong moment) starts one run. Schedules missed while
  the service was down are coalesced into one run at start, for the latest missed
  time. The jobs follow the store: deployments created, changed, paused or deleted are
  picked up within ``sync_interval``; a job stored with another trigger (APScheduler's
  own ``CronTrigger``, before this module used ours) is replaced.

- ``adapter:<name>``: an adapter's poll every ``interval`` (see
  :mod:`interlock.service.adapter_polls`), run in the scheduler's threads; the first
  poll runs at start.

Job functions are module-level (APScheduler stores them by reference) and find their
running :class:`Scheduler` through a registry keyed by the scheduler's id.

APScheduler 3's SQLAlchemy job store is synchronous, so the scheduler runs in its own
thread (``BackgroundScheduler``) and every call that writes jobs is made from a worker
thread: the store's I/O (and SQLite's wait for its write lock) never blocks the event
loop. Jobs hand their work to the loop with ``call_soon_threadsafe`` /
``run_coroutine_threadsafe``.

Keeping the jobs in step with the engine and the store is a loop that never stops, under
the policy of :mod:`interlock.sdk.retry`: the database down or busy (``StoreError``,
SQLAlchemy's ``OperationalError`` from the job store) is a warning and a retry after the
backoff; anything else is logged with its traceback, counted in :attr:`Scheduler.errors`
and retried the same way. A deadline move that failed is tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from interlock.sdk.retry import Retry
from interlock.service.adapter_polls import AdapterPoll
from interlock.service.context import Services
from interlock.service.cron_trigger import CronScheduleTrigger
from interlock.service.store import StoreError

__all__ = ["DEADLINE_JOB", "Scheduler", "sync_url"]

logger = logging.getLogger(__name__)

DEADLINE_JOB = "engine-deadline"
_DEPLOYMENT_PREFIX = "deployment:"
_ADAPTER_PREFIX = "adapter:"
_RUNNING: dict[str, Scheduler] = {}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
_FOLLOW_EVERY = 0.25
"""Seconds between two checks of the engine's next due time."""


def sync_url(url: str) -> str:
    """The synchronous-driver form of the service's database URL (for APScheduler)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    return parsed.set(drivername=_SYNC_DRIVERS[backend]).render_as_string(hide_password=False)


def judge_deadlines(scheduler_id: str) -> None:
    """Job (scheduler thread): wake the pipeline so it judges due windows."""
    scheduler = _RUNNING.get(scheduler_id)
    if scheduler is not None:
        scheduler.loop.call_soon_threadsafe(scheduler.on_deadline)


def run_scheduled_deployment(
    scheduler_id: str, deployment: str, schedule: str | None = None
) -> None:
    """Job (scheduler thread): start a run of ``deployment`` for its cron schedule."""
    scheduler = _RUNNING.get(scheduler_id)
    if scheduler is not None:
        work = scheduler.start_scheduled_run(deployment, schedule)
        asyncio.run_coroutine_threadsafe(work, scheduler.loop).result(timeout=60)


def run_adapter_poll(scheduler_id: str, adapter: str) -> None:
    """Job (scheduler thread): poll ``adapter`` and publish what it found."""
    scheduler = _RUNNING.get(scheduler_id)
    poll = scheduler.adapters.get(adapter) if scheduler is not None else None
    if poll is not None:
        poll.poll()


class Scheduler:
    """The service's APScheduler, its jobs persisted in the service's database.

    Args:
        services: The service's resources (settings give the database URL).
        on_deadline: Called when the engine's next deadline is reached.
        next_due: Returns the engine's next due time (event time), if any.
        sync_interval: How often deployment schedules are re-read from the store.
    """

    def __init__(
        self,
        services: Services,
        *,
        on_deadline: Callable[[], None],
        next_due: Callable[[], datetime | None],
        sync_interval: timedelta = timedelta(seconds=5),
    ) -> None:
        self.services = services
        self.on_deadline = on_deadline
        self.next_due = next_due
        self.sync_interval = sync_interval
        # Stable across restarts, so jobs stored by an earlier process find this one.
        digest = hashlib.sha256(services.settings.database_url.encode()).hexdigest()[:16]
        self.id = f"scheduler-{digest}"
        url = sync_url(services.settings.database_url)
        options = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}
        self._store = SQLAlchemyJobStore(url=url, engine_options=options)
        self._scheduler = BackgroundScheduler(
            jobstores={"default": self._store, "memory": MemoryJobStore()},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
        )
        self._deadline: datetime | None = None
        self._deadline_moved = 0.0
        self._task: asyncio.Task[None] | None = None
        self.adapters: dict[str, AdapterPoll] = {}
        self.loop: asyncio.AbstractEventLoop = asyncio.get_running_loop()
        self.errors = 0
        """Unexpected errors of the loop keeping the jobs in step (each retried)."""

    async def start(self) -> None:
        """Start running jobs (missed ones run now) and following the engine and store."""
        _RUNNING[self.id] = self
        await asyncio.to_thread(self._scheduler.start)
        await self.sync_deployments()
        self._task = asyncio.create_task(self._follow(), name="interlock-scheduler")

    async def stop(self) -> None:
        """Stop; persisted jobs stay for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._scheduler.running:
            await asyncio.to_thread(self._scheduler.shutdown, wait=True)
        await asyncio.to_thread(self._store.engine.dispose)
        for poll in self.adapters.values():
            await asyncio.to_thread(poll.close)
        self.adapters.clear()
        _RUNNING.pop(self.id, None)

    def jobs(self) -> list[tuple[str, datetime | None]]:
        """(job id, next run time) of every job, for the API and tests."""
        return [(job.id, job.next_run_time) for job in self._scheduler.get_jobs()]

    # -- the engine's deadline -----------------------------------------------------------

    async def track_deadline(self) -> None:
        """Move the deadline job to the engine's next due time, if it changed.

        Moves are limited to one a second, except to an earlier time: the pipeline
        judges on time by itself; the job is the deadline's persistent record.
        """
        due = self.next_due()
        if due == self._deadline:
            return
        earlier = due is not None and (self._deadline is None or due < self._deadline)
        if not earlier and time.monotonic() - self._deadline_moved < 1.0:
            return
        moved = time.monotonic()
        await asyncio.to_thread(self._move_deadline, due)
        self._deadline, self._deadline_moved = due, moved  # only once it moved

    def _move_deadline(self, due: datetime | None) -> None:
        if due is None:
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(DEADLINE_JOB)
            return
        self._scheduler.add_job(
            judge_deadlines,
            DateTrigger(run_date=due),
            args=(self.id,),
            id=DEADLINE_JOB,
            name="judge the engine's due windows",
            replace_existing=True,
        )

    async def _follow(self) -> None:
        retry = Retry(
            logger,
            "scheduler: keeping jobs in step",
            expected=(StoreError, OperationalError),
            on_unexpected=self._count_error,
        )
        last_sync = time.monotonic()
        while True:
            await asyncio.sleep(_FOLLOW_EVERY)
            try:
                await self.track_deadline()
                if time.monotonic() - last_sync >= self.sync_interval.total_seconds():
                    await self.sync_deployments()
                    last_sync = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - the loop's boundary: Retry logs it
                await retry.pause(exc)
            else:
                retry.succeeded()

    def _count_error(self, exc: BaseException) -> None:
        self.errors += 1

    # -- deployment schedules ------------------------------------------------------------

    async def sync_deployments(self) -> None:
        """Make the cron jobs match the deployments' schedules in the store."""
        wanted: dict[str, str] = {}
        for deployment in await self.services.store.deployments.list():
            if deployment.schedule and deployment.schedule_enabled:
                wanted[_DEPLOYMENT_PREFIX + deployment.name] = deployment.schedule
        await asyncio.to_thread(self._sync_jobs, wanted)

    def _sync_jobs(self, wanted: dict[str, str]) -> None:
        existing = {
            job.id: job
            for job in self._scheduler.get_jobs()
            if job.id.startswith(_DEPLOYMENT_PREFIX)
        }
        current = {
            job_id
            for job_id, job in existing.items()
            if getattr(job, "name", "") == wanted.get(job_id)
            and isinstance(job.trigger, CronScheduleTrigger)
        }
        for job_id in existing.keys() - current:
            self._scheduler.remove_job(job_id)
        for job_id, cron in wanted.items():
            if job_id in current:
                continue
            try:
                trigger = CronScheduleTrigger(cron)
            except ValueError as exc:
                logger.error("deployment %s: schedule %r is not valid: %s", job_id, cron, exc)
                continue
            self._scheduler.add_job(
                run_scheduled_deployment,
                trigger,
                args=(self.id, job_id.removeprefix(_DEPLOYMENT_PREFIX), cron),
                id=job_id,
                name=cron,
                replace_existing=True,
            )

    async def add_adapter_polls(self, polls: Sequence[AdapterPoll]) -> None:
        """Poll each adapter every its interval, from now on (replacing earlier jobs)."""
        self.adapters.update({poll.name: poll for poll in polls})
        await asyncio.to_thread(self._adapter_jobs, list(polls))

    def _adapter_jobs(self, polls: list[AdapterPoll]) -> None:
        wanted = {_ADAPTER_PREFIX + poll.name for poll in polls}
        for job in self._scheduler.get_jobs():
            if job.id.startswith(_ADAPTER_PREFIX) and job.id not in wanted:
                self._scheduler.remove_job(job.id)
        for poll in polls:
            self._scheduler.add_job(
                run_adapter_poll,
                IntervalTrigger(seconds=poll.section.interval.total_seconds(), timezone=UTC),
                args=(self.id, poll.name),
                id=_ADAPTER_PREFIX + poll.name,
                name=f"poll adapter {poll.name}",
                replace_existing=True,
                next_run_time=datetime.now(UTC),
            )

    async def start_scheduled_run(self, deployment: str, schedule: str | None = None) -> None:
        """Start the run a cron schedule asks for (once per deployment and scheduled time).

        The run is for the latest time ``schedule`` names at or before now (now itself
        without a schedule, as jobs stored by an earlier version ran).
        """
        from interlock.service.deployments.runs import start_run  # noqa: PLC0415

        now = self.services.clock.now().astimezone(UTC)
        due = None
        if schedule is not None:
            with contextlib.suppress(ValueError):
                due = CronScheduleTrigger(schedule).previous_time(now)
        minute = (due or now).strftime("%Y-%m-%dT%H:%MZ")
        try:
            await start_run(
                self.services,
                deployment,
                idempotency_key=f"schedule:{deployment}:{minute}",
                reason="schedule",
            )
        except Exception:
            logger.exception("starting the scheduled run of deployment %s failed", deployment)
