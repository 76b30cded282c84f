"""Two replicas on a 3-node JetStream cluster (issue 19, step 1).

The stream and the lease bucket have 3 replicas each. Killing the node that leads the
lease bucket's RAFT group must not lose the lease: the owner keeps renewing through the
other nodes (its tenure stays the same), the standby stays a standby, events go on
being fired on. And the service leaves the stream's 3 replicas as the operator set them
(it used to reset them to 1 at every start).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from nats.errors import Error as NatsError

from harness.nats import nats_client, running_nats_cluster
from harness.replicas import ReplicaProcess, firing_ids, make_events, publish_events
from interlock.sdk import EVENTS_STREAM, StreamLimits, ensure_streams

pytestmark = pytest.mark.slow

TTL = 10.0  # the default: outlives a leader election of the bucket (~5-7 s here)
RULES = """
from interlock.rules import Rule, on

each = Rule(name="each-tick", when=on("ha.tick"))
"""


async def _streams(url: str) -> None:
    async with nats_client(url) as client:
        for _ in range(200):  # the cluster elects its JetStream leader first
            try:
                await ensure_streams(client.jetstream(), StreamLimits(replicas=3))
                return
            except NatsError:  # no leader yet, no response from the stream, a timeout
                await asyncio.sleep(0.1)
        raise AssertionError("the cluster did not take the streams")


async def _leader(url: str, stream: str) -> str:
    async with nats_client(url) as client:
        info = await client.jetstream().stream_info(stream)
        assert info.cluster is not None
        assert info.cluster.leader is not None
        return info.cluster.leader


async def _replicas_of(url: str, stream: str) -> int:
    async with nats_client(url) as client:
        info = await client.jetstream().stream_info(stream)
        return int(info.config.num_replicas or 1)


def test_killing_the_lease_buckets_leader_node_loses_no_lease(
    tmp_path: Path, postgres_url: str
) -> None:
    with running_nats_cluster(tmp_path / "cluster", size=3) as nodes:
        urls = ",".join(node.url for node in nodes)
        asyncio.run(_streams(nodes[0].url))
        key = Fernet.generate_key().decode()
        env = {
            "INTERLOCK_REPLICAS__LEASE_TTL": f"{TTL}s",
            "INTERLOCK_REPLICAS__LEASE_REPLICAS": "3",
            "INTERLOCK_ENGINE__CONSUMER_MAX_WAIT": "50ms",
        }
        a, b = (
            ReplicaProcess(
                tmp_path / name,
                name,
                nats_url=urls,
                database_url=postgres_url,
                secret_key=key,
                rules={"ha.py": RULES},
                env=env,
            )
            for name in ("a", "b")
        )
        try:
            a.start()
            a.wait_role("owner", 60)
            b.start()
            b.wait_role("standby", 60)
            epoch = a.health()["replica"]["engine_epoch"]
            assert asyncio.run(_replicas_of(nodes[0].url, EVENTS_STREAM)) == 3
            assert asyncio.run(_replicas_of(nodes[0].url, "KV_INTERLOCK_LEASES")) == 3
            leader = asyncio.run(_leader(nodes[0].url, "KV_INTERLOCK_LEASES"))
            victim = next(node for node in nodes if node.log_path.stem == leader)
            survivor = next(node for node in nodes if node is not victim)
            victim.kill()
            events = make_events(500, mark_every=10**6, start=datetime.now(UTC))
            publish_events(survivor.url, events, tmp_path / "spool")
            deadline = time.monotonic() + 60
            while len(firing_ids(postgres_url)) < 500:
                assert time.monotonic() < deadline, "the owner stopped firing"
                time.sleep(0.1)
            time.sleep(2 * TTL)  # longer than a lease: renewals went through the others
            assert a.role() == "owner"
            assert a.health()["replica"]["engine_epoch"] == epoch  # the same tenure
            assert b.role() == "standby"
        finally:
            a.stop()
            b.stop()
        log = a.output()
        assert "was taken over by another replica" not in log, log[-3000:]
        assert "could not be renewed" not in log, log[-3000:]
