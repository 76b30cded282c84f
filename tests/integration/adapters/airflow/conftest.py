"""Session fixtures of the Airflow adapter's tests: real Airflow 3, its API server, DAG runs.

Everything Airflow costs is paid once per session (see ``airflow_env.py``): the
virtualenv (cached between sessions), ``airflow db migrate`` and ``dags reserialize``,
one ``airflow api-server``, and three ``airflow dags test`` runs made with the listener
plugin loaded — ``interlock_ok`` and ``interlock_fail`` publishing to a JetStream server
of the session, ``interlock_offline`` with NATS down (its events go to a spool). Tests
read what those runs left; none starts another Airflow process. Airflow 2's fixtures are
in ``v2/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.nats import init_streams, running_nats_server
from harness.ports import free_port
from integration.adapters.airflow.airflow_env import (
    AirflowHome,
    ApiServer,
    DagTests,
    airflow_virtualenv,
    running_api_server,
)


@pytest.fixture(scope="session")
def airflow_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JetStream server for the session (the Airflow processes publish to it)."""
    with running_nats_server(tmp_path_factory.mktemp("airflow-nats")) as server:
        init_streams(server.url)
        yield server.url


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, airflow_nats: str) -> AirflowHome:
    """A migrated ``AIRFLOW_HOME`` whose DAGs are in the database."""
    home = AirflowHome(airflow_virtualenv(), tmp_path_factory.mktemp("airflow-home"), airflow_nats)
    home.prepare()
    return home


@pytest.fixture(scope="session")
def airflow_api(airflow_home: AirflowHome) -> Iterator[ApiServer]:
    """``airflow api-server`` for the session (user ``interlock``, role admin)."""
    with running_api_server(airflow_home) as server:
        yield server


@pytest.fixture(scope="session")
def dag_tests(airflow_home: AirflowHome) -> DagTests:
    """Run the three DAGs once with ``airflow dags test`` (the plugin loaded)."""
    offline_spool = airflow_home.directory / "offline-spool"
    results = {
        "interlock_ok": airflow_home.dags_test("interlock_ok"),
        "interlock_fail": airflow_home.dags_test("interlock_fail"),
        "interlock_offline": airflow_home.dags_test(
            "interlock_offline",
            environ={
                "INTERLOCK_NATS_URL": f"nats://127.0.0.1:{free_port()}",  # nothing there
                "INTERLOCK_SPOOL_DIR": str(offline_spool),
            },
        ),
    }
    return DagTests(results=results, offline_spool=offline_spool)
