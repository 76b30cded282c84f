"""A dispatcher killed in the middle of a batch, then another started over the same
database: every action runs, and none takes effect twice where the target honours the
idempotency key."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from integration.service.actions.dispatch_fixtures import (
    actions_of,
    all_in,
    dispatching,
    eventually,
    make_rule,
    queue,
    running_services,
)
from integration.service.actions.receiver import Receiver
from interlock.rules import webhook
from interlock.service.actions.dispatcher import Dispatcher

ACTIONS = 300
CONCURRENCY = 16


async def test_a_killed_dispatcher_loses_nothing_and_repeats_only_what_was_in_flight(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with (
        Receiver(lambda request: (200, 0.01)) as receiver,
        running_services(
            database_url, streams, tmp_path / "spool", concurrency=CONCURRENCY
        ) as services,
    ):
        rule = make_rule("bulk", [webhook(f"{receiver.url}/bulk")])
        await queue(services, rule, ACTIONS)
        lease = timedelta(seconds=1)
        first = Dispatcher(services, lease=lease, poll_interval=0.05)
        task = asyncio.create_task(first.run())

        async def some_done() -> bool:
            return len(receiver.requests) >= ACTIONS // 4

        await eventually(some_done)
        task.cancel()  # killed mid-batch: executions in flight are abandoned
        await asyncio.gather(task, return_exceptions=True)
        assert len(receiver.requests) < ACTIONS

        async with dispatching(services, lease=lease):
            await eventually(lambda: all_in(services, "bulk", "succeeded"), timeout=60)

        keys = {str(action.idempotency_key) for action in await actions_of(services, "bulk")}
        assert len(keys) == ACTIONS
        assert set(receiver.keys) == keys  # none lost
        repeated = sum(count - 1 for count in receiver.keys.values())
        assert repeated <= CONCURRENCY  # only what was in flight at the kill ran again
