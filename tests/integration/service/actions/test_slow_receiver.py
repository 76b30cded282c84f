"""Finding 10 of issue 14: a receiver that accepts slowly gets everything, later.

A burst of webhooks to Python's ``http.server`` (listen backlog 5, a connection per
request) through a real dispatcher over a real SQLite store: every action arrives
exactly once and the circuit breaker stays closed. Without pacing per destination, the
dispatcher opened 64 connections at once, the receiver's backlog overflowed, the
refusals counted as failures and the breaker suspended the webhook after 10.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from integration.service.actions.backlog_receiver import BacklogReceiver
from integration.service.actions.dispatch_fixtures import (
    actions_of,
    dispatching,
    eventually,
    make_rule,
    queue,
    running_services,
)
from interlock.rules import webhook

BURST = 2_000


async def _settled(services: object, rule: str, count: int) -> bool:
    rows = await actions_of(services, rule)  # type: ignore[arg-type]
    return len(rows) == count and all(
        row.state in ("succeeded", "failed", "suspended") for row in rows
    )


@pytest.mark.slow
async def test_a_burst_to_a_backlog_of_5_arrives_whole_and_the_breaker_stays_closed(
    sqlite_url: str, streams: str, tmp_path: Path
) -> None:
    async with (
        BacklogReceiver(tmp_path) as receiver,
        running_services(
            sqlite_url, streams, tmp_path / "spool", timeout="10s", backoff_max="1s"
        ) as services,
    ):
        rule = make_rule("burst", [webhook(f"{receiver.url}/hook", body={"n": 1})])
        await services.rules.apply([rule])
        started = time.monotonic()
        await queue(services, rule, BURST)
        async with dispatching(services):
            await eventually(
                lambda: _settled(services, "burst", BURST), timeout=90, what="every action ended"
            )
        elapsed = time.monotonic() - started
        seen = receiver.stop()
        rows = await actions_of(services, "burst")
        breakers = await services.store.outbox.breakers(suspended=True)

    states = {row.state for row in rows}
    print(f"{seen.requests} requests, peak {seen.peak} at once, {elapsed:.1f} s; {states}")
    assert breakers == []
    assert states == {"succeeded"}
    assert len(seen.keys) == BURST
    assert {str(row.idempotency_key) for row in rows} == set(seen.keys)
    assert set(seen.keys.values()) == {1}
