"""The listener plugin inside real Airflow 2.8 (``airflow dags test``, tasks in-process).

Airflow 2.8's listener spec for ``on_task_instance_failed`` has no ``error`` (added in
2.10); pluggy refuses an implementation naming an argument its spec lacks, so the
listener registers a variant without it. This test is that variant running: Airflow
loads the plugin, and a failing task publishes its events, with ``error: null``.
"""

from __future__ import annotations

import pytest

from harness.nats import stored_events
from integration.adapters.airflow.airflow_env import DagTests

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_a_failed_task_publishes_its_events_without_the_error(
    airflow2_8_run: tuple[DagTests, str],
) -> None:
    dag_tests, nats_url = airflow2_8_run
    result = dag_tests.results["interlock_fail"]
    output = f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode != 0, output  # the DAG failed, as meant
    assert "interlock:" not in result.stdout + result.stderr, output  # no hook logged a failure
    events = [
        event
        for event in stored_events(nats_url, expected=3)
        if event.source == "adapter.airflow.listener"
    ]

    assert sorted((event.event, event.resource["id"]) for event in events) == [
        ("airflow.dag_run.failed", "airflow.interlock_fail"),
        ("airflow.task_instance.failed", "airflow.interlock_fail.boom"),
        ("airflow.task_instance.running", "airflow.interlock_fail.boom"),
    ], output
    task = next(event for event in events if event.event == "airflow.task_instance.failed")
    assert task.payload["error"] is None  # 2.8 does not give the hook the exception
    assert task.payload["state"] == "failed"
    assert task.payload["try_number"] == 1
    assert task.payload["logical_date"] is not None
    # In-process `dags test` (2.8 has no --use-executor) records no task start or end.
    assert task.payload["start_date"] is None
    dag_run = next(event for event in events if event.event == "airflow.dag_run.failed")
    assert dag_run.payload["error"] == "task_failure"
    assert {event.payload["run_id"] for event in events} == {dag_run.payload["run_id"]}
