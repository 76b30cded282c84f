"""This server as one of several replicas: its name, its leases, its campaigns.

:class:`Replica` opens the lease bucket (``replicas.lease_bucket``, created with the
TTL ``replicas.lease_ttl`` if missing) and runs two campaigns (:mod:`.campaign`): one
for the ``engine`` lease (:class:`~.roles.EngineRole`), one for the ``scheduler`` lease
(:class:`~.roles.ScheduleRole`). Rule changes made through this replica are announced
in the same bucket (:mod:`.rule_sync`), so the engine's owner loads them; its name and
leases are in its metrics (:mod:`.replica_metrics`). Each replica is named
``replicas.name`` or ``<host>-<pid>``; the name is the leases' value, so ``nats kv get``
shows who owns what.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

from nats.aio.client import Client as NATS

from interlock.service.ownership.campaign import Campaign
from interlock.service.ownership.lease import KvLease, open_lease_bucket
from interlock.service.ownership.replica_metrics import register_replica_metrics
from interlock.service.ownership.roles import EngineRole, ScheduleRole
from interlock.service.ownership.rule_sync import RuleAnnouncer
from interlock.service.settings import Settings

__all__ = ["ENGINE_LEASE", "SCHEDULER_LEASE", "Replica", "replica_name"]

ENGINE_LEASE = "engine"
SCHEDULER_LEASE = "scheduler"
_MAX_POLL = 1.0


def replica_name(settings: Settings) -> str:
    """This replica's name: ``replicas.name``, else the host name and the process id."""
    return settings.replicas.name or f"{socket.gethostname()}-{os.getpid()}"


class Replica:
    """The leases and campaigns of one replica.

    Args:
        settings: The service's settings (``replicas`` enabled).
        nc: A connected NATS client.
        engine: The engine's role.
        schedules: The scheduled work's role.
        monotonic: Seconds from a monotonic clock (injected in tests).
    """

    def __init__(
        self,
        settings: Settings,
        nc: NATS,
        engine: EngineRole,
        schedules: ScheduleRole,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.name = replica_name(settings)
        self.nc = nc
        self.engine = engine
        self.schedules = schedules
        self._monotonic = monotonic
        self.campaigns: dict[str, Campaign] = {}

    async def open(self) -> list[Coroutine[Any, Any, None]]:
        """Open the bucket and build the campaigns; return their loops, to be spawned."""
        replicas = self.settings.replicas
        ttl = replicas.lease_ttl
        kv = await open_lease_bucket(
            self.nc.jetstream(), replicas.lease_bucket, ttl, replicas=replicas.lease_replicas
        )
        self.engine.rules_kv = kv
        self.engine.replica_name = self.name
        self.engine.host.on_changed = RuleAnnouncer(kv, self.name).announce
        poll = min(_MAX_POLL, ttl.total_seconds() / 5)
        for key, role in ((ENGINE_LEASE, self.engine), (SCHEDULER_LEASE, self.schedules)):
            lease = KvLease(kv, key, self.name, ttl=ttl, monotonic=self._monotonic)
            self.campaigns[key] = Campaign(lease, role, poll=poll)
        register_replica_metrics(self.engine.services.metrics, self.name, self.campaigns)
        return [campaign.run() for campaign in self.campaigns.values()]

    async def stop(self) -> None:
        """Ask every campaign to stop its work and release its lease."""
        for campaign in self.campaigns.values():
            await campaign.stop()

    def status(self) -> dict[str, Any]:
        """This replica's name and, per lease, ``owner`` or ``standby`` (and the epoch)."""
        found: dict[str, Any] = {"name": self.name}
        for key, campaign in self.campaigns.items():
            found[key] = campaign.state
            if campaign.state == "owner":
                found[f"{key}_epoch"] = campaign.epoch
        return found
