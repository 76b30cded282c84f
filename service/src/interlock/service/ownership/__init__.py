"""Scale-out, step 1: one fenced owner of the engine, standbys that take over (issue 19).

Several ``interlock server`` replicas share one NATS server or cluster and one
PostgreSQL database. Each piece of work that must run once (the engine, the scheduled
work) is guarded by a lease in a NATS KV bucket with a TTL (:mod:`.lease`): the replica
holding it runs the work, the others stand by and take over when its lease expires
(:mod:`.campaign`, :mod:`.roles`). The engine lease's revision is an epoch written into
the checkpoint row and checked in every batch's transaction
(:mod:`interlock.service.store.epochs`), so a replica that lost its lease cannot commit.
A second server on a SQLite file or an embedded nats-server is refused
(:mod:`.refusal`). The operator's view: docs/operations/scale-out.md.
"""

from interlock.service.ownership.campaign import Campaign, Role
from interlock.service.ownership.lease import KvLease, LeaseLost, open_lease_bucket
from interlock.service.ownership.refusal import (
    EMBEDDED_NATS_NAME,
    SqliteInUse,
    SqliteLock,
    refuse_embedded_nats_of_another,
)
from interlock.service.ownership.replica import ENGINE_LEASE, SCHEDULER_LEASE, Replica
from interlock.service.ownership.roles import EngineRole, ScheduleRole

__all__ = [
    "EMBEDDED_NATS_NAME",
    "ENGINE_LEASE",
    "SCHEDULER_LEASE",
    "Campaign",
    "EngineRole",
    "KvLease",
    "LeaseLost",
    "Replica",
    "Role",
    "ScheduleRole",
    "SqliteInUse",
    "SqliteLock",
    "open_lease_bucket",
    "refuse_embedded_nats_of_another",
]
