"""Session fixtures of the Airflow 2 tests: real Airflow 2.10, its webserver, DAG runs.

As for Airflow 3 (``../conftest.py``), everything is paid once per session: the
virtualenv (``tests/envs/airflow2``, cached under ``.cache/envs/airflow2-<hash>``),
``airflow db migrate`` (SQLite), ``dags reserialize``, ``airflow users create`` (the
``/api/v1`` basic-auth user), one ``airflow webserver``, and two ``airflow dags test
--use-executor`` runs with the listener plugin loaded (each task in its own ``airflow
tasks run`` process, as on a worker), publishing to a JetStream server of their own (so
the Airflow 3 tests' counts are not disturbed). And Airflow 2.8, the oldest supported:
its own cached virtualenv, ``db migrate`` and one ``airflow dags test`` of the failing
DAG, for the plugin's variant of the failed-task hook without ``error``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.nats import init_streams, running_nats_server
from integration.adapters.airflow.airflow_env import (
    AIRFLOW2,
    AIRFLOW2_8,
    AirflowHome,
    ApiServer,
    DagTests,
    airflow_virtualenv,
    running_api_server,
)


@pytest.fixture(scope="session")
def airflow2_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JetStream server for the Airflow 2 session."""
    with running_nats_server(tmp_path_factory.mktemp("airflow2-nats")) as server:
        init_streams(server.url)
        yield server.url


@pytest.fixture(scope="session")
def airflow2_home(tmp_path_factory: pytest.TempPathFactory, airflow2_nats: str) -> AirflowHome:
    """A migrated Airflow 2 ``AIRFLOW_HOME`` with its DAGs and the test user."""
    home = AirflowHome(
        airflow_virtualenv(AIRFLOW2),
        tmp_path_factory.mktemp("airflow2-home"),
        airflow2_nats,
        AIRFLOW2,
    )
    home.prepare()
    return home


@pytest.fixture(scope="session")
def airflow2_api(airflow2_home: AirflowHome) -> Iterator[ApiServer]:
    """``airflow webserver`` for the session (``/api/v1``, user ``interlock``, role Admin)."""
    with running_api_server(airflow2_home) as server:
        yield server


@pytest.fixture(scope="session")
def airflow2_dag_tests(airflow2_home: AirflowHome) -> DagTests:
    """Run ``interlock_ok`` and ``interlock_fail`` once (the plugin loaded)."""
    results = {
        dag_id: airflow2_home.dags_test(dag_id) for dag_id in ("interlock_ok", "interlock_fail")
    }
    return DagTests(results=results)


@pytest.fixture(scope="session")
def airflow2_8_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DagTests, str]]:
    """Airflow 2.8: ``airflow dags test interlock_fail`` once; its result and NATS URL."""
    directory = tmp_path_factory.mktemp("airflow2.8")
    with running_nats_server(directory / "nats") as server:
        init_streams(server.url)
        home = AirflowHome(
            airflow_virtualenv(AIRFLOW2_8), directory / "home", server.url, AIRFLOW2_8
        )
        home.check("db", "migrate")
        result = home.dags_test("interlock_fail")
        yield DagTests(results={"interlock_fail": result}), server.url
