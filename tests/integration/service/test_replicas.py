"""Scale-out step 1 (issue 19): one fenced owner of the engine, a standby that takes over.

Real processes: two ``interlock server`` replicas on one nats-server and one PostgreSQL
database (``replicas.enabled``, a lease TTL of 3 s). The same events (fixed ids and
times) go through a single replica first, for the reference set of firing ids, then
through two replicas while the owner is killed or paused:

- ``kill -9`` of the owner mid-stream: the standby takes over within TTL + 2 s and the
  stored firings are exactly the reference's; every action ran, and an action repeats
  only if its call was in flight at the kill (once, with the same idempotency key);
- ``SIGSTOP`` of the owner past its lease, then ``SIGCONT``: its engine stops (its
  store is refused by the epoch, or its renewal finds the lease taken, whichever comes
  first), the firings are the reference's, and no action runs twice;
- a clean stop (SIGTERM) of the owner releases its leases: the standby takes over at
  once and resumes after the last event (nothing replayed);
- a second server on another's SQLite database or embedded nats-server is refused.
"""

from __future__ import annotations

import asyncio
import collections
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from harness.interlock_server import interlock_server
from harness.nats import nats_client, running_nats_server
from harness.postgres import PostgresCluster
from harness.receiver import HttpReceiver, http_receiver
from harness.replicas import ReplicaProcess, firing_ids, make_events, publish_events
from interlock.sdk import EVENTS_STREAM
from interlock.sdk.event import Event

pytestmark = pytest.mark.slow

TTL = 3.0
TICKS = 3000
MARK_EVERY = 50
THRESHOLD = 500
EXPECTED_FIRINGS = TICKS // MARK_EVERY + TICKS // THRESHOLD
RULES = """
from interlock.rules import Rule, on, webhook

marks = Rule(
    name="marks",
    when=on("ha.mark"),
    then=[webhook("{url}/acted", body={{"n": "{{{{ event.payload.n }}}}"}})],
)
ticks = Rule(
    name="ticks",
    when=on("ha.tick", at_least={threshold}, within="1h"),
    then=[webhook("{url}/ticks", body={{"at": "{{{{ firing.fired_at }}}}"}})],
)
"""
ENV = {
    "INTERLOCK_REPLICAS__LEASE_TTL": f"{TTL}s",
    "INTERLOCK_ENGINE__CONSUMER_MAX_WAIT": "50ms",
    "INTERLOCK_ACTIONS__BACKOFF_INITIAL": "100ms",
}


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


@pytest.fixture
def events() -> list[Event]:
    return make_events(TICKS, mark_every=MARK_EVERY, start=datetime.now(UTC))


def _rules(receiver: HttpReceiver) -> dict[str, str]:
    return {"ha.py": RULES.format(url=receiver.url, threshold=THRESHOLD)}


def _wait_firings(database_url: str, count: int, timeout: float) -> set[object]:
    deadline = time.monotonic() + timeout
    while len(found := firing_ids(database_url)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} firings of {count} after {timeout} s")
        time.sleep(0.1)
    time.sleep(1.0)  # anything more that was going to come, comes now
    return set(firing_ids(database_url))


def _reference(
    tmp_path: Path, postgres: PostgresCluster, events: list[Event], receiver: HttpReceiver
) -> set[object]:
    """The firing ids of one replica given ``events``."""
    key = Fernet.generate_key().decode()
    with (
        running_nats_server(tmp_path / "ref-nats") as nats,
        postgres.database() as database_url,
    ):
        single = ReplicaProcess(
            tmp_path / "ref",
            "ref",
            nats_url=nats.url,
            database_url=database_url,
            secret_key=key,
            rules=_rules(receiver),
            env=ENV,
        )
        try:
            single.start()
            single.wait_role("owner", 30)
            publish_events(nats.url, events, tmp_path / "ref-spool")
            ids = _wait_firings(database_url, EXPECTED_FIRINGS, 90)
        finally:
            single.stop()
    receiver.requests.clear()
    receiver.arrivals.clear()
    return ids


def _pair(
    tmp_path: Path, nats_url: str, database_url: str, receiver: HttpReceiver
) -> tuple[ReplicaProcess, ReplicaProcess]:
    key = Fernet.generate_key().decode()
    a, b = (
        ReplicaProcess(
            tmp_path / name,
            name,
            nats_url=nats_url,
            database_url=database_url,
            secret_key=key,
            rules=_rules(receiver),
            env=ENV,
        )
        for name in ("a", "b")
    )
    a.start()
    a.wait_role("owner", 30)
    b.start()
    b.wait_role("standby", 30)
    return a, b


def _checkpoint_epoch(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = sa.text("SELECT epoch FROM engine_checkpoints WHERE name = 'default'")
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def _action_keys(receiver: HttpReceiver) -> collections.Counter[str]:
    return collections.Counter(r.headers["Idempotency-Key"] for r in receiver.requests)


def test_kill_9_of_the_owner_the_standby_takes_over_and_fires_the_same(
    tmp_path: Path,
    postgres: PostgresCluster,
    nats_url: str,
    postgres_url: str,
    events: list[Event],
    receiver: HttpReceiver,
) -> None:
    reference = _reference(tmp_path, postgres, events, receiver)
    assert len(reference) == EXPECTED_FIRINGS
    a, b = _pair(tmp_path, nats_url, postgres_url, receiver)
    try:
        assert a.health()["replica"] == {
            "name": "a",
            "engine": "owner",
            "engine_epoch": a.health()["replica"]["engine_epoch"],
            "scheduler": "owner",
            "scheduler_epoch": a.health()["replica"]["scheduler_epoch"],
        }
        assert b.health()["replica"] == {"name": "b", "engine": "standby", "scheduler": "standby"}
        publisher = threading.Thread(
            target=publish_events,
            args=(nats_url, events, tmp_path / "spool"),
            kwargs={"per_second": 1000},
        )
        publisher.start()
        while len(firing_ids(postgres_url)) < EXPECTED_FIRINGS // 4:
            time.sleep(0.02)
        a.kill()
        killed_at = datetime.now(UTC)
        takeover = b.wait_role("owner", TTL + 10)
        publisher.join()
        found = _wait_firings(postgres_url, EXPECTED_FIRINGS, 90)
        receiver.wait_for(TICKS // MARK_EVERY, "/acted", 60)
    finally:
        a.stop()
        b.stop()
    assert takeover <= TTL + 2, f"took over after {takeover:.2f} s"
    assert found == reference
    marks = {request.json()["n"] for request in receiver.received("/acted")}
    assert marks == set(range(0, TICKS, MARK_EVERY))
    keys = _action_keys(receiver)
    assert len(keys) == EXPECTED_FIRINGS
    first_seen: dict[str, datetime] = {}
    for request, arrived in zip(receiver.requests, receiver.arrivals, strict=True):
        first_seen.setdefault(request.headers["Idempotency-Key"], arrived)
    repeated = {key: count for key, count in keys.items() if count > 1}
    assert all(count == 2 for count in repeated.values()), repeated
    assert all(first_seen[key] < killed_at for key in repeated), "a repeat after the takeover"
    assert "engine lease: taken by b" in b.output()


def test_a_paused_owner_is_fenced_and_stops_its_engine(
    tmp_path: Path,
    postgres: PostgresCluster,
    nats_url: str,
    postgres_url: str,
    events: list[Event],
    receiver: HttpReceiver,
) -> None:
    reference = _reference(tmp_path, postgres, events, receiver)
    a, b = _pair(tmp_path, nats_url, postgres_url, receiver)
    half = len(events) // 2
    try:
        publish_events(nats_url, events[:half], tmp_path / "spool")
        a.pause()  # in the middle of the burst, a batch in hand
        try:  # how fast is the kill -9 test's subject; here, that it happens at all
            b.wait_role("owner", TTL + 30)
        except AssertionError as exc:  # what the paused one did last, too
            raise AssertionError(f"{exc}\n--- replica a, paused:\n{a.output()[-3000:]}") from None
        publish_events(nats_url, events[half:], tmp_path / "spool")
        found = _wait_firings(postgres_url, EXPECTED_FIRINGS, 90)
        a.resume()
        a.wait_role("standby", 15)  # its engine stopped
        time.sleep(2 * TTL)  # a fenced owner that went on would write now
        assert b.role() == "owner"
        assert _checkpoint_epoch(postgres_url) == b.health()["replica"]["engine_epoch"]
        receiver.wait_for(TICKS // MARK_EVERY, "/acted", 60)
        time.sleep(1)
    finally:
        a.stop()
        b.stop()
    assert found == reference
    assert firing_ids(postgres_url) == reference
    keys = _action_keys(receiver)
    assert len(keys) == EXPECTED_FIRINGS
    assert max(keys.values()) == 1, "an action ran twice"
    log = a.output()
    fenced = "another replica took the engine over" in log
    lost = "was taken over by another replica" in log
    assert fenced or lost, log[-3000:]
    assert "engine lease: epoch" in log  # it said its tenure ended, and why


def test_a_clean_stop_of_the_owner_hands_over_at_once_and_replays_nothing(
    tmp_path: Path, nats_url: str, postgres_url: str, receiver: HttpReceiver
) -> None:
    a, b = _pair(tmp_path, nats_url, postgres_url, receiver)
    events = make_events(1000, mark_every=MARK_EVERY, start=datetime.now(UTC))
    try:
        publish_events(nats_url, events, tmp_path / "spool")
        _wait_firings(postgres_url, 1000 // MARK_EVERY + 1000 // THRESHOLD, 60)
        started = time.monotonic()
        a.stop()  # SIGTERM: checkpoint, then the leases are released
        takeover = b.wait_role("owner", TTL + 10)
        last = asyncio.run(_last_sequence(nats_url))
        assert b.health()["replica"]["scheduler"] == "owner"
        overview = httpx.get(f"{b.url}/", timeout=10).text
        assert "Overview" in overview
        assert "consumer does not exist" not in overview
    finally:
        a.stop()
        b.stop()
    assert takeover < TTL / 2, f"{takeover:.2f} s: the lease was not released"
    assert time.monotonic() - started < TTL
    resumed = re.findall(r"resuming after stream sequence (\d+)", b.output())
    assert resumed, b.output()[-3000:]
    assert int(resumed[-1]) == last  # the whole stream was checkpointed: nothing replays


async def _last_sequence(nats_url: str) -> int:
    async with nats_client(nats_url) as client:
        info = await client.jetstream().stream_info(EVENTS_STREAM)
        return int(info.state.last_seq)


def test_a_second_server_on_sqlite_or_embedded_nats_is_refused(tmp_path: Path) -> None:
    with interlock_server(tmp_path / "first") as first:
        database = tmp_path / "first" / "data" / "interlock.db"
        base = [sys.executable, "-m", "interlock.sdk.cli", "server"]

        def second(**env: str) -> str:
            variables = {
                "PATH": "/usr/bin:/bin",
                "INTERLOCK_DATA_DIR": str(tmp_path / "second"),
                "INTERLOCK_API__PORT": "0",
                "INTERLOCK_RULES_DIR": str(tmp_path / "none"),
                "INTERLOCK_SECRET_KEY": Fernet.generate_key().decode(),
                **env,
            }
            done = subprocess.run(
                base, env=variables, capture_output=True, text=True, timeout=60, check=False
            )
            assert done.returncode != 0, done.stdout + done.stderr
            return done.stdout + done.stderr

        same_sqlite = second(INTERLOCK_DATABASE_URL=f"sqlite:///{database}")
        assert f"the SQLite database {database} is in use by another interlock server" in (
            same_sqlite
        )
        assert "several interlock servers need PostgreSQL" in same_sqlite
        embedded = second(INTERLOCK_NATS_URL=first.nats_url)
        assert "is the embedded nats-server of another interlock server" in embedded
        assert "several interlock servers need PostgreSQL" in embedded
        replicas_on_sqlite = second(
            INTERLOCK_REPLICAS__ENABLED="true", INTERLOCK_NATS_URL=first.nats_url
        )
        assert "replicas.enabled" in replicas_on_sqlite
        assert "several interlock servers need PostgreSQL" in replicas_on_sqlite
        assert first.process.poll() is None  # the first one runs on
