"""The scheduler's jobs live in the database: a deadline survives a restart and runs late;
a deployment's cron schedule is a stored job that starts one run per minute."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.triggers.cron import CronTrigger
from cryptography.fernet import Fernet

from interlock.rules.clock import SystemClock
from interlock.rules.engine.engine import Engine
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.service.context import Services
from interlock.service.deployments.catalog import create_deployment
from interlock.service.metrics import Metrics
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.scheduler import (
    DEADLINE_JOB,
    Scheduler,
    run_scheduled_deployment,
    sync_url,
)
from interlock.service.settings import load_settings
from interlock.service.store import Store


@pytest.fixture
async def services(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        None,
        database_url=database_url,
        nats_url=nats_url,
        secret_key=Fernet.generate_key().decode(),
        data_dir=tmp_path,
    )
    store = Store(database_url)
    await store.migrate()
    config = PublisherConfig(nats=NatsOptions(servers=(nats_url,)), spool_dir=tmp_path / "spool")
    async with Publisher(config) as publisher:
        clock = SystemClock()
        yield Services(
            settings=settings,
            store=store,
            publisher=publisher,
            clock=clock,
            metrics=Metrics(),
            rules=RuleHost(store, Engine(now=clock.now())),
        )
    await store.close()


def stored_job_ids(url: str) -> list[str]:
    engine = sa.create_engine(sync_url(url))
    with engine.connect() as connection:
        ids = [row[0] for row in connection.execute(sa.text("SELECT id FROM apscheduler_jobs"))]
    engine.dispose()
    return ids


async def test_a_deadline_missed_while_down_runs_at_the_next_start(
    services: Services, database_url: str
) -> None:
    due = services.clock.now() + timedelta(milliseconds=300)
    first = Scheduler(services, on_deadline=lambda: None, next_due=lambda: due)
    await first.start()
    await first.track_deadline()
    assert [job_id for job_id, _ in first.jobs()] == [DEADLINE_JOB]
    await first.stop()
    assert stored_job_ids(database_url) == [DEADLINE_JOB]

    await asyncio.sleep(0.5)  # the service is "down" past the deadline
    woken = asyncio.Event()
    second = Scheduler(services, on_deadline=woken.set, next_due=lambda: None)
    await second.start()
    await asyncio.wait_for(woken.wait(), timeout=10)
    await second.stop()
    assert stored_job_ids(database_url) == []  # a date job runs once


async def test_the_deadline_job_follows_the_engine(services: Services, database_url: str) -> None:
    due = [services.clock.now() + timedelta(hours=1)]
    woken = asyncio.Event()
    scheduler = Scheduler(services, on_deadline=woken.set, next_due=lambda: due[0])
    await scheduler.start()
    await scheduler.track_deadline()
    [(_, first)] = scheduler.jobs()
    assert first == due[0]
    due[0] = services.clock.now() + timedelta(milliseconds=100)  # earlier: moved at once
    await scheduler.track_deadline()
    await asyncio.wait_for(woken.wait(), timeout=10)
    await scheduler.stop()


async def test_a_deployment_schedule_is_a_stored_cron_job_that_starts_one_run_a_minute(
    services: Services, database_url: str
) -> None:
    store = services.store
    await store.queues.create("nightly-queue")
    target = {"type": "process", "command": ["true"]}
    await store.deployments.create("nightly", target=target, queue="nightly-queue")
    await store.deployments.create(
        "every-minute", target=target, queue="nightly-queue", schedule="* * * * *"
    )
    scheduler = Scheduler(services, on_deadline=lambda: None, next_due=lambda: None)
    await scheduler.start()
    try:
        await scheduler.sync_deployments()
        [(job_id, next_run)] = scheduler.jobs()
        assert job_id == "deployment:every-minute"  # unscheduled deployments have no job
        assert next_run is not None
        assert (next_run.second, next_run.microsecond) == (0, 0)  # the next minute, UTC
        assert stored_job_ids(database_url) == [job_id]  # in the database, not in memory

        # The minute comes (moved forward through APScheduler, as time would), twice:
        # the job runs twice and starts one run, keyed by the deployment and the minute.
        loop = asyncio.get_running_loop()
        executed: asyncio.Queue[object] = asyncio.Queue()
        scheduler._scheduler.add_listener(
            lambda event: loop.call_soon_threadsafe(executed.put_nowait, event),
            EVENT_JOB_EXECUTED | EVENT_JOB_ERROR,
        )
        for _ in range(2):
            await asyncio.to_thread(
                scheduler._scheduler.modify_job, job_id, next_run_time=datetime.now(UTC)
            )
            event = await asyncio.wait_for(executed.get(), timeout=10)
            assert getattr(event, "exception", None) is None
        runs = await store.runs.list(deployment="every-minute")
        assert len(runs) == 1, runs
        [run] = runs
        assert run.idempotency_key is not None
        assert run.idempotency_key.startswith("schedule:every-minute:")
        assert await store.runs.list(deployment="nightly") == []

        await store.deployments.set_schedule_enabled("every-minute", False)  # paused
        await scheduler.sync_deployments()
        assert scheduler.jobs() == []
        assert stored_job_ids(database_url) == []
    finally:
        await scheduler.stop()


def next_day_at(now: datetime, hour: int, matches: Callable[[date], bool]) -> datetime:
    """The first ``hour``:00 UTC after ``now`` on a day ``matches`` accepts, found by walking."""
    day = now.date()
    while True:
        candidate = datetime.combine(day, time(hour), UTC)
        if candidate > now and matches(day):
            return candidate
        day += timedelta(days=1)


async def test_deployment_schedules_are_standard_cron(
    services: Services, database_url: str
) -> None:
    target = {"type": "process", "command": ["true"]}
    schedules = {
        "mondays": "0 9 * * 1",  # APScheduler's from_crontab ran it on Tuesdays
        "sundays": "0 9 * * 7",  # which it refused
        "the-13th-or-fridays": "0 9 13 * 5",  # which it ANDed
        "berlin-workdays": "CRON_TZ=Europe/Berlin 0 9 * * 1-5",
    }
    for name, schedule in schedules.items():
        await create_deployment(services, name, target=target, schedule=schedule)
    # A job an earlier version stored with APScheduler's own trigger is replaced.
    old = Scheduler(services, on_deadline=lambda: None, next_due=lambda: None)
    await old.start()
    await asyncio.to_thread(
        old._scheduler.add_job,
        run_scheduled_deployment,
        CronTrigger.from_crontab("0 9 * * 1", timezone=UTC),
        args=(old.id, "mondays"),
        id="deployment:mondays",
        name="0 9 * * 1",
        replace_existing=True,
    )
    await old.stop()

    scheduler = Scheduler(services, on_deadline=lambda: None, next_due=lambda: None)
    await scheduler.start()
    try:
        now = datetime.now(UTC)
        jobs = dict(scheduler.jobs())
        assert jobs["deployment:mondays"] == next_day_at(now, 9, lambda d: d.weekday() == 0)
        assert jobs["deployment:sundays"] == next_day_at(now, 9, lambda d: d.weekday() == 6)
        assert jobs["deployment:the-13th-or-fridays"] == next_day_at(
            now, 9, lambda d: d.day == 13 or d.weekday() == 4
        )
        berlin = jobs["deployment:berlin-workdays"]
        assert berlin is not None
        local = berlin.astimezone(ZoneInfo("Europe/Berlin"))
        assert (local.hour, local.minute, local.weekday() < 5) == (9, 0, True)
        assert 0 < (berlin - now).total_seconds() <= 4 * 86_400
    finally:
        await scheduler.stop()

    # Stored, they come back after a restart as they were.
    again = Scheduler(services, on_deadline=lambda: None, next_due=lambda: None)
    await again.start()
    try:
        assert dict(again.jobs()) == jobs
    finally:
        await again.stop()


async def test_a_scheduled_run_is_keyed_by_the_time_it_is_for(services: Services) -> None:
    target = {"type": "process", "command": ["true"]}
    await create_deployment(services, "weekly", target=target, schedule="0 9 * * 1")
    scheduler = Scheduler(services, on_deadline=lambda: None, next_due=lambda: None)
    await scheduler.start()
    try:
        # Run late (coalesced after downtime) and twice: one run, for last Monday 09:00.
        await scheduler.start_scheduled_run("weekly", "0 9 * * 1")
        await scheduler.start_scheduled_run("weekly", "0 9 * * 1")
    finally:
        await scheduler.stop()
    now = datetime.now(UTC)
    monday = now.date() - timedelta(days=now.weekday())
    due = datetime.combine(monday, time(9), UTC)
    if due > now:
        due -= timedelta(days=7)
    [run] = await services.store.runs.list(deployment="weekly")
    assert run.idempotency_key == f"schedule:weekly:{due:%Y-%m-%dT%H:%MZ}"


async def test_keeping_jobs_in_step_outlives_an_error_and_counts_it(services: Services) -> None:
    """The loop never stops (interlock.sdk.retry): a bug is counted, and the job placed after."""
    due = services.clock.now() + timedelta(hours=1)
    broken = [True]

    def next_due() -> datetime:
        if broken[0]:
            raise RuntimeError("a bug in the engine's next due time")
        return due

    scheduler = Scheduler(services, on_deadline=lambda: None, next_due=next_due)
    await scheduler.start()
    try:
        await until(lambda: scheduler.errors >= 2, "two errors counted")
        broken[0] = False
        await until(lambda: scheduler.jobs() == [(DEADLINE_JOB, due)], "the deadline job")
    finally:
        await scheduler.stop()


async def until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout} s")
