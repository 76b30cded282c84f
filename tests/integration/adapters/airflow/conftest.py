"""Session fixtures of the Airflow adapter's tests: real Airflow 3, its API server, DAG runs.

Everything Airflow costs is paid once per session (see ``airflow_env.py``): the
virtualenv (cached between sessions), ``airflow db migrate`` and ``dags reserialize``,
one ``airflow api-server``, and three ``airflow dags test`` runs made with the listener
plugin loaded — ``interlock_ok`` and ``interlock_fail`` publishing to a JetStream server
of the session, ``interlock_offline`` with NATS down (its events go to a spool). Tests
read what those runs left; none starts another Airflow process. ``airflow_nats``,
``airflow_home`` and ``airflow_api`` are in ``tests/conftest.py``, shared with the
executor contract suite (``tests/contract/``); Airflow 2's fixtures are in
``v2/conftest.py``.
"""

from __future__ import annotations

import pytest

from harness.ports import free_port
from integration.adapters.airflow.airflow_env import AirflowHome, DagTests


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
