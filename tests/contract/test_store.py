"""The store contract: the same test bodies against SQLite and PostgreSQL.

Each test gets an empty, migrated database on both backends (``store``, from
``conftest.py``): a new SQLite file, or the module's PostgreSQL database truncated.
Migration tests start from a new, never-migrated database (``fresh_database_url``).
Tests that only make sense on one backend say so in their name and take that backend's
fixture.

SQLite has one writer at a time: every store transaction begins with ``BEGIN IMMEDIATE``,
so two claimers (or two appliers) run one after the other. What applies there is tested
by the same bodies (concurrent claimers get disjoint rows); row locks that skip each
other (``FOR UPDATE SKIP LOCKED``) are PostgreSQL's and tested there only.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet

from contract.store_fixtures import (
    START,
    entries_for,
    make_firing,
    make_rule,
    sync_engine,
)
from harness.postgres import PostgresCluster
from interlock.rules.clock import FakeClock
from interlock.rules.engine.firing import Firing
from interlock.service.migrations import context_options, head
from interlock.service.settings import load_settings
from interlock.service.store import (
    TRANSITIONS,
    AlreadyExists,
    Checkpoint,
    InvalidRecord,
    InvalidTransition,
    NotFound,
    RunState,
    Store,
    StoreError,
    StoreUnavailable,
)
from interlock.service.store.outbox import Outcome, Reservation
from interlock.service.store.tables import metadata

CHANNEL_URL = "slack://T0KEN-A/T0KEN-B/s3cr3t-T0KEN-C"
SECRET_PART = "s3cr3t"
# -- migrations ---------------------------------------------------------------------------


async def test_migrate_upgrades_to_head_and_is_idempotent(fresh_database_url: str) -> None:
    async with Store(fresh_database_url) as store:
        assert await store.revision() is None
        assert await store.migrate() == head()
        assert await store.migrate() == head()
        assert await store.revision() == head()


async def test_autogenerate_finds_no_difference_between_models_and_migrations(
    store: Store, database_url: str
) -> None:
    with sync_engine(database_url) as engine, engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts=context_options(connection.dialect.name)
        )
        assert compare_metadata(context, metadata) == []


async def test_migrations_ignore_tables_that_are_not_ours(fresh_database_url: str) -> None:
    with sync_engine(fresh_database_url) as engine, engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY)"))
    async with Store(fresh_database_url) as store:
        assert await store.migrate() == head()
    with sync_engine(fresh_database_url) as engine, engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts=context_options(connection.dialect.name)
        )
        assert compare_metadata(context, metadata) == []


async def test_replicas_migrating_at_once_agree(fresh_database_url: str) -> None:
    stores = [Store(fresh_database_url) for _ in range(3)]
    try:
        revisions = await asyncio.gather(*(store.migrate() for store in stores))
    finally:
        for store in stores:
            await store.close()
    assert revisions == [head()] * 3


# -- rules --------------------------------------------------------------------------------


async def test_apply_versions_a_rule_only_when_it_changes(store: Store, clock: FakeClock) -> None:
    created = await store.rules.apply(make_rule())
    clock.advance("1m")
    unchanged = await store.rules.apply(make_rule())
    clock.advance("1m")
    updated = await store.rules.apply(make_rule(title="refreshed again"))

    assert (created.change, unchanged.change, updated.change) == ("created", "unchanged", "updated")
    assert (created.record.version, unchanged.record.version, updated.record.version) == (1, 1, 2)
    current = await store.rules.get("sales-refreshed")
    assert current.version == 2
    assert current.rule == make_rule(title="refreshed again")
    assert current.created_at == START
    assert current.updated_at == START + timedelta(minutes=2)
    versions = await store.rules.versions("sales-refreshed")
    assert [(v.version, v.rule) for v in versions] == [
        (1, make_rule()),
        (2, make_rule(title="refreshed again")),
    ]
    assert versions[0].digest != versions[1].digest
    assert versions[1].created_at == START + timedelta(minutes=2)


async def test_rules_list_pause_and_delete(store: Store) -> None:
    changes = await store.rules.apply_all([make_rule("b-rule"), make_rule("a-rule")])
    assert [change.change for change in changes] == ["created", "created"]
    assert [record.name for record in await store.rules.list()] == ["a-rule", "b-rule"]

    paused = await store.rules.set_paused("a-rule", True)
    assert paused.paused
    assert (await store.rules.get("a-rule")).paused
    assert (await store.rules.apply(make_rule("a-rule", title="new"))).record.paused
    assert not (await store.rules.set_paused("a-rule", False)).paused

    await store.rules.delete("a-rule")
    assert [record.name for record in await store.rules.list()] == ["b-rule"]
    with pytest.raises(NotFound):
        await store.rules.versions("a-rule")
    assert (await store.rules.apply(make_rule("a-rule"))).record.version == 1


async def test_current_reads_many_rules_at_their_latest_version(store: Store) -> None:
    """A plan of 12,000 rules asks once: the batch is larger than a query's chunk."""
    await store.rules.apply_all([make_rule(f"r{i}") for i in range(1_200)])
    await store.rules.apply(make_rule("r7", title="changed"))
    wanted = [f"r{i}" for i in range(0, 1_200, 3)] + ["absent", "r7", "r7"]
    found = await store.rules.current(wanted)
    assert sorted(found) == sorted({f"r{i}" for i in range(0, 1_200, 3)} | {"r7"})
    assert found["r7"].version == 2
    assert found["r3"].version == 1
    assert found["r7"] == await store.rules.get("r7")


@pytest.mark.parametrize("call", ["get", "versions", "set_paused", "delete"])
async def test_unknown_rule_is_not_found(store: Store, call: str) -> None:
    method = getattr(store.rules, call)
    args = ("nope", True) if call == "set_paused" else ("nope",)
    with pytest.raises(NotFound, match="no rule 'nope'") as caught:
        await method(*args)
    assert isinstance(caught.value, LookupError)


async def test_concurrent_applies_of_one_rule_make_consecutive_versions(
    store: Store, other_store: Store
) -> None:
    await asyncio.gather(
        *(
            target.rules.apply(make_rule(title=f"title {n}"))
            for n, target in enumerate([store, other_store] * 4)
        )
    )
    versions = await store.rules.versions("sales-refreshed")
    assert [v.version for v in versions] == list(range(1, 9))


# -- firings and the batch ----------------------------------------------------------------


async def test_store_batch_stores_firings_outbox_and_checkpoint(store: Store) -> None:
    firings = [make_firing(n=0), make_firing(n=1), make_firing("other", "k")]
    entries = [entry for firing in firings for entry in entries_for(firing)]
    result = await store.store_batch(
        firings, entries, Checkpoint(state=b'{"v":1}', stream_sequence=42)
    )

    assert result.stored == [f.id for f in firings]
    assert result.already_stored == []
    assert sorted(result.queued) == sorted(entry.idempotency_key for entry in entries)
    for firing in firings:
        assert await store.firings.get(firing.id) == firing
    checkpoint = await store.checkpoint()
    assert checkpoint is not None
    assert (checkpoint.state, checkpoint.stream_sequence, checkpoint.saved_at) == (
        b'{"v":1}',
        42,
        START,
    )
    actions = await store.outbox.list()
    assert len(actions) == 6
    assert {a.state for a in actions} == {"pending"}
    assert all(a.idempotency_key == uuid.uuid5(a.firing_id, str(a.index)) for a in actions)
    assert actions[0].action == msgspec.to_builtins(entries_for(firings[0])[0].action)


async def test_a_replayed_firing_is_already_stored_and_queues_nothing(store: Store) -> None:
    firing = make_firing()
    await store.store_batch(
        [firing], entries_for(firing), Checkpoint(state=b"1", stream_sequence=1)
    )

    replay = await store.store_batch(
        [firing, firing], entries_for(firing, 3), Checkpoint(state=b"2", stream_sequence=2)
    )

    assert replay.stored == []
    assert replay.already_stored == [firing.id]
    assert replay.queued == []
    assert len(await store.outbox.list()) == 2
    assert len(await store.firings.list()) == 1
    checkpoint = await store.checkpoint()
    assert checkpoint is not None
    assert checkpoint.stream_sequence == 2  # the checkpoint moves on all the same


async def test_duplicates_within_one_batch_are_stored_once(store: Store) -> None:
    firing = make_firing()
    result = await store.store_batch([firing, firing], entries_for(firing) * 2)
    assert result.stored == [firing.id]
    assert len(result.queued) == 2


async def test_a_failure_mid_batch_stores_nothing(store: Store) -> None:
    good = make_firing()
    orphan = entries_for(make_firing("never-stored"))  # its firing is in no batch
    with pytest.raises(StoreError) as caught:
        await store.store_batch(
            [good], [*entries_for(good), *orphan], Checkpoint(state=b"x", stream_sequence=9)
        )
    assert not isinstance(caught.value, StoreUnavailable)

    assert await store.firings.list() == []
    assert await store.outbox.list() == []
    assert await store.checkpoint() is None
    # The same batch, minus the bad entry, goes through afterwards.
    result = await store.store_batch([good], entries_for(good))
    assert result.stored == [good.id]


async def test_a_naive_datetime_is_refused_before_anything_is_stored(store: Store) -> None:
    naive = msgspec.structs.replace(make_firing(), at=START.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive datetime"):
        await store.store_batch([make_firing(n=1), naive])
    assert await store.firings.list() == []


async def test_firings_list_filters_and_orders(store: Store) -> None:
    firings = [make_firing(n=n) for n in range(5)] + [make_firing("other", "k")]
    await store.store_batch(firings, [])

    newest_first = await store.firings.list(rule="sales-refreshed")
    assert [f.id for f in newest_first] == [f.id for f in reversed(firings[:5])]
    window = await store.firings.list(
        since=START + timedelta(seconds=1), until=START + timedelta(seconds=3)
    )
    assert [f.id for f in window] == [firings[2].id, firings[1].id]
    assert [f.id for f in await store.firings.list(key="k")] == [firings[5].id]
    assert len(await store.firings.list(limit=2)) == 2
    with pytest.raises(NotFound):
        await store.firings.get(uuid.uuid4())


async def test_checkpoints_are_kept_per_name(store: Store) -> None:
    assert await store.checkpoint() is None
    await store.store_batch([], [], Checkpoint(name="shard-1", state=b"a", stream_sequence=3))
    await store.store_batch([], [], Checkpoint(name="shard-2", state=b"b", stream_sequence=4))
    await store.store_batch([], [], Checkpoint(name="shard-1", state=b"c", stream_sequence=5))
    one, two = await store.checkpoint("shard-1"), await store.checkpoint("shard-2")
    assert one is not None
    assert two is not None
    assert (one.state, one.stream_sequence, two.state) == (b"c", 5, b"b")


async def test_firing_round_trips_every_field(store: Store) -> None:
    firing = Firing(
        id=uuid.uuid4(),
        rule="absent",
        key="a|b",
        status="resolved",
        at=START,
        window_end=START + timedelta(hours=1),
        expected=3,
        arrived=1,
        late=True,
        summary="2 of 3 files missing",
    )
    await store.store_batch([firing])
    assert await store.firings.get(firing.id) == firing


# -- the outbox ---------------------------------------------------------------------------


async def _queue(store: Store, firings: int, per_firing: int = 2) -> list[uuid.UUID]:
    batch = [make_firing(n=n) for n in range(firings)]
    result = await store.store_batch(batch, [e for f in batch for e in entries_for(f, per_firing)])
    return result.queued


async def _finish(
    store: Store, outcome: Outcome, *, worker: str = "w", suspend_after: int = 100
) -> bool:
    """Finish one row the only way there is; whether ``worker`` still held it."""
    report = await store.outbox.finish_many([outcome], worker=worker, suspend_after=suspend_after)
    return outcome.key in report.applied


async def test_claim_hands_out_due_actions_once(store: Store, clock: FakeClock) -> None:
    keys = await _queue(store, 3)
    first = await store.outbox.claim(worker="w1", limit=4)
    second = await store.outbox.claim(worker="w2", limit=4)
    assert len(first) == 4
    assert len(second) == 2
    assert {a.idempotency_key for a in first + second} == set(keys)
    assert await store.outbox.claim(worker="w3") == []
    action = first[0]
    assert (action.state, action.claimed_by, action.attempts) == ("running", "w1", 1)
    assert action.claimed_until == START + timedelta(minutes=5)
    assert [(a.firing_id, a.index) for a in first] == sorted((a.firing_id, a.index) for a in first)


async def test_a_batch_claims_its_due_actions_into_a_reservation(store: Store) -> None:
    # The pipeline lends the local dispatcher's free slots to the batch's transaction:
    # the actions it queues are claimed there, oldest first, up to the reservation.
    firing = make_firing()
    reservation = Reservation(worker="w1", limit=1, lease=timedelta(minutes=2))
    result = await store.store_batch([firing], entries_for(firing), reservation=reservation)
    (claimed,) = reservation.claimed
    assert (claimed.firing_id, claimed.index, claimed.state) == (firing.id, 0, "running")
    assert (claimed.claimed_by, claimed.attempts) == ("w1", 1)
    assert claimed.claimed_until == START + timedelta(minutes=2)
    assert len(result.queued) == 2
    states = {(a.index, a.state) for a in await store.outbox.list(firing_id=firing.id)}
    assert states == {(0, "running"), (1, "pending")}
    (rest,) = await store.outbox.claim(worker="w2")
    assert rest.index == 1
    # A replay queues nothing and claims nothing; a failed batch claims nothing.
    again = Reservation(worker="w1", limit=5, lease=timedelta(minutes=2))
    await store.store_batch([firing], entries_for(firing), reservation=again)
    assert again.claimed == []
    failed = Reservation(worker="w1", limit=5, lease=timedelta(minutes=2))
    other = make_firing("other")
    with pytest.raises(StoreError):
        await store.store_batch(
            [other], entries_for(other) + entries_for(make_firing("never")), reservation=failed
        )
    assert failed.claimed == []
    assert await store.outbox.list(firing_id=other.id) == []


async def test_an_expired_lease_is_claimed_again(store: Store, clock: FakeClock) -> None:
    await _queue(store, 1, per_firing=1)
    (action,) = await store.outbox.claim(worker="w1", lease=timedelta(seconds=30))
    clock.advance("29s")
    assert await store.outbox.claim(worker="w2") == []
    clock.advance("2s")
    (again,) = await store.outbox.claim(worker="w2")
    assert (again.idempotency_key, again.attempts, again.claimed_by) == (
        action.idempotency_key,
        2,
        "w2",
    )
    assert not await _finish(store, Outcome.succeeded(action), worker="w1")  # lost it
    assert await _finish(store, Outcome.succeeded(again), worker="w2")
    done = await store.outbox.get(action.idempotency_key)
    assert (done.state, done.claimed_by, done.claimed_until) == ("succeeded", None, None)


async def test_retry_waits_until_the_next_attempt(store: Store, clock: FakeClock) -> None:
    await _queue(store, 1, per_firing=1)
    (action,) = await store.outbox.claim(worker="w1")
    later = START + timedelta(seconds=10)
    assert await _finish(store, Outcome.retry(action, "503", at=later), worker="w1")
    assert await store.outbox.claim(worker="w1") == []
    clock.set(later)
    (again,) = await store.outbox.claim(worker="w1")
    assert (again.attempts, again.last_error) == (2, "503")


async def test_fail_suspend_and_resume(store: Store) -> None:
    await _queue(store, 3, per_firing=2)
    claimed = await store.outbox.claim(worker="w", limit=2)
    assert await _finish(store, Outcome.failed(claimed[0], "404"))
    # A failure that opens its breaker suspends the row and its action's pending rows.
    assert await _finish(store, Outcome.retry(claimed[1], "timeout", at=START), suspend_after=1)
    assert (await store.outbox.get(claimed[0].idempotency_key)).state == "failed"
    assert (await store.outbox.get(claimed[1].idempotency_key)).state == "suspended"

    assert await store.outbox.suspend("sales-refreshed", 1, reason="breaker open") == 0
    assert await store.outbox.suspend("sales-refreshed", 0, reason="by hand") == 2
    assert await store.outbox.resume("sales-refreshed", 0) == 2
    assert len(await store.outbox.list(state="suspended")) == 3
    assert await store.outbox.claim(worker="w") != []  # index 0 of the others still runs
    assert await store.outbox.resume("sales-refreshed", 1) == 3
    resumed = await store.outbox.list(state="pending")
    assert len(resumed) == 3
    assert {a.attempts for a in resumed} == {0}
    assert await store.outbox.suspend("no-such-rule", reason="x") == 0
    assert not await _finish(store, Outcome.succeeded(claimed[0]))  # finished already
    with pytest.raises(NotFound):
        await store.outbox.get(uuid.uuid4())


async def test_the_breaker_counts_failures_in_the_order_executions_ended(
    store: Store, clock: FakeClock
) -> None:
    await _queue(store, 8, per_firing=1)
    first = await store.outbox.claim(worker="w", limit=4)
    later = START + timedelta(minutes=5)
    # Failed, failed, succeeded, failed: one failure in a row, not three.
    outcomes = [Outcome.retry(a, "HTTP 500", at=later) for a in first]
    outcomes[2] = Outcome.succeeded(first[2])
    report = await store.outbox.finish_many(outcomes, worker="w", suspend_after=3)
    assert not report.tripped
    (breaker,) = await store.outbox.breakers()
    assert (breaker.failures, breaker.suspended, breaker.last_error) == (1, False, "HTTP 500")
    assert [(await store.outbox.get(a.idempotency_key)).state for a in first] == [
        "pending",
        "pending",
        "succeeded",
        "pending",
    ]
    # Two more in a row open it: the failing rows and the action's pending rows wait.
    second = await store.outbox.claim(worker="w", limit=2)
    report = await store.outbox.finish_many(
        [Outcome.retry(a, "HTTP 500", at=later) for a in second], worker="w", suspend_after=3
    )
    assert [(b.rule, b.index, b.failures) for b in report.tripped] == [("sales-refreshed", 0, 3)]
    assert report.suspended == {a.idempotency_key for a in second[1:]}
    assert len(await store.outbox.list(state="suspended")) == 7  # all but the success


async def test_a_deferred_outcome_is_not_an_attempt_and_leaves_the_breaker_alone(
    store: Store, clock: FakeClock
) -> None:
    await _queue(store, 2, per_firing=1)
    failing, deferred = await store.outbox.claim(worker="w", limit=2)
    later = START + timedelta(seconds=30)
    report = await store.outbox.finish_many(
        [
            Outcome.retry(failing, "refused", at=later),
            Outcome.deferred(deferred, at=later, note="busy: later"),
        ],
        worker="w",
        suspend_after=1,
    )
    assert report.applied == {failing.idempotency_key, deferred.idempotency_key}
    assert [(b.failures, b.suspended) for b in report.tripped] == [(1, True)]
    put_back = await store.outbox.get(deferred.idempotency_key)
    assert (put_back.state, put_back.attempts, put_back.claimed_by) == ("pending", 0, None)
    assert (put_back.next_attempt_at, put_back.last_error) == (later, "busy: later")
    assert report.suspended == {failing.idempotency_key}  # the deferred row was not counted

    await store.outbox.resume("sales-refreshed")
    assert (await store.outbox.get(deferred.idempotency_key)).attempts == 0
    clock.set(later)
    (again,) = [
        a
        for a in await store.outbox.claim(worker="w2", limit=2)
        if a.idempotency_key == deferred.idempotency_key
    ]
    assert again.attempts == 1
    # Not held any more by "w": its deferral changes nothing.
    stale = await store.outbox.finish_many(
        [Outcome.deferred(again, at=later)], worker="w", suspend_after=1
    )
    assert stale.applied == set()
    assert (await store.outbox.get(again.idempotency_key)).claimed_by == "w2"


async def test_outbox_list_filters(store: Store) -> None:
    firing, other = make_firing(), make_firing("other", "k")
    await store.store_batch([firing, other], entries_for(firing, 3) + entries_for(other, 1))
    assert [a.index for a in await store.outbox.list(firing_id=firing.id)] == [0, 1, 2]
    assert [a.kind for a in await store.outbox.list(rule="other")] == ["notify"]
    assert len(await store.outbox.list(limit=2)) == 2


async def test_concurrent_claimers_never_get_the_same_action(
    store: Store, other_store: Store
) -> None:
    keys = set(await _queue(store, 60, per_firing=2))

    async def drain(target: Store, worker: str) -> list[uuid.UUID]:
        got: list[uuid.UUID] = []
        while batch := await target.outbox.claim(worker=worker, limit=7):
            got += [action.idempotency_key for action in batch]
        return got

    results = await asyncio.gather(
        drain(store, "a"), drain(other_store, "b"), drain(store, "c"), drain(other_store, "d")
    )
    handed = [key for result in results for key in result]
    assert len(handed) == len(set(handed)) == len(keys)
    assert set(handed) == keys


async def test_postgresql_claim_skips_rows_locked_by_another_claimer(
    postgres_url: str, clock: FakeClock
) -> None:
    async with Store(postgres_url, clock=clock) as store:
        await store.migrate()
        await _queue(store, 2, per_firing=2)
        with sync_engine(postgres_url) as engine, engine.connect() as held:
            locked = held.execute(
                sa.text("SELECT idempotency_key FROM outbox ORDER BY firing_id LIMIT 2 FOR UPDATE")
            ).scalars()
            locked_keys = {uuid.UUID(str(key)) for key in locked}
            # The other claimer is mid-transaction: this claim must neither wait nor overlap.
            claimed = await asyncio.wait_for(store.outbox.claim(worker="w"), timeout=5)
            assert len(claimed) == 2
            assert not {a.idempotency_key for a in claimed} & locked_keys
            held.rollback()
        assert len(await store.outbox.claim(worker="w")) == 2


# -- channels -----------------------------------------------------------------------------


async def test_channels_store_urls_encrypted_and_show_them_redacted(
    store: Store, database_url: str, clock: FakeClock
) -> None:
    channel = await store.channels.put("data-team", CHANNEL_URL)
    assert channel.url == "slack://***"
    assert await store.channels.get_secret("data-team") == CHANNEL_URL

    clock.advance("1m")
    updated = await store.channels.put("data-team", "json://127.0.0.1:8000/p4ss")
    assert (updated.url, updated.created_at, updated.updated_at) == (
        "json://***",
        START,
        START + timedelta(minutes=1),
    )
    await store.channels.put("b-channel", CHANNEL_URL)
    listed = await store.channels.list()
    assert [c.name for c in listed] == ["b-channel", "data-team"]
    shown = repr(listed) + str(listed) + repr(await store.channels.get("b-channel"))
    shown += repr(store) + repr(store.channels) + msgspec.json.encode(listed).decode()
    assert SECRET_PART not in shown
    assert "p4ss" not in shown

    with sync_engine(database_url) as engine, engine.connect() as connection:
        raw = connection.execute(sa.text("SELECT * FROM connections")).all()
    assert SECRET_PART.encode() not in repr(raw).encode()

    await store.channels.delete("b-channel")
    with pytest.raises(NotFound):
        await store.channels.get("b-channel")
    with pytest.raises(NotFound):
        await store.channels.get_secret("b-channel")
    with pytest.raises(NotFound):
        await store.channels.delete("b-channel")


async def test_channel_errors_never_hold_the_url(store: Store, database_url: str) -> None:
    with pytest.raises(InvalidRecord) as bad_url:
        await store.channels.put("data-team", "not an apprise url s3cr3t")
    with pytest.raises(InvalidRecord) as bad_name:
        await store.channels.put("no spaces", CHANNEL_URL)
    await store.channels.put("data-team", CHANNEL_URL)
    async with Store(database_url, secret_key=Fernet.generate_key()) as wrong_key:
        with pytest.raises(StoreError, match="another key") as undecryptable:
            await wrong_key.channels.get_secret("data-team")
    async with Store(database_url) as no_key:
        with pytest.raises(StoreError, match="no secret key") as keyless:
            await no_key.channels.put("x", CHANNEL_URL)
        assert [c.url for c in await no_key.channels.list()] == ["slack://***"]
    for caught in (bad_url, bad_name, undecryptable, keyless):
        assert SECRET_PART not in str(caught.value)
        assert SECRET_PART not in repr(caught.value)


# -- API keys -----------------------------------------------------------------------------


async def test_api_keys_verify_only_their_token(store: Store, database_url: str) -> None:
    new = await store.api_keys.create("ci", ["write"])
    secret = new.token.split("_", 2)[2]  # ilk_<prefix>_<secret>; the secret may hold "_"
    assert new.token.startswith(f"ilk_{new.key.prefix}_")
    assert secret not in repr(new)
    assert secret not in str(new)

    verified = await store.api_keys.verify(new.token)
    assert verified == new.key
    assert verified.allows("read")
    assert verified.allows("write")
    assert not verified.allows("admin")

    wrong = [
        new.token[:-1] + ("A" if new.token[-1] != "A" else "B"),
        new.token.replace(new.key.prefix, "000000000000"),
        "ilk_" + new.key.prefix,
        "",
        "Bearer " + new.token,
        secret,
    ]
    for token in wrong:
        assert await store.api_keys.verify(token) is None, token

    with sync_engine(database_url) as engine, engine.connect() as connection:
        raw = connection.execute(sa.text("SELECT * FROM api_keys")).all()
    assert secret not in repr(raw)
    assert [key.prefix for key in await store.api_keys.list()] == [new.key.prefix]


async def test_api_keys_revoke_count_and_scopes(store: Store, clock: FakeClock) -> None:
    admin = await store.api_keys.create("admin", ["admin", "read"])
    reader = await store.api_keys.create("dashboard", ["read"])
    assert admin.key.scopes == ["read", "admin"]
    assert await store.api_keys.count() == 2

    revoked = await store.api_keys.revoke(reader.key.prefix)
    assert revoked.revoked_at == START
    assert not revoked.allows("read")
    assert await store.api_keys.verify(reader.token) is None
    assert await store.api_keys.count() == 1
    clock.advance("1h")
    assert (await store.api_keys.revoke(reader.key.prefix)).revoked_at == START
    with pytest.raises(NotFound):
        await store.api_keys.revoke("nope")
    with pytest.raises(InvalidRecord, match="scopes"):
        await store.api_keys.create("none", [])
    with pytest.raises(InvalidRecord, match="scopes"):
        await store.api_keys.create("bad", ["root"])  # type: ignore[list-item]


# -- queues, deployments, runs ------------------------------------------------------------


async def _deployment(store: Store) -> None:
    await store.queues.create("etl", concurrency_limit=2)
    await store.deployments.create(
        "build-reports",
        target={"type": "process", "command": ["python", "-m", "reports"]},
        queue="etl",
        schedule="0 6 * * *",
        parameters={"date": "today", "full": False},
        tags=["reports"],
        description="Builds the morning reports",
    )


async def test_queues(store: Store) -> None:
    queue = await store.queues.create("etl", concurrency_limit=2)
    assert (queue.name, queue.paused, queue.concurrency_limit) == ("etl", False, 2)
    await store.queues.create("adhoc", paused=True)
    assert [q.name for q in await store.queues.list()] == ["adhoc", "etl"]
    assert (await store.queues.set_paused("etl", True)).paused
    assert (await store.queues.get("etl")).paused
    assert (await store.queues.set_concurrency_limit("etl", None)).concurrency_limit is None
    with pytest.raises(AlreadyExists):
        await store.queues.create("etl")
    with pytest.raises(InvalidRecord, match="concurrency_limit"):
        await store.queues.create("zero", concurrency_limit=0)
    with pytest.raises(NotFound):
        await store.queues.set_paused("nope", True)


async def test_deployments(store: Store) -> None:
    await _deployment(store)
    deployment = await store.deployments.get("build-reports")
    assert deployment.target == {"type": "process", "command": ["python", "-m", "reports"]}
    assert (deployment.queue, deployment.schedule, deployment.schedule_enabled) == (
        "etl",
        "0 6 * * *",
        True,
    )
    assert (deployment.parameters, deployment.tags) == (
        {"date": "today", "full": False},
        ["reports"],
    )
    assert not (
        await store.deployments.set_schedule_enabled("build-reports", False)
    ).schedule_enabled
    assert [d.name for d in await store.deployments.list(queue="etl")] == ["build-reports"]
    assert await store.deployments.list(queue="other") == []

    with pytest.raises(AlreadyExists):
        await store.deployments.create("build-reports", target={"type": "process"}, queue="etl")
    with pytest.raises(NotFound, match="queue"):
        await store.deployments.create("x", target={"type": "process"}, queue="nope")
    with pytest.raises(InvalidRecord, match="type"):
        await store.deployments.create("x", target={"command": "true"}, queue="etl")
    with pytest.raises(NotFound):
        await store.deployments.get("nope")
    with pytest.raises(NotFound):
        await store.deployments.set_schedule_enabled("nope", True)


async def test_runs_merge_parameters_and_are_idempotent(store: Store) -> None:
    await _deployment(store)
    run = await store.runs.create(
        "build-reports", parameters={"full": True}, idempotency_key="action-key"
    )
    assert run.parameters == {"date": "today", "full": True}
    assert (run.state, run.queue, run.scheduled_at, run.started_at) == (
        "pending",
        "etl",
        START,
        None,
    )
    again = await store.runs.create(
        "build-reports", parameters={"x": 1}, idempotency_key="action-key"
    )
    assert again == run
    later = START + timedelta(hours=1)
    scheduled = await store.runs.create("build-reports", state="scheduled", scheduled_at=later)
    assert (scheduled.state, scheduled.scheduled_at) == ("scheduled", later)
    assert await store.runs.get(run.id) == run
    assert [r.id for r in await store.runs.list(state="scheduled")] == [scheduled.id]
    assert len(await store.runs.list(deployment="build-reports", queue="etl")) == 2

    with pytest.raises(NotFound):
        await store.runs.create("nope")
    with pytest.raises(InvalidRecord):
        await store.runs.create("build-reports", state="running")
    with pytest.raises(NotFound):
        await store.runs.get(uuid.uuid4())


async def test_concurrent_creates_with_one_idempotency_key_make_one_run(
    store: Store, other_store: Store
) -> None:
    await _deployment(store)
    runs = await asyncio.gather(
        *(
            target.runs.create("build-reports", idempotency_key="same")
            for target in [store, other_store] * 3
        )
    )
    assert len({run.id for run in runs}) == 1
    assert len(await store.runs.list()) == 1


async def test_run_transitions_are_enforced(store: Store, clock: FakeClock) -> None:
    await _deployment(store)
    run = await store.runs.create("build-reports", state="scheduled")
    assert (await store.runs.transition(run.id, "pending")).state == "pending"
    clock.advance("1s")
    running = await store.runs.transition(run.id, "running", log_path="/logs/1.log")
    assert (running.started_at, running.log_path) == (START + timedelta(seconds=1), "/logs/1.log")
    clock.advance("1m")
    done = await store.runs.transition(run.id, "completed", message="ok")
    assert (done.state, done.ended_at, done.message) == (
        "completed",
        START + timedelta(minutes=1, seconds=1),
        "ok",
    )

    with pytest.raises(InvalidTransition) as caught:
        await store.runs.transition(run.id, "running")
    assert (caught.value.current, caught.value.requested, caught.value.allowed) == (
        "completed",
        "running",
        (),
    )
    assert "it is over" in str(caught.value)
    fresh = await store.runs.create("build-reports")
    with pytest.raises(InvalidTransition, match="may become running, cancelled"):
        await store.runs.transition(fresh.id, "completed")
    with pytest.raises(NotFound):
        await store.runs.transition(uuid.uuid4(), "running")


_PATHS: dict[RunState, list[RunState]] = {
    "scheduled": [],
    "pending": [],
    "running": ["running"],
    "completed": ["running", "completed"],
    "failed": ["running", "failed"],
    "crashed": ["running", "crashed"],
    "cancelled": ["cancelled"],
}


async def test_every_transition_is_allowed_exactly_when_listed(store: Store) -> None:
    await _deployment(store)
    for source, targets in TRANSITIONS.items():
        for target in TRANSITIONS:
            initial: RunState = "scheduled" if source == "scheduled" else "pending"
            run = await store.runs.create("build-reports", state=initial)
            for step in _PATHS[source]:
                await store.runs.transition(run.id, step)
            if target in targets:
                assert (await store.runs.transition(run.id, target)).state == target
            else:
                with pytest.raises(InvalidTransition):
                    await store.runs.transition(run.id, target)
                assert (await store.runs.get(run.id)).state == source


async def test_racing_workers_cannot_both_start_a_run(store: Store, other_store: Store) -> None:
    await _deployment(store)
    run = await store.runs.create("build-reports")
    outcomes = await asyncio.gather(
        store.runs.transition(run.id, "running"),
        other_store.runs.transition(run.id, "running"),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["InvalidTransition", "Run"]


# -- failures -----------------------------------------------------------------------------


async def test_embedded_settings_give_a_store_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("INTERLOCK_"):
            monkeypatch.delenv(name)
    settings = load_settings(config_file=None, data_dir=tmp_path / "data")
    async with Store.from_settings(settings) as store:
        assert store.dialect == "sqlite"
        await store.migrate()
        await store.channels.put("data-team", CHANNEL_URL)
    async with Store.from_settings(settings) as store:  # the same key, read back
        assert await store.channels.get_secret("data-team") == CHANNEL_URL
    assert (tmp_path / "data" / "interlock.db").is_file()
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url at all s3cr3t", "is not a URL"),
        ("mysql://user:s3cr3t@127.0.0.1/db", "unsupported database 'mysql'"),
    ],
)
def test_a_bad_url_is_a_clear_store_error(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        Store(url)
    assert SECRET_PART not in str(caught.value)


async def test_an_unreachable_postgresql_is_store_unavailable() -> None:
    async with Store("postgresql://interlock:s3cr3t@127.0.0.1:1/interlock") as store:
        assert store.url == "postgresql+psycopg://interlock:***@127.0.0.1:1/interlock"
        with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1") as caught:
            await store.migrate()
    assert isinstance(caught.value, ConnectionError)
    assert SECRET_PART not in str(caught.value)


def test_an_unopenable_sqlite_file_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot create"):
        Store("sqlite:////proc/interlock/store.db")


def test_a_malformed_secret_key_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="not a Fernet key") as caught:
        Store("sqlite://", secret_key="s3cr3t")
    assert SECRET_PART not in str(caught.value)


async def test_the_store_survives_a_postgresql_restart(
    postgres: PostgresCluster, postgres_url: str, clock: FakeClock
) -> None:
    async with Store(postgres_url, clock=clock) as store:
        await store.migrate()
        await store.rules.apply(make_rule())
        postgres.restart()
        assert (await store.rules.get("sales-refreshed")).version == 1
        await store.store_batch([make_firing()])
        postgres.stop()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        postgres.start()
        await store.ping()
        assert len(await store.firings.list()) == 1
