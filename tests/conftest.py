"""Real-service fixtures shared by every test: NATS with JetStream, PostgreSQL, SQLite.

- ``nats_server``: a fresh ``nats-server`` per test (JetStream store in ``tmp_path``); the
  test may ``stop()``, ``kill()`` or ``restart()`` it; it is always stopped at teardown.
  ``nats_url`` is its URL.
- ``postgres``: one throwaway PostgreSQL cluster per session; ``postgres_url`` is a fresh
  database in it per test, dropped afterwards. Tests using either are marked ``postgres``
  automatically, so ``-m "not postgres"`` skips them.
- ``sqlite_url``: a file-backed SQLite database in ``tmp_path``.
- ``streams_client``: a nats-py client of ``nats_server`` on which Interlock's streams
  exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from nats.aio.client import Client

from harness.nats import nats_client, running_nats_server
from interlock.sdk import ensure_streams
from interlock.service.embedded_nats import EmbeddedNatsServer

if TYPE_CHECKING:  # imported by the fixture: the SDK's tests run without psycopg too
    from harness.postgres import PostgresCluster
    from integration.adapters.airflow.airflow_env import AirflowHome, ApiServer
    from interlock.adapters.prefect import PrefectConnection

_POSTGRES_FIXTURES = frozenset({"postgres", "postgres_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    with running_nats_server(tmp_path / "nats") as server:
        yield server


@pytest.fixture
def nats_url(nats_server: EmbeddedNatsServer) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    from harness.postgres import PostgresCluster  # noqa: PLC0415 - see the import above

    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> Iterator[str]:
    with postgres.database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'interlock.db'}"


@pytest.fixture
async def streams_client(nats_url: str) -> AsyncIterator[Client]:
    async with nats_client(nats_url) as client:
        await ensure_streams(client.jetstream())
        yield client


# -- real servers the adapters' tests and the plugin contract suites share -----------------
# Session-wide and started only when a test asks for one (tests/contract/ and
# tests/integration/adapters/ use the same instance): Airflow 3 costs ~25 s to start.


@pytest.fixture(scope="session")
def airflow_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JetStream server for the session (the Airflow processes publish to it)."""
    from harness.nats import init_streams  # noqa: PLC0415 - only where Airflow is used

    with running_nats_server(tmp_path_factory.mktemp("airflow-nats")) as server:
        init_streams(server.url)
        yield server.url


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, airflow_nats: str) -> AirflowHome:
    """A migrated ``AIRFLOW_HOME`` (Airflow 3) whose DAGs are in the database."""
    from integration.adapters.airflow.airflow_env import (  # noqa: PLC0415
        AirflowHome,
        airflow_virtualenv,
    )

    home = AirflowHome(airflow_virtualenv(), tmp_path_factory.mktemp("airflow-home"), airflow_nats)
    home.prepare()
    return home


@pytest.fixture(scope="session")
def airflow_api(airflow_home: AirflowHome) -> Iterator[ApiServer]:
    """``airflow api-server`` for the session (user ``interlock``, role admin)."""
    from integration.adapters.airflow.airflow_env import running_api_server  # noqa: PLC0415

    with running_api_server(airflow_home) as server:
        yield server


@pytest.fixture(scope="session")
def prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectConnection]:
    """A running Prefect server (auth string set), shared by the session's tests."""
    from integration.adapters.prefect.prefect_server import (  # noqa: PLC0415
        running_prefect_server,
    )

    with running_prefect_server(tmp_path_factory.mktemp("prefect-home")) as connection:
        yield connection
