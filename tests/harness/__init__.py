"""The real-service test harness: throwaway NATS and PostgreSQL servers, no mocks.

``harness.nats`` runs ``nats-server`` with JetStream through the service's own
``EmbeddedNatsServer``; ``harness.postgres`` runs a private PostgreSQL cluster with
``initdb``/``pg_ctl``. ``tests/conftest.py`` turns both into fixtures.
"""

from harness.nats import nats_client, running_nats_server
from harness.postgres import PostgresCluster, PostgresClusterError, PostgresNotInstalled

__all__ = [
    "PostgresCluster",
    "PostgresClusterError",
    "PostgresNotInstalled",
    "nats_client",
    "running_nats_server",
]
