"""An approval counts as asked only once its request was sent: a request that cannot go
out (no such channel, a target that does not answer) leaves the approval
``request_failed`` with the error, is retried by the action's policy (the ``approve`` row
fails like any attempt, it is not ``waiting``), and sent by a later retry becomes
``pending`` as usual; given up, it cannot be decided. The dispatcher is real, NATS is
real, Apprise sends to a local receiver or to a closed port; time is a ``FakeClock``, so
a retry comes only when the test moves the clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from integration.service.actions.dispatch_fixtures import (
    START,
    dispatching,
    events_named,
    eventually,
    make_rule,
    queue,
    running_services,
    states,
)
from integration.service.actions.receiver import Receiver
from integration.service.actions.request_failures import RETRY, attempted, closed_port
from interlock.rules import approve, webhook
from interlock.rules.clock import FakeClock
from interlock.service.actions.approvals import decide, effect, expire_due
from interlock.service.context import Services
from interlock.service.store import Approval, ApprovalGivenUp


async def approval_of(services: Services, rule: str) -> Approval:
    (approval,) = await services.store.approvals.list(rule=rule, pending=False)
    return approval


async def test_a_missing_channel_is_request_failed_retried_and_sent_once_it_exists(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    clock = FakeClock(START)
    async with (
        Receiver() as receiver,
        running_services(
            database_url, streams, tmp_path / "spool", clock=clock, max_attempts=5, **RETRY
        ) as services,
    ):
        rule = make_rule(
            "gated",
            [approve("approvers", title="Run it?", timeout="30m"), webhook(f"{receiver.url}/then")],
        )
        (firing,) = await queue(services, rule)
        async with dispatching(services):
            await eventually(lambda: attempted(services, "gated", 1), what="a first attempt")
            failed = await approval_of(services, "gated")
            assert (failed.state, failed.sent_at) == ("request_failed", None)
            assert failed.request_error is not None
            assert "no channel 'approvers'" in failed.request_error
            assert failed.retry_at is not None
            # The approve row failed as a normal, retryable attempt: pending, not waiting.
            step, then = await services.store.outbox.list(firing_id=firing.id)
            assert (step.state, step.attempts) == ("pending", 1)
            assert step.last_error is not None
            assert "no channel 'approvers'" in step.last_error
            assert then.state == "pending"
            # Still open (listed), but nobody was asked: not due, whatever the clock says.
            assert [a.id for a in await services.store.approvals.list()] == [failed.id]

            clock.advance("1m")
            await eventually(lambda: attempted(services, "gated", 2), what="a second attempt")
            assert (await approval_of(services, "gated")).state == "request_failed"

            await services.store.channels.put("approvers", f"json://127.0.0.1:{receiver.port}/ask")
            clock.advance("1m")
            await eventually(lambda: _states_are(services, "gated", ["waiting", "held"]))
            sent = await approval_of(services, "gated")
            assert (sent.state, sent.request_state, sent.request_error) == ("pending", "sent", None)
            assert sent.sent_at == clock.now()
            assert sent.expires_at == clock.now() + (sent.expires_at - sent.sent_at)
            assert sent.attempts == 3
            (ask,) = receiver.paths("/ask")
            assert ask.json()["title"] == "Run it?"
            (requested,) = await events_named(streams, "interlock.approval.requested", expected=1)
            assert requested.payload["approval_id"] == str(sent.id)

            decided = await decide(services, firing_id=firing.id, approve=True, by="ana")
            assert effect(decided) == "the actions after it run now"
            await eventually(lambda: _states_are(services, "gated", ["succeeded", "succeeded"]))
        assert len(receiver.paths("/then")) == 1


async def test_an_unreachable_target_is_retried_per_policy_then_given_up(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    clock = FakeClock(START)
    async with (
        Receiver() as receiver,
        running_services(
            database_url, streams, tmp_path / "spool", clock=clock, max_attempts=3, **RETRY
        ) as services,
    ):
        target = f"json://127.0.0.1:{closed_port()}/ask"
        rule = make_rule("gated", [approve(target), webhook(f"{receiver.url}/then")])
        (firing,) = await queue(services, rule)
        async with dispatching(services):
            for attempt in (1, 2, 3):
                await eventually(lambda a=attempt: attempted(services, "gated", a))
                if attempt < 3:
                    approval = await approval_of(services, "gated")
                    assert approval.state == "request_failed"
                    assert approval.request_error is not None
                    assert "(json://): was not accepted" in approval.request_error
                    clock.advance("1m")
            await eventually(lambda: _states_are(services, "gated", ["failed", "cancelled"]))
            given_up = await approval_of(services, "gated")
            assert (given_up.state, given_up.attempts, given_up.sent_at) == (
                "request_given_up",
                3,
                None,
            )
            assert await services.store.approvals.list() == []  # nothing left to decide
            for verdict in (True, False):
                with pytest.raises(ApprovalGivenUp, match="was never asked") as caught:
                    await decide(services, firing_id=firing.id, approve=verdict, by="ana")
                assert "given up after 3 attempt(s)" in str(caught.value)
            assert await states(services, "gated") == ["failed", "cancelled"]
        assert receiver.paths("/then") == []
        assert await events_named(streams, "interlock.approval.", expected=0, timeout=1) == []


async def test_an_approval_nobody_was_asked_does_not_expire(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    clock = FakeClock(START)
    async with (
        Receiver() as receiver,
        running_services(
            database_url, streams, tmp_path / "spool", clock=clock, max_attempts=5, **RETRY
        ) as services,
    ):
        lenient = approve("approvers", timeout="30m", on_timeout="approve")
        await queue(services, make_rule("lenient", [lenient, webhook(f"{receiver.url}/then")]))
        async with dispatching(services):
            await eventually(lambda: attempted(services, "lenient", 1))
        clock.advance("2h")
        assert await expire_due(services) == []
        assert (await approval_of(services, "lenient")).state == "request_failed"
        await asyncio.sleep(0)
        assert receiver.paths("/then") == []


async def _states_are(services: Services, rule: str, wanted: list[str]) -> bool:
    return await states(services, rule) == wanted
