"""The scheduler's jobs live in the database: a deadline survives a restart and runs late."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from interlock.rules.clock import SystemClock
from interlock.rules.engine.engine import Engine
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.service.context import Services
from interlock.service.metrics import Metrics
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.scheduler import DEADLINE_JOB, Scheduler, sync_url
from interlock.service.settings import load_settings
from interlock.service.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'interlock.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


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
