"""Failover of the engine between two ``interlock server`` replicas (issue 19, step 1).

Two replicas (``replicas.enabled``) share a nats-server and a PostgreSQL cluster (both
started here, as the tests do); a rule fires on every ``bench.tick``, published at a
steady rate the whole time. ``--kills`` times: find the owner, ``kill -9`` it, and
measure

- **takeover**: until the standby's ``/api/health`` says it owns the engine;
- **failover**: until the new owner's first committed batch, i.e. the first firing
  stored after the kill (``firings.stored_at``: the commit's time, from the new owner);

then start the killed replica again (it stands by) for the next round. The target is
the lease TTL + 2 s. Figures: p50 and max of each, and every round's.

    python tests/perf/bench_failover.py [--kills 10] [--ttl 10] [--rate 200] [--out .bench]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from figures import write_figures

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness

from harness.nats import running_nats_server
from harness.postgres import PostgresCluster
from harness.replicas import ReplicaProcess
from interlock.sdk import NatsOptions, PublisherConfig
from interlock.sdk.event import Event
from interlock.sdk.sync import SyncPublisher

RULES = """
from interlock.rules import Rule, on

each = Rule(name="each-tick", when=on("bench.tick"))
"""


def _ticks(rate: float, stop: threading.Event, nats_url: str, spool: Path) -> None:
    """Publish ``bench.tick`` at ``rate`` per second (in 20 chunks a second) until ``stop``."""
    config = PublisherConfig(nats=NatsOptions(servers=(nats_url,)), source="bench", spool_dir=spool)
    publisher = SyncPublisher(config)
    n = 0
    chunk = max(1, int(rate / 20))
    try:
        while not stop.is_set():
            now = datetime.now(UTC)
            publisher.publish_many(
                [
                    Event(
                        id=uuid.uuid4(),
                        occurred=now,
                        event="bench.tick",
                        resource={"id": f"r{(n + i) % 100}"},
                        payload={"n": n + i},
                    )
                    for i in range(chunk)
                ]
            )
            n += chunk
            stop.wait(chunk / rate)
    finally:
        publisher.close()


def _first_commit_after(engine: sa.Engine, after: datetime, timeout: float) -> datetime:
    query = sa.text("SELECT min(stored_at) FROM firings WHERE stored_at > :after")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            found = connection.execute(query, {"after": after}).scalar()
        if found is not None:
            return found if found.tzinfo else found.replace(tzinfo=UTC)
        time.sleep(0.01)
    raise RuntimeError(f"no batch committed within {timeout} s of the kill")


def run(scratch: Path, kills: int, ttl: float, rate: float) -> dict[str, Any]:
    """Two replicas, ``kills`` rounds; the round figures."""
    key = Fernet.generate_key().decode()
    env = {"INTERLOCK_REPLICAS__LEASE_TTL": f"{ttl}s"}
    rounds: list[dict[str, float]] = []
    with (
        PostgresCluster() as postgres,
        postgres.database() as database_url,
        running_nats_server(scratch / "nats") as nats,
    ):
        replicas = [
            ReplicaProcess(
                scratch / name,
                name,
                nats_url=nats.url,
                database_url=database_url,
                secret_key=key,
                rules={"bench.py": RULES},
                env=env,
            )
            for name in ("a", "b")
        ]
        stop = threading.Event()
        publisher = threading.Thread(
            target=_ticks, args=(rate, stop, nats.url, scratch / "spool"), daemon=True
        )
        engine = sa.create_engine(database_url)
        try:
            replicas[0].start()
            replicas[0].wait_role("owner", 60)
            replicas[1].start()
            replicas[1].wait_role("standby", 60)
            publisher.start()
            time.sleep(2)
            for index in range(kills):
                owner = next(r for r in replicas if r.role() == "owner")
                standby = next(r for r in replicas if r is not owner)
                time.sleep(1.0)  # a steady flow of commits before the kill
                owner.kill()  # returns once the process is gone: no commit of it comes later
                killed_at = datetime.now(UTC)
                started = time.monotonic()
                takeover = standby.wait_role("owner", ttl + 30)
                committed = _first_commit_after(engine, killed_at, ttl + 30)
                failover = (committed - killed_at).total_seconds()
                rounds.append({"takeover_s": round(takeover, 3), "failover_s": round(failover, 3)})
                print(
                    f"kill {index + 1}/{kills}: {owner.name} killed; {standby.name} owner after "
                    f"{takeover:.2f} s, first batch committed after {failover:.2f} s "
                    f"({time.monotonic() - started:.1f} s)"
                )
                owner.start()
                owner.wait_role("standby", 60)
        finally:
            stop.set()
            publisher.join(timeout=10)
            engine.dispose()
            for replica in replicas:
                replica.stop()
    failovers = [r["failover_s"] for r in rounds]
    takeovers = [r["takeover_s"] for r in rounds]
    return {
        "kills": kills,
        "lease_ttl_s": ttl,
        "events_per_s": rate,
        "failover_p50_s": round(statistics.median(failovers), 3),
        "failover_max_s": round(max(failovers), 3),
        "takeover_p50_s": round(statistics.median(takeovers), 3),
        "takeover_max_s": round(max(takeovers), 3),
        "target_s": ttl + 2,
        "rounds": rounds,
    }


def main(kills: int, ttl: float, rate: float, out: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        result = run(Path(scratch), kills, ttl, rate)
    print(
        f"failover (kill -9 -> new owner's first committed batch) over {kills} kills, lease "
        f"TTL {ttl:g} s: p50 {result['failover_p50_s']:.2f} s, max "
        f"{result['failover_max_s']:.2f} s (target TTL + 2 s = {ttl + 2:g} s); takeover p50 "
        f"{result['takeover_p50_s']:.2f} s, max {result['takeover_max_s']:.2f} s"
    )
    figures = {"benchmark": "failover", **result}
    write_figures(out / "failover.json", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--ttl", type=float, default=10.0, help="lease TTL in seconds")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    arguments = parser.parse_args()
    main(arguments.kills, arguments.ttl, arguments.rate, arguments.out)
