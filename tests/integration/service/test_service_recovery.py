"""The service rides out NATS and PostgreSQL going down mid-stream, by itself.

Events keep coming (the producer's SDK spools while NATS is away); the server is
stopped for a few seconds and started again; every event's action arrives, once.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from harness.postgres import PostgresCluster
from harness.receiver import HttpReceiver, http_receiver
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.service.embedded_nats import EmbeddedNatsServer
from interlock.service.server import Service
from interlock.service.settings import load_settings

pytestmark = pytest.mark.slow

MARKS = 150
RULES = """
from interlock.rules import Rule, on, webhook

marks = Rule(
    name="marks",
    when=on("recovery.mark"),
    then=[webhook("{url}/acted", body={{"n": "{{{{ event.payload.n }}}}"}})],
)
"""


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


async def stream_with_an_outage(
    nats_url: str, postgres_url: str, tmp_path: Path, receiver: HttpReceiver,
    outage: Callable[[], None], recover: Callable[[], None],
) -> None:  # fmt: skip
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "marks.py").write_text(RULES.format(url=receiver.url))
    settings = load_settings(
        None,
        database_url=postgres_url,
        nats_url=nats_url,
        secret_key=Fernet.generate_key().decode(),
        data_dir=tmp_path / "data",
        rules_dir=rules,
        api={"port": 0},
        actions={"backoff_initial": "100ms", "backoff_max": "1s", "max_attempts": 50},
    )
    config = PublisherConfig(
        nats=NatsOptions(servers=(nats_url,)), source="test", spool_dir=tmp_path / "producer"
    )
    async with Service(settings, worker=False), Publisher(config) as publisher:
        for n in range(MARKS):
            await publisher.publish(publisher.event("recovery.mark", "src", payload={"n": n}))
            if n == MARKS // 3:
                await asyncio.to_thread(outage)
                await asyncio.sleep(2)  # events keep coming: the producer spools them
            if n == MARKS // 2:
                await asyncio.to_thread(recover)
            await asyncio.sleep(0.01)
        await publisher.flush(timeout=60)
        await asyncio.to_thread(receiver.wait_for, MARKS, "/acted", 90)
        await asyncio.sleep(0.5)
    numbers = collections.Counter(r.json()["n"] for r in receiver.received("/acted"))
    assert set(numbers) == set(range(MARKS))  # numbers stay numbers in a JSON body
    keys = collections.Counter(r.headers["Idempotency-Key"] for r in receiver.received())
    assert max(keys.values()) == 1


async def test_nats_restarted_mid_stream(
    nats_server: EmbeddedNatsServer, postgres_url: str, tmp_path: Path, receiver: HttpReceiver
) -> None:
    await stream_with_an_outage(
        nats_server.url, postgres_url, tmp_path, receiver, nats_server.stop, nats_server.start
    )


async def test_postgresql_restarted_mid_stream(
    nats_url: str,
    postgres: PostgresCluster,
    postgres_url: str,
    tmp_path: Path,
    receiver: HttpReceiver,
) -> None:
    await stream_with_an_outage(
        nats_url,
        postgres_url,
        tmp_path,
        receiver,
        lambda: postgres.stop("immediate"),
        postgres.start,
    )
