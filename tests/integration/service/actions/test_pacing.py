"""Pacing per destination, through a real dispatcher, a real SQLite store and real TCP.

- the cap on requests in flight at one destination holds (from the settings, per host,
  per action), as a receiver counting its concurrent requests sees it;
- waiting for a slot is not an attempt: an action put back for later is not counted;
- a destination that is alive but turns connections away (resets them, answers 429)
  gets every action, later, and its breaker stays closed;
- a destination that is down (nothing listening) still opens the breaker after
  ``suspend_after`` failures, and so does one that stopped answering for longer than
  ``health_window``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.ports import free_port
from integration.service.actions.backlog_receiver import BacklogReceiver
from integration.service.actions.dispatch_fixtures import (
    actions_of,
    all_in,
    dispatching,
    eventually,
    make_rule,
    queue,
    running_services,
    states,
)
from integration.service.actions.receiver import Receiver, Request
from interlock.rules import webhook
from interlock.service.context import Services


def _deferred(services: Services) -> float:
    value: float = services.metrics.actions.labels("webhook", "deferred")._value.get()
    return value


async def _ended(services: Services, rule: str) -> bool:
    return await all_in(services, rule, "succeeded", "failed", "suspended")


@pytest.mark.parametrize(
    ("settings", "action", "cap"),
    [
        ({"max_concurrency": 3}, None, 3),
        ({}, 2, 2),
        ({"host_concurrency": {"127.0.0.1": 2}}, None, 2),
        ({"max_concurrency": 1, "host_concurrency": {"http://127.0.0.1": 5}}, None, 1),  # port 80
        ({"host_concurrency": {"*.0.0.1": 9, "127.0.0.1": 3}}, 6, 3),
    ],
    ids=["setting", "action", "host", "origin-elsewhere", "action-under-host"],
)
async def test_requests_in_flight_at_one_destination_never_exceed_its_cap(
    sqlite_url: str,
    streams: str,
    tmp_path: Path,
    settings: dict[str, Any],
    action: int | None,
    cap: int,
) -> None:
    async with (
        BacklogReceiver(tmp_path, delay=0.05, threaded=True, backlog=128) as receiver,
        running_services(sqlite_url, streams, tmp_path / "spool", webhooks=settings) as services,
    ):
        rule = make_rule("capped", [webhook(f"{receiver.url}/hook", concurrency=action)])
        await services.rules.apply([rule])
        await queue(services, rule, 40)
        async with dispatching(services):
            await eventually(lambda: _ended(services, "capped"), what="every action ended")
        seen = receiver.stop()
        assert set(await states(services, "capped")) == {"succeeded"}
    assert len(seen.keys) == 40
    assert seen.peak == cap  # never more; and the cap was used


async def test_waiting_for_a_slot_is_not_an_attempt(
    sqlite_url: str, streams: str, tmp_path: Path
) -> None:
    # One at a time, each answer taking 0.3 s, and at most 0.1 s of waiting in the
    # dispatcher: the actions behind the first are put back, some more than once.
    async with (
        BacklogReceiver(tmp_path, delay=0.3, threaded=True) as receiver,
        running_services(
            sqlite_url,
            streams,
            tmp_path / "spool",
            max_attempts=1,
            suspend_after=1,
            webhooks={"max_concurrency": 1, "max_wait": "100ms"},
        ) as services,
    ):
        rule = make_rule("patient", [webhook(f"{receiver.url}/hook")])
        await services.rules.apply([rule])
        await queue(services, rule, 6)
        async with dispatching(services):
            await eventually(lambda: _ended(services, "patient"), what="every action ended")
        seen = receiver.stop()
        rows = await actions_of(services, "patient")
        assert _deferred(services) > 0
    assert [(row.state, row.attempts) for row in rows] == [("succeeded", 1)] * 6
    assert (len(seen.keys), set(seen.keys.values()), seen.peak) == (6, {1}, 1)


@dataclass
class TurningAway:
    """A server answering 200, but resetting every ``every``-th connection after the
    first ``first`` (the request read, no answer: what a busy server's full accept
    queue does). ``answered``: the idempotency keys it answered."""

    every: int
    first: int
    answered: list[str] = field(default_factory=list)
    reset: int = 0
    port: int = 0
    _count: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)
            }
            await reader.readexactly(int(headers.get("content-length") or 0))
            self._count += 1
            if self._count > self.first and self._count % self.every == 0:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()  # a reset, not a close
                self.reset += 1
                return
            self.answered.append(headers.get("idempotency-key", ""))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TurningAway]:
        server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            await server.wait_closed()


async def test_a_live_destination_resetting_connections_gets_everything_later(
    sqlite_url: str, streams: str, tmp_path: Path
) -> None:
    # Every third connection is reset. Counted as failures, two attempts each and the
    # breaker at 3 in a row, actions failed and the breaker opened; as congestion of a
    # destination that answers, they wait and go again.
    async with (
        TurningAway(every=3, first=1).running() as server,
        running_services(
            sqlite_url, streams, tmp_path / "spool", max_attempts=2, suspend_after=3
        ) as services,
    ):
        rule = make_rule("busy", [webhook(f"{server.url}/hook")])
        await services.rules.apply([rule])
        await queue(services, rule, 1)  # it answers once: alive
        async with dispatching(services):
            await eventually(lambda: _ended(services, "busy"), what="the first action")
            await queue(services, rule, 60, first=1)
            await eventually(lambda: _ended(services, "busy"), what="every action ended")
        rows = await actions_of(services, "busy")
        breakers = await services.store.outbox.breakers(suspended=True)
    assert server.reset > 0
    assert breakers == []
    assert {row.state for row in rows} == {"succeeded"}
    assert sorted(server.answered) == sorted(str(row.idempotency_key) for row in rows)


async def test_http_429_is_congestion_not_failure(
    sqlite_url: str, streams: str, tmp_path: Path
) -> None:
    def respond(request: Request) -> tuple[int, float]:
        return (429 if len(receiver.requests) % 2 else 200), 0

    async with (
        Receiver(respond) as receiver,
        running_services(
            sqlite_url, streams, tmp_path / "spool", max_attempts=1, suspend_after=2
        ) as services,
    ):
        rule = make_rule("limited", [webhook(f"{receiver.url}/hook")])
        await services.rules.apply([rule])
        await queue(services, rule, 30)
        async with dispatching(services):
            await eventually(lambda: _ended(services, "limited"), what="every action ended")
        rows = await actions_of(services, "limited")
        breakers = await services.store.outbox.breakers(suspended=True)
    assert breakers == []
    assert {row.state for row in rows} == {"succeeded"}
    assert len(receiver.requests) > 30  # some were answered 429 first


async def test_a_destination_that_is_down_still_opens_the_breaker(
    sqlite_url: str, streams: str, tmp_path: Path
) -> None:
    # Uncounted retries after congestion are many here: only the judgment that the
    # destination is down (it never answered) makes the refusals count.
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    async with running_services(
        sqlite_url,
        streams,
        tmp_path / "spool",
        max_attempts=5,
        suspend_after=4,
        webhooks={"congestion_retries": 1000},
    ) as services:
        rule = make_rule("gone", [webhook(url)])
        await services.rules.apply([rule])
        await queue(services, rule, 20)
        async with dispatching(services):
            await eventually(lambda: _suspended(services, "gone"), what="the breaker open")
            await eventually(lambda: _ended(services, "gone"), what="every action ended")
        (breaker,) = await services.store.outbox.breakers(suspended=True)
        rows = await actions_of(services, "gone")
    assert (breaker.rule, breaker.index) == ("gone", 0)
    assert breaker.failures >= 4  # rows in flight when it opened count on
    assert "connection failed (refused)" in (breaker.last_error or "")
    assert {row.state for row in rows} == {"suspended"}


async def test_a_destination_gone_for_longer_than_the_health_window_opens_the_breaker(
    sqlite_url: str, streams: str, tmp_path: Path
) -> None:
    async with running_services(
        sqlite_url,
        streams,
        tmp_path / "spool",
        max_attempts=10,
        suspend_after=3,
        webhooks={"health_window": "1s", "congestion_retries": 1000},
    ) as services:
        server = TurningAway(every=10**9, first=0)  # answers all, a connection each
        stopped = False
        async with dispatching(services):
            async with server.running():
                rule = make_rule("vanishing", [webhook(f"{server.url}/hook")])
                await services.rules.apply([rule])
                await queue(services, rule, 3)
                await eventually(lambda: _ended(services, "vanishing"), what="three delivered")
            stopped = True
            # Refused from now on: congestion while it answered within the second, then
            # failures that count, and the breaker opens.
            await queue(services, rule, 10, first=3)
            await eventually(lambda: _suspended(services, "vanishing"), what="the breaker open")
        (breaker,) = await services.store.outbox.breakers(suspended=True)
        rows = await actions_of(services, "vanishing")
    assert stopped
    assert "connection failed (refused)" in (breaker.last_error or "")
    assert [row.state for row in rows[:3]] == ["succeeded"] * 3


async def _suspended(services: Services, rule: str) -> bool:
    return any(b.rule == rule for b in await services.store.outbox.breakers(suspended=True))
