"""The real-service test harness: throwaway NATS and PostgreSQL servers, no mocks.

``harness.nats`` runs ``nats-server`` with JetStream through the service's own
``EmbeddedNatsServer``; ``harness.postgres`` runs a private PostgreSQL cluster with
``initdb``/``pg_ctl``. ``tests/conftest.py`` turns both into fixtures.

Import from the modules themselves: the SDK's tests also run on Python 3.9 without
psycopg (``make test-sdk-pythons``), so nothing here imports ``harness.postgres`` eagerly.
"""
