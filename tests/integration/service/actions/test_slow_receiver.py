"""Finding 10 of issue 14: a receiver that accepts slowly gets everything, later.

A burst of 2,000 webhooks to Python's ``http.server`` (one request at a time, listen
backlog 5, a connection per request) in a process of its own, through a real dispatcher
over a real SQLite store: every action arrives exactly once and the circuit breaker
stays closed. Without pacing per destination the dispatcher opened 64 connections at
once; the backlog overflowed, Linux dropped the connections beyond it and the client's
SYN retries (1, 3, 7, 15 s) ran past the time limit, those timeouts counted as failures,
and the breaker suspended the webhook after 10 (about 480 of 2,000 arrived, some twice).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from integration.service.actions.backlog_receiver import BacklogReceiver
from integration.service.actions.dispatch_fixtures import (
    actions_of,
    dispatching,
    make_rule,
    queue,
    running_services,
)
from interlock.rules import webhook
from interlock.service.context import Services

BURST = 2_000


async def _settle(services: Services, rule: str, *, timeout: float = 90) -> None:
    """Until every action of ``rule`` ended (looking twice a second: listing 2,000 rows
    fifty times a second would cost the dispatcher more than the receiver does)."""
    deadline = time.monotonic() + timeout
    while not all(
        row.state in ("succeeded", "failed", "suspended")
        for row in await actions_of(services, rule)
    ):
        assert time.monotonic() < deadline, "timed out waiting for every action to end"
        await asyncio.sleep(0.5)


@pytest.mark.slow
async def test_a_burst_to_a_backlog_of_5_arrives_whole_and_the_breaker_stays_closed(
    sqlite_url: str, streams: str, tmp_path: Path
) -> None:
    # A 10 s time limit (30 s by default) only shortens how long the old behaviour
    # took to fail; the defaults are otherwise the service's (64 actions at once, the
    # breaker at 10 failures in a row, 5 attempts).
    async with (
        BacklogReceiver(tmp_path) as receiver,
        running_services(
            sqlite_url, streams, tmp_path / "spool", timeout="10s", backoff_max="1s"
        ) as services,
    ):
        rule = make_rule("burst", [webhook(f"{receiver.url}/hook", body={"n": 1})])
        await services.rules.apply([rule])
        await queue(services, rule, BURST)
        async with dispatching(services):
            await _settle(services, "burst")
        seen = receiver.stop()
        rows = await actions_of(services, "burst")
        breakers = await services.store.outbox.breakers(suspended=True)

    states = {row.state for row in rows}
    assert breakers == []
    assert states == {"succeeded"}
    assert len(seen.keys) == BURST
    assert {str(row.idempotency_key) for row in rows} == set(seen.keys)
    assert set(seen.keys.values()) == {1}
