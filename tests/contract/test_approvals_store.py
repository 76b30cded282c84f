"""The approvals store contract, on SQLite and PostgreSQL: an approval counts as asked only
once its request went out; its request state is read from its ``approve`` row; a given-up
one cannot be decided; a decided one says who decided it; migration 0004 backfills."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from contract.store_fixtures import START, make_firing, sync_engine
from interlock.rules import approve, webhook
from interlock.rules.clock import FakeClock
from interlock.service.migrations import alembic_config, head
from interlock.service.store import (
    Approval,
    ApprovalClosed,
    ApprovalGivenUp,
    NotFound,
    OutboxAction,
    Outcome,
    Store,
    outbox_entries,
)

WORKER = "w"


async def _queue_approval(store: Store, rule: str = "gated", *, n: int = 0) -> OutboxAction:
    """Store a firing whose actions are an approve step and a webhook; claim the step."""
    firing = make_firing(rule, n=n)
    actions = [approve("approvers", timeout="30m"), webhook("http://127.0.0.1:9/then")]
    await store.store_batch([firing], outbox_entries(firing, actions))
    (step,) = await store.outbox.claim(worker=WORKER, limit=1)
    assert step.kind == "approve"
    return step


async def _request(store: Store, step: OutboxAction) -> Approval:
    return await store.approvals.request(
        step, token=uuid.uuid4().hex, title="Go?", expires_at=None, on_timeout="approve"
    )


async def _fail(store: Store, step: OutboxAction, error: str, *, retry: bool) -> None:
    """What the dispatcher records for a failed attempt (retried, or given up)."""
    await store.approvals.request_failed(step.idempotency_key, error)
    outcome = (
        Outcome.retry(step, error, at=START + timedelta(minutes=1))
        if retry
        else Outcome.failed(step, error)
    )
    await store.outbox.finish_many([outcome], worker=WORKER, suspend_after=100)


async def _states(store: Store, step: OutboxAction) -> list[str]:
    return [a.state for a in await store.outbox.list(firing_id=step.firing_id)]


async def test_a_failed_request_is_request_failed_until_a_retry_sends_it(
    store: Store, clock: FakeClock
) -> None:
    step = await _queue_approval(store)
    recorded = await _request(store, step)
    assert (recorded.state, recorded.request_state) == ("sending", "sending")
    assert recorded.sent_at is None

    await _fail(store, step, "no channel 'approvers'", retry=True)
    (failed,) = await store.approvals.list()  # open: listed
    assert (failed.state, failed.request_state) == ("request_failed", "failed")
    assert failed.request_error == "no channel 'approvers'"
    assert (failed.attempts, failed.retry_at) == (1, START + timedelta(minutes=1))
    assert failed.sent_at is None
    assert await _states(store, step) == ["pending", "pending"]  # retried, not waiting

    clock.advance("31m")  # past its timeout: never asked, so it does not expire
    assert await store.approvals.due() == []

    (again,) = await store.outbox.claim(worker=WORKER, limit=1)
    assert (await _request(store, again)).request_state == "failed"  # the same approval
    sent = await store.approvals.hold(
        step.idempotency_key, worker=WORKER, expires_at=clock.now() + timedelta(minutes=30)
    )
    assert (sent.state, sent.request_state, sent.request_error) == ("pending", "sent", None)
    assert sent.sent_at == clock.now()
    assert sent.attempts == 2
    assert await _states(store, step) == ["waiting", "held"]
    clock.advance("31m")
    (due,) = await store.approvals.due()
    assert due.id == step.idempotency_key


async def test_a_given_up_request_cannot_be_decided(store: Store) -> None:
    step = await _queue_approval(store)
    await _request(store, step)
    await _fail(store, step, "notify json://127.0.0.1:9: refused", retry=False)
    assert await _states(store, step) == ["failed", "cancelled"]
    assert await store.approvals.list() == []  # nothing to decide: not open
    (given_up,) = await store.approvals.list(pending=False)
    assert (given_up.state, given_up.request_error) == (
        "request_given_up",
        "notify json://127.0.0.1:9: refused",
    )
    for decision in ("approved", "rejected"):
        with pytest.raises(ApprovalGivenUp, match="was never asked") as caught:
            await store.approvals.decide(decision=decision, by="ana", firing_id=step.firing_id)  # type: ignore[arg-type]
        assert "given up after 1 attempt(s)" in str(caught.value)
        assert "refused" in str(caught.value)
    assert await _states(store, step) == ["failed", "cancelled"]


async def test_an_unsent_approval_decided_is_not_sent_any_more(store: Store) -> None:
    step = await _queue_approval(store)
    await _request(store, step)
    await _fail(store, step, "no channel 'approvers'", retry=True)
    decided = await store.approvals.decide(decision="approved", by="ana", firing_id=step.firing_id)
    assert (decided.state, decided.request_state) == ("approved", "not_sent")
    assert decided.request_error == "no channel 'approvers'"
    # The approve step is done and the webhook after it is free to run.
    assert await _states(store, step) == ["succeeded", "pending"]
    (then,) = await store.outbox.claim(worker=WORKER)
    assert then.kind == "webhook"


async def test_deciding_a_decided_approval_by_firing_says_who_decided(store: Store) -> None:
    step = await _queue_approval(store)
    await _request(store, step)
    await store.approvals.hold(step.idempotency_key, worker=WORKER)
    await store.approvals.decide(decision="rejected", by="bob", firing_id=step.firing_id)
    with pytest.raises(ApprovalClosed, match="was rejected by bob at"):
        await store.approvals.decide(decision="approved", by="ana", firing_id=step.firing_id)
    with pytest.raises(NotFound, match="no approval 'for firing"):
        await store.approvals.decide(decision="approved", by="ana", firing_id=uuid.uuid4())


async def test_migration_0004_counts_earlier_approvals_sent_unless_their_step_is_unsent(
    fresh_database_url: str, clock: FakeClock
) -> None:
    async with Store(fresh_database_url, clock=clock) as store:
        await store.migrate()
        sent_step = await _queue_approval(store, "sent")
        await _request(store, sent_step)
        await store.approvals.hold(sent_step.idempotency_key, worker=WORKER)
        unsent_step = await _queue_approval(store, "unsent")
        await _request(store, unsent_step)
        await _fail(store, unsent_step, "Apprise failed", retry=True)
    with sync_engine(fresh_database_url) as engine:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
            columns = {c["name"] for c in sa.inspect(connection).get_columns("approvals")}
            assert "sent_at" not in columns
        async with Store(fresh_database_url, clock=clock) as store:
            assert await store.migrate() == head()
            sent = await store.approvals.get(sent_step.idempotency_key)
            unsent = await store.approvals.get(unsent_step.idempotency_key)
    assert (sent.state, sent.sent_at) == ("pending", sent.requested_at)
    assert (unsent.state, unsent.sent_at) == ("request_failed", None)
    assert unsent.request_error == "Apprise failed"
