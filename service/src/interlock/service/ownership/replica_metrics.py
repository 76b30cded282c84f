"""This replica in Prometheus: its name and which leases it holds (issue 19).

Two replicas expose the same series (``interlock_events_consumed_total``, ...). Scraped
as two targets, they never collide: Prometheus adds the target labels ``job`` and
``instance`` to every series it scrapes (its "Jobs and instances" documentation), and
labels that say *which process* a series comes from are target labels by Prometheus'
conventions, not labels an application puts on every series itself (they would double
with ``instance``, and change every series' identity when a replica is renamed).

So a replica adds one **info metric**, ``interlock_replica_info{replica="<name>"} 1``,
and ``interlock_replica_lease_owner{lease="engine"|"scheduler"}`` (1 while it holds the
lease, 0 while it stands by). A query that wants the replica's name joins on
``instance``::

    rate(interlock_events_consumed_total[5m])
      * on (instance) group_left (replica) interlock_replica_info

and ``sum by (lease) (interlock_replica_lease_owner)`` is 1 when every lease has an owner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import Gauge

from interlock.service.metrics import Metrics
from interlock.service.ownership.campaign import Campaign

__all__ = ["register_replica_metrics"]


def register_replica_metrics(
    metrics: Metrics, name: str, campaigns: Mapping[str, Campaign]
) -> None:
    """Add ``interlock_replica_info`` and ``interlock_replica_lease_owner`` to ``metrics``."""
    info = Gauge(
        "interlock_replica_info",
        "This interlock server as one of several replicas (always 1; its name as a label)",
        ["replica"],
        registry=metrics.registry,
    )
    info.labels(replica=name).set(1)
    owner = Gauge(
        "interlock_replica_lease_owner",
        "1 while this replica holds the lease (owner), 0 while it stands by",
        ["lease"],
        registry=metrics.registry,
    )
    for lease, campaign in campaigns.items():
        owner.labels(lease=lease).set_function(_is_owner(campaign))


def _is_owner(campaign: Campaign) -> Callable[[], float]:
    return lambda: 1.0 if campaign.state == "owner" else 0.0
