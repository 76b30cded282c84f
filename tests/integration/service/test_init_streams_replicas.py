"""``interlock events init-streams --replicas 3`` on a 3-node JetStream cluster (issue 19).

It creates ``INTERLOCK_EVENTS``, ``INTERLOCK_DEAD`` and the lease bucket
``INTERLOCK_LEASES`` with 3 replicas each. An ``interlock server`` replica started on
them (its ``replicas.lease_replicas`` left at 1) changes none of them, and running
``init-streams`` again without ``--replicas`` keeps their replicas.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from harness.nats import nats_client, running_nats_cluster
from harness.replicas import ReplicaProcess

pytestmark = pytest.mark.slow

NAMES = ("INTERLOCK_EVENTS", "INTERLOCK_DEAD", "KV_INTERLOCK_LEASES")


def _init_streams(urls: str, *options: str) -> str:
    """Run the command until the cluster answers (it elects its JetStream leader first)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    command = [sys.executable, "-m", "interlock.sdk.cli", "events", "init-streams"]
    deadline = time.monotonic() + 60
    while True:
        done = subprocess.run(
            [*command, "--nats-url", urls, *options],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:
            return done.stdout
        if time.monotonic() > deadline:
            raise AssertionError(done.stdout + done.stderr)
        time.sleep(0.5)


async def _replicas(url: str) -> dict[str, int]:
    async with nats_client(url) as client:
        js = client.jetstream()
        return {name: (await js.stream_info(name)).config.num_replicas or 1 for name in NAMES}


def test_init_streams_with_replicas_sets_up_a_cluster_the_service_leaves_alone(
    tmp_path: Path, postgres_url: str
) -> None:
    with running_nats_cluster(tmp_path / "cluster", size=3) as nodes:
        urls = ",".join(node.url for node in nodes)
        printed = _init_streams(urls, "--replicas", "3")
        assert asyncio.run(_replicas(nodes[0].url)) == dict.fromkeys(NAMES, 3)
        assert "KV_INTERLOCK_LEASES: 0 messages, 0 bytes, 3 replicas" in printed
        replica = ReplicaProcess(
            tmp_path / "a",
            "a",
            nats_url=urls,
            database_url=postgres_url,
            secret_key=Fernet.generate_key().decode(),
            env={"INTERLOCK_REPLICAS__LEASE_TTL": "10s"},
        )
        try:
            replica.start()
            replica.wait_role("owner", 60)
            after_start = asyncio.run(_replicas(nodes[1].url))
        finally:
            replica.stop()
        _init_streams(urls)  # no --replicas: each keeps its replicas
        again = asyncio.run(_replicas(nodes[2].url))
    assert after_start == dict.fromkeys(NAMES, 3)
    assert again == dict.fromkeys(NAMES, 3)
