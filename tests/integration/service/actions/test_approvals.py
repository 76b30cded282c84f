"""Approval steps: later actions wait (across restarts) until approved, rejected or
expired; decisions are recorded and emitted."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from integration.service.actions.dispatch_fixtures import (
    START,
    actions_of,
    all_in,
    dispatching,
    events_named,
    eventually,
    make_rule,
    queue,
    running_services,
    states,
)
from integration.service.actions.receiver import Receiver
from interlock.rules import approve, webhook
from interlock.rules.clock import FakeClock
from interlock.service.actions.approvals import decide
from interlock.service.store import ApprovalClosed

PUBLIC = "https://interlock.example.com"


async def test_later_actions_wait_across_a_restart_and_run_once_approved(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with (
        Receiver() as receiver,
        running_services(database_url, streams, tmp_path / "spool") as services,
    ):
        rule = make_rule(
            "gated",
            [
                webhook(f"{receiver.url}/before"),
                approve(
                    f"json://127.0.0.1:{receiver.port}/ask",
                    title="Run the backfill?",
                    body="sales is late",
                    timeout="1h",
                ),
                webhook(f"{receiver.url}/after"),
            ],
        )
        (firing,) = await queue(services, rule)
        async with dispatching(services, public_url=PUBLIC):
            await eventually(
                lambda: _states_are(services, "gated", ["succeeded", "waiting", "held"])
            )
        (ask,) = receiver.paths("/ask")
        assert ask.json()["title"] == "Run the backfill?"
        message = ask.json()["message"]
        assert message.startswith("sales is late")
        token = re.search(rf"{PUBLIC}/api/approvals/([^/\s]+)/approve", message)
        assert token is not None
        assert f"{PUBLIC}/api/approvals/{token[1]}/reject" in message
        assert receiver.paths("/after") == []
        (pending,) = await services.store.approvals.list()
        assert (pending.rule, pending.index, pending.firing_id) == ("gated", 1, firing.id)
        (requested,) = await events_named(streams, "interlock.approval.requested", expected=1)
        assert token[1] not in repr(requested)

        # A restarted dispatcher keeps them waiting.
        async with dispatching(services, public_url=PUBLIC):
            await asyncio.sleep(0.5)
            assert await states(services, "gated") == ["succeeded", "waiting", "held"]
            decided = await decide(
                services, firing_id=firing.id, approve=True, by="ana", reason="go"
            )
            await eventually(lambda: all_in(services, "gated", "succeeded"))
        assert (decided.decision, decided.decided_by, decided.reason) == ("approved", "ana", "go")
        assert decided.decided_at is not None
        assert len(receiver.paths("/after")) == 1
        assert len(receiver.paths("/ask")) == 1
        (approved,) = await events_named(streams, "interlock.approval.approved", expected=1)
        assert approved.resource_id == "gated"
        assert approved.payload["decided_by"] == "ana"
        assert approved.payload["firing_id"] == str(firing.id)
        with pytest.raises(ApprovalClosed, match="approved by ana"):
            await decide(services, token=token[1], approve=False, by="bob")


async def test_a_rejection_through_the_link_token_cancels_the_rest(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with (
        Receiver() as receiver,
        running_services(database_url, streams, tmp_path / "spool") as services,
    ):
        rule = make_rule(
            "gated",
            [
                approve(f"json://127.0.0.1:{receiver.port}/ask"),
                webhook(f"{receiver.url}/after"),
                webhook(f"{receiver.url}/after"),
            ],
        )
        await queue(services, rule)
        async with dispatching(services, public_url=PUBLIC):
            await eventually(lambda: _states_are(services, "gated", ["waiting", "held", "held"]))
            (pending,) = await services.store.approvals.list()
            await decide(services, token=pending.token, approve=False, by="bob", reason="no")
            await eventually(lambda: all_in(services, "gated", "cancelled"))
            await asyncio.sleep(0.3)
        assert receiver.paths("/after") == []
        step, *rest = await actions_of(services, "gated")
        assert step.last_error == "rejected by bob: no"
        assert [a.last_error for a in rest] == ["cancelled: rejected by bob: no"] * 2
        (rejected,) = await events_named(streams, "interlock.approval.rejected", expected=1)
        assert rejected.payload["decided_by"] == "bob"


async def test_the_timeout_expires_them_as_on_timeout_says(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    clock = FakeClock(START)
    async with (
        Receiver() as receiver,
        running_services(database_url, streams, tmp_path / "spool", clock=clock) as services,
    ):
        ask = f"json://127.0.0.1:{receiver.port}/ask"
        strict = make_rule("strict", [approve(ask, timeout="30m"), webhook(f"{receiver.url}/s")])
        lenient = make_rule(
            "lenient",
            [approve(ask, timeout="30m", on_timeout="approve"), webhook(f"{receiver.url}/l")],
        )
        await queue(services, strict)
        await queue(services, lenient)
        async with dispatching(services, public_url=PUBLIC):
            for name in ("strict", "lenient"):
                await eventually(lambda n=name: _states_are(services, n, ["waiting", "held"]))
            clock.advance("29m")
            await asyncio.sleep(0.3)
            assert await states(services, "strict") == ["waiting", "held"]
        # Expired while no dispatcher ran: the next one judges it.
        clock.advance("2m")
        async with dispatching(services, public_url=PUBLIC):
            await eventually(lambda: all_in(services, "strict", "cancelled"))
            await eventually(lambda: all_in(services, "lenient", "succeeded"))
        assert receiver.paths("/s") == []
        assert len(receiver.paths("/l")) == 1
        expired = await events_named(streams, "interlock.approval.expired", expected=2)
        outcomes = {e.resource_id: e.payload["outcome"] for e in expired}
        assert outcomes == {"strict": "rejected", "lenient": "approved"}
        assert all(e.payload["decided_by"] == "timeout" for e in expired)


async def _states_are(services: object, rule: str, wanted: list[str]) -> bool:
    return await states(services, rule) == wanted  # type: ignore[arg-type]
