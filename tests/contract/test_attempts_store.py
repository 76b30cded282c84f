"""Attempts are kept with their outcomes: on SQLite and PostgreSQL (see test_store.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec

from contract.store_fixtures import START, entries_for, make_firing
from interlock.rules.clock import FakeClock
from interlock.service.store import Store
from interlock.service.store.outbox import Outcome


async def test_each_attempt_is_kept_with_its_outcome_error_and_duration(
    store: Store, clock: FakeClock
) -> None:
    firing = make_firing()
    await store.store_batch([firing], entries_for(firing, 1))
    for n in (1, 2):
        (row,) = await store.outbox.claim(worker="w")
        failed = Outcome.retry(row, f"HTTP 503 ({n})", at=clock.now())
        timed = msgspec.structs.replace(failed, started_at=clock.now(), duration=0.25 * n)
        await store.outbox.finish_many([timed], worker="w", suspend_after=10)
        clock.advance(timedelta(seconds=10))
    (row,) = await store.outbox.claim(worker="w")
    await store.outbox.finish_many([Outcome.succeeded(row)], worker="w", suspend_after=10)

    attempts = await store.attempts.of_firing(firing.id)

    assert [(a.attempt, a.outcome, a.error) for a in attempts] == [
        (1, "retry", "HTTP 503 (1)"),
        (2, "retry", "HTTP 503 (2)"),
        (3, "succeeded", None),
    ]
    assert [a.duration for a in attempts] == [0.25, 0.5, None]
    assert [a.started_at for a in attempts] == [
        START,
        START + timedelta(seconds=10),
        START + timedelta(seconds=20),  # not said: the time it was recorded
    ]
    assert {(a.action_key, a.index, a.worker) for a in attempts} == {(row.idempotency_key, 0, "w")}


async def test_a_deferral_is_not_an_attempt(store: Store, clock: FakeClock) -> None:
    firing = make_firing()
    await store.store_batch([firing], entries_for(firing, 1))
    (row,) = await store.outbox.claim(worker="w")
    deferred = Outcome.deferred(row, at=clock.now() + timedelta(seconds=1))
    await store.outbox.finish_many([deferred], worker="w", suspend_after=10)

    assert await store.attempts.of_firing(firing.id) == []


async def test_attempts_are_listed_per_firing_by_action(store: Store, clock: FakeClock) -> None:
    first, second = make_firing(n=1), make_firing(n=2)
    await store.store_batch([first, second], entries_for(first, 2) + entries_for(second, 1))
    rows = await store.outbox.claim(worker="w")
    outcomes = [Outcome.failed(row, "no") for row in reversed(rows)]
    await store.outbox.finish_many(outcomes, worker="w", suspend_after=10)

    assert [(a.index, a.outcome) for a in await store.attempts.of_firing(first.id)] == [
        (0, "failed"),
        (1, "failed"),
    ]
    assert len(await store.attempts.of_firing(second.id)) == 1


async def test_an_outcome_not_applied_leaves_no_attempt(store: Store, clock: FakeClock) -> None:
    firing = make_firing()
    await store.store_batch([firing], entries_for(firing, 1))
    (row,) = await store.outbox.claim(worker="w1", lease=timedelta(seconds=5))
    clock.advance(timedelta(seconds=10))  # w1's lease expired: w2 takes the row
    (again,) = await store.outbox.claim(worker="w2")
    late = await store.outbox.finish_many([Outcome.succeeded(row)], worker="w1", suspend_after=10)
    unknown = msgspec.structs.replace(Outcome.succeeded(again), key=uuid.uuid4())
    await store.outbox.finish_many([unknown], worker="w2", suspend_after=10)

    assert late.applied == set()
    assert await store.attempts.of_firing(firing.id) == []
