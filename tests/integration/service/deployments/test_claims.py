"""Claiming runs atomically: many claimers at once, on two stores (two "processes")."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from integration.service.deployments.deploy_fixtures import SECRET_KEY
from interlock.service.store import Store


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    first = Store(database_url, secret_key=SECRET_KEY, pool_size=8)
    second = Store(database_url, secret_key=SECRET_KEY, pool_size=8)
    await first.migrate()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def _setup(store: Store, queue: str, runs: int, limit: int | None) -> None:
    await store.queues.create(queue, concurrency_limit=limit)
    await store.deployments.create(
        f"job-{queue}", target={"type": "process", "command": ["true"]}, queue=queue
    )
    for _ in range(runs):
        await store.runs.create(f"job-{queue}")


async def _claim_all(stores: tuple[Store, Store], queue: str, claimers: int) -> list[str]:
    cycle = itertools.cycle(stores)
    claims = await asyncio.gather(
        *(next(cycle).runs.claim([queue], worker=f"w{n}", limit=5) for n in range(claimers))
    )
    return [str(run.id) for claim in claims for run in claim]


async def test_concurrent_claimers_never_exceed_a_queue_limit(
    stores: tuple[Store, Store],
) -> None:
    store = stores[0]
    await _setup(store, "limited", runs=30, limit=3)
    for _ in range(3):
        claimed = await _claim_all(stores, "limited", claimers=12)
        assert len(claimed) == len(set(claimed))
        running = await store.runs.list(queue="limited", state="running")
        assert len(running) == 3
        assert sorted(claimed) == sorted(str(r.id) for r in running)
        for run in running:
            await store.runs.transition(run.id, "completed")


async def test_concurrent_claimers_take_each_run_once(stores: tuple[Store, Store]) -> None:
    store = stores[0]
    await _setup(store, "open", runs=40, limit=None)
    claimed = await _claim_all(stores, "open", claimers=10)
    assert len(claimed) == 40
    assert len(set(claimed)) == 40
    assert await store.runs.list(queue="open", state="pending") == []


async def test_claims_skip_paused_queues_and_runs_not_due(stores: tuple[Store, Store]) -> None:
    store = stores[0]
    await _setup(store, "held", runs=2, limit=None)
    await store.queues.set_paused("held", True)
    await _setup(store, "later", runs=0, limit=None)
    soon = store.runs
    later = await soon.create(
        "job-later", state="scheduled", scheduled_at=store._db.now() + timedelta(hours=1)
    )
    assert await store.runs.claim(["held", "later"], worker="w", limit=10) == []
    assert await store.runs.release_due(["later"]) == []
    assert (await store.runs.get(later.id)).state == "scheduled"
    await store.queues.set_paused("held", False)
    claimed = await store.runs.claim(
        ["held"], worker="w", limit=10, log_path=lambda run_id: f"/logs/{run_id}.log"
    )
    assert len(claimed) == 2
    assert {(r.state, r.message) for r in claimed} == {("running", "running on worker w")}
    assert {r.log_path for r in claimed} == {f"/logs/{r.id}.log" for r in claimed}
    crashed = await store.runs.crash_worker_runs("w", "lost")
    assert sorted(r.id for r in crashed) == sorted(r.id for r in claimed)
    assert {r.state for r in crashed} == {"crashed"}
