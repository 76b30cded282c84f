"""``kill -9`` of ``interlock server`` in the middle of a stream, then a restart, on
SQLite and on PostgreSQL.

5,000 events flow in two halves with the service killed between them, while 20
heartbeat deadlines are pending. After the restart: every event was counted exactly once
(a threshold of 2,500 fires exactly twice), every action ran (webhooks received for
every ``load.mark``), and every pending deadline fired.

"Acts once" means what it can mean across ``kill -9``: an HTTP call that was made but
whose success was not yet stored when the process died is made again after the restart,
with the **same** ``Idempotency-Key``, so a receiver that honours the key acts once. The
test checks exactly that: a key repeats at most once, only for a call first received
before the kill, and nothing executed after the restart repeats.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from harness.receiver import HttpReceiver, http_receiver
from interlock.sdk import NatsOptions, Publisher, PublisherConfig

pytestmark = pytest.mark.slow

KEYS = [f"k{i}" for i in range(20)]
RULES = """
from interlock.rules import Rule, absent, heartbeat, on, webhook

marks = Rule(
    name="marks",
    when=on("load.mark"),
    then=[webhook("{url}/acted", body={{"n": "{{{{ event.payload.n }}}}"}})],
)
ticks = Rule(
    name="ticks",
    when=on("load.tick", at_least=2500, within="1h"),
    then=[webhook("{url}/ticks", body={{"at": "{{{{ firing.fired_at }}}}"}})],
)
beats = Rule(
    name="beats",
    when=absent("load.beat", by=heartbeat("4s"), for_each="resource.id", keys={keys!r}),
    then=[webhook("{url}/beat", body={{"key": "{{{{ key }}}}"}})],
)
"""
_SERVING = re.compile(r"serving the API at (http://\S+)")


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


class Server:
    """``interlock server`` as a child process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "interlock.sdk.cli", "server"],
                env=self.env,
                stdout=output,
                stderr=output,
            )
        deadline = time.monotonic() + 60
        while not self.url:
            text = self.log.read_text(errors="replace")[offset:]
            if found := _SERVING.search(text):
                self.url = found.group(1)
            elif self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"interlock server did not start:\n{text[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.url = ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def publish(
    nats_url: str, spool: Path, events: list[tuple[str, str, dict[str, Any]]]
) -> None:
    config = PublisherConfig(nats=NatsOptions(servers=(nats_url,)), source="test", spool_dir=spool)
    async with Publisher(config) as publisher:
        await publisher.publish_many(
            publisher.event(name, resource, payload=data) for name, resource, data in events
        )


def half(first: int) -> list[tuple[str, str, dict[str, Any]]]:
    events: list[tuple[str, str, dict[str, Any]]] = []
    for n in range(first, first + 2500):
        events.append(("load.tick", "source", {"n": n}))
        if n % 50 == 0:
            events.append(("load.mark", "source", {"n": n}))
    return events


async def test_kill_9_mid_stream_loses_nothing_and_acts_once(
    nats_url: str, database_url: str, tmp_path: Path, receiver: HttpReceiver
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "load.py").write_text(RULES.format(url=receiver.url, keys=KEYS))
    env = {
        **os.environ,
        "INTERLOCK_NATS_URL": nats_url,
        "INTERLOCK_DATABASE_URL": database_url,
        "INTERLOCK_SECRET_KEY": Fernet.generate_key().decode(),
        "INTERLOCK_DATA_DIR": str(tmp_path / "data"),
        "INTERLOCK_RULES_DIR": str(rules),
        "INTERLOCK_API__PORT": "0",
        "INTERLOCK_ACTIONS__TIMEOUT": "3s",
        "INTERLOCK_ACTIONS__LEASE": "5s",
        "INTERLOCK_ACTIONS__BACKOFF_INITIAL": "100ms",
    }
    server = Server(env, tmp_path / "server.log")
    try:
        server.start()
        await publish(nats_url, tmp_path / "spool", half(0))
        await asyncio.to_thread(receiver.wait_for, 10, "/acted", 60)
        server.kill()  # mid-stream: actions in flight, deadlines pending
        killed_at = datetime.now(UTC)
        await publish(nats_url, tmp_path / "spool", half(2500))
        server.start()
        acted = await asyncio.to_thread(receiver.wait_for, 100, "/acted", 90)
        ticks = await asyncio.to_thread(receiver.wait_for, 2, "/ticks", 90)
        beats = await asyncio.to_thread(receiver.wait_for, len(KEYS), "/beat", 90)
        await asyncio.sleep(1)  # anything more that was going to come, comes now
        async with httpx.AsyncClient(base_url=server.url) as client:
            health = await client.get("/api/health")
            assert health.status_code == 200
    finally:
        server.stop()
    marks = {request.json()["n"] for request in receiver.received("/acted")}
    assert marks == set(range(0, 5000, 50))  # numbers stay numbers in a JSON body
    # Two firings (each event counted once); a call in flight at the kill may repeat.
    tick_keys = {request.headers["Idempotency-Key"] for request in receiver.received("/ticks")}
    assert len(tick_keys) == 2, ticks
    assert {request.json()["key"] for request in beats} >= set(KEYS)
    first_seen: dict[str, datetime] = {}
    keys: collections.Counter[str] = collections.Counter()
    for request, arrived in zip(receiver.received(), receiver.arrivals, strict=True):
        key = request.headers["Idempotency-Key"]
        keys[key] += 1
        first_seen.setdefault(key, arrived)
    repeated = {key: count for key, count in keys.items() if count > 1}
    assert all(count == 2 for count in repeated.values()), repeated
    assert all(first_seen[key] < killed_at for key in repeated), "a repeat after the restart"
    assert len(repeated) < len(acted)  # only what was in flight at the kill
