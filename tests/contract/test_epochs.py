"""Fencing by epoch (issue 19, step 1), on SQLite and PostgreSQL.

A replica claims the engine checkpoint with its lease's epoch; each batch it stores is
checked against the row in the batch's transaction. These bodies run on both backends;
the race between a claim and a batch in flight (row locks) is PostgreSQL's and tested
there only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
import sqlalchemy as sa

from contract.store_fixtures import entries_for, make_firing, sync_engine
from interlock.service.store import Checkpoint, Fenced, Store
from interlock.service.store.epochs import claim


async def test_a_claim_on_an_empty_store_finds_no_checkpoint_and_creates_the_row(
    store: Store,
) -> None:
    assert await store.claim_checkpoint(7) is None
    assert await store.checkpoint() is None  # the epoch-only row is no checkpoint
    result = await store.store_batch([make_firing()], [], None, epoch=7)
    assert len(result.stored) == 1


async def test_a_newer_claim_fences_the_older_epoch(store: Store, other_store: Store) -> None:
    await store.claim_checkpoint(5)
    saved = Checkpoint(state=b"state-1", stream_sequence=10)
    await store.store_batch([], [], saved, epoch=5)
    claimed = await other_store.claim_checkpoint(9)
    assert claimed is not None
    assert (claimed.state, claimed.stream_sequence) == (b"state-1", 10)
    firing = make_firing(n=1)
    with pytest.raises(Fenced) as refused:
        await store.store_batch([firing], entries_for(firing), None, epoch=5)
    assert refused.value.epoch == 5
    assert refused.value.current == 9
    assert "another replica took the engine over" in str(refused.value)
    with pytest.raises(Fenced):
        await store.store_batch([], [], Checkpoint(state=b"old", stream_sequence=11), epoch=5)
    # Nothing of the refused batches was written.
    with pytest.raises(Exception, match="no firing"):
        await store.firings.get(firing.id)
    assert (await store.checkpoint()).state == b"state-1"  # type: ignore[union-attr]
    # The new owner writes on.
    await other_store.store_batch([firing], entries_for(firing), None, epoch=9)
    await other_store.store_batch([], [], Checkpoint(state=b"s2", stream_sequence=12), epoch=9)
    assert (await store.checkpoint()).stream_sequence == 12  # type: ignore[union-attr]


async def test_an_older_epoch_cannot_claim_after_a_newer_one(store: Store) -> None:
    await store.claim_checkpoint(20)
    with pytest.raises(Fenced):
        await store.claim_checkpoint(19)
    assert await store.claim_checkpoint(20) is None  # the same epoch again is fine


async def test_a_single_server_writes_without_an_epoch(store: Store) -> None:
    """No replicas: no epoch given, nothing read or locked, the row keeps epoch 0."""
    await store.store_batch([], [], Checkpoint(state=b"x", stream_sequence=3))
    await store.store_batch([make_firing()], [], None)
    assert (await store.checkpoint()).stream_sequence == 3  # type: ignore[union-attr]
    # A replica taking over a single server's database claims its checkpoint.
    assert (await store.claim_checkpoint(1)).state == b"x"  # type: ignore[union-attr]


async def test_postgresql_a_claim_waits_for_a_batch_in_flight(
    postgres_url: str,
) -> None:
    """The row lock orders them: the batch that holds it commits, then the claim wins."""
    async with Store(postgres_url) as first, Store(postgres_url) as second:
        await first.migrate()
        await first.claim_checkpoint(1)
        with sync_engine(postgres_url) as engine, engine.connect() as held:
            # A batch of epoch 1 holds the row's lock (as store_batch does) ...
            held.execute(sa.text("BEGIN"))
            held.execute(
                sa.text("SELECT epoch FROM engine_checkpoints WHERE name='default' FOR UPDATE")
            )
            claim = asyncio.create_task(second.claim_checkpoint(2))
            await asyncio.sleep(0.3)
            assert not claim.done()  # ... so the claim waits for it
            held.execute(sa.text("COMMIT"))
        await asyncio.wait_for(claim, 10)
        with pytest.raises(Fenced):
            await first.store_batch([make_firing()], [], None, epoch=1)


async def test_postgresql_a_paused_owner_mid_batch_loses_its_lock_after_the_idle_limit(
    postgres_url: str,
) -> None:
    """An owner paused inside a batch's transaction (SIGSTOP, a frozen VM) holds the row
    lock no longer than the store's idle-in-transaction limit (the lease's TTL with
    replicas): the next owner's claim goes through, and the paused one is fenced."""
    async with (
        Store(postgres_url, idle_in_transaction=1.0) as first,
        Store(postgres_url) as second,
    ):
        await first.migrate()
        await first.claim_checkpoint(1)
        held = first._db.transaction()  # a batch of epoch 1, paused after its lock
        connection = await held.__aenter__()
        await connection.execute(
            sa.text("SELECT epoch FROM engine_checkpoints WHERE name='default' FOR UPDATE")
        )
        claimed = await asyncio.wait_for(second.claim_checkpoint(2), 10)
        assert claimed is None  # no checkpoint saved yet: only the epoch moved on
        with pytest.raises(Exception):  # noqa: B017, PT011 - the session was ended
            await connection.execute(sa.text("SELECT 1"))
        with contextlib.suppress(Exception):
            await held.__aexit__(None, None, None)
        with pytest.raises(Fenced):
            await first.store_batch([make_firing()], [], None, epoch=1)


async def test_postgresql_a_claim_that_waits_says_which_session_holds_the_row(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with Store(postgres_url) as store:
        await store.migrate()
        await store.claim_checkpoint(1)
        with sync_engine(postgres_url) as engine, engine.connect() as holder:
            holder.execute(sa.text("SET application_name = 'paused-owner'"))
            pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            holder.execute(
                sa.text("SELECT epoch FROM engine_checkpoints WHERE name='default' FOR UPDATE")
            )
            with caplog.at_level(logging.WARNING, logger="interlock.service.store.epochs"):
                claiming = asyncio.ensure_future(claim(store._db, 2, wait_report=0.2))
                await asyncio.sleep(0.7)
                assert not claiming.done()  # the row is held
                holder.rollback()  # the holder goes away: the claim goes through
            assert await asyncio.wait_for(claiming, 10) is None
    reports = [r.getMessage() for r in caplog.records if "has waited" in r.getMessage()]
    assert reports, caplog.text
    assert f"pid {pid} idle in transaction" in reports[0]
    assert "paused-owner" in reports[0]
    assert "FOR UPDATE" in reports[0]
