"""The listener plugin inside real Airflow 2.10 (``airflow dags test --use-executor``).

The runs are made once per session (``conftest.py``): ``interlock_ok`` (extract → load)
and ``interlock_fail`` (a task raising ``ValueError``). Each task runs in its own
``airflow tasks run --local`` process, where Airflow 2 calls the task-instance hooks; the
DAG-run hooks are called by ``dags test`` itself.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from harness.nats import stored_events
from integration.adapters.airflow.airflow_env import AirflowHome, DagTests
from interlock.adapters.airflow._events import (
    DagRunChange,
    TaskInstanceChange,
    dag_run_event,
    task_instance_event,
)
from interlock.sdk import Event

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _of(events: list[Event], dag_id: str) -> list[Event]:
    """The plugin's events of ``dag_id`` (the bridge's tests publish into the same stream)."""
    return [
        event
        for event in events
        if event.payload.get("dag_id") == dag_id and event.source == "adapter.airflow.listener"
    ]


def _names(events: list[Event]) -> list[tuple[str, str]]:
    return sorted((event.event, event.resource["id"]) for event in events)


def _time(value: object) -> datetime:
    assert isinstance(value, str), value
    return datetime.fromisoformat(value)


def _output(dag_tests: DagTests, dag_id: str) -> str:
    result = dag_tests.results[dag_id]
    return f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_the_plugin_is_loaded_from_the_entry_point(airflow2_home: AirflowHome) -> None:
    result = airflow2_home.run("plugins", "--output", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "interlock.adapters.airflow.listener" in result.stdout
    version = airflow2_home.run("version")
    assert version.stdout.strip().startswith("2.10."), version.stdout


def test_a_successful_run_publishes_task_and_dag_run_events(
    airflow2_dag_tests: DagTests, airflow2_nats: str
) -> None:
    dag_tests = airflow2_dag_tests
    assert dag_tests.results["interlock_ok"].returncode == 0, _output(dag_tests, "interlock_ok")
    events = _of(stored_events(airflow2_nats, expected=5), "interlock_ok")

    # Airflow 2.10's `dags test` calls no on_dag_run_running either.
    assert _names(events) == [
        ("airflow.dag_run.succeeded", "airflow.interlock_ok"),
        ("airflow.task_instance.running", "airflow.interlock_ok.extract"),
        ("airflow.task_instance.running", "airflow.interlock_ok.load"),
        ("airflow.task_instance.succeeded", "airflow.interlock_ok.extract"),
        ("airflow.task_instance.succeeded", "airflow.interlock_ok.load"),
    ], _output(dag_tests, "interlock_ok")
    run_ids = {event.payload["run_id"] for event in events}
    assert len(run_ids) == 1
    for event in events:
        assert event.source == "adapter.airflow.listener"
        assert event.resource["dag_id"] == "interlock_ok"
        # Airflow 2 runs always have a logical date (execution_date).
        _time(event.payload["logical_date"])
        _time(event.payload["start_date"])
    for event in events:
        if event.event.startswith("airflow.task_instance."):
            assert event.resource["task_id"] == event.payload["task_id"]
            assert event.related == [{"id": "airflow.interlock_ok", "role": "dag"}]
            assert event.payload["try_number"] == 1
            assert event.payload["map_index"] == -1
        if event.event.endswith(".running"):
            assert event.occurred == _time(event.payload["start_date"])
    finished = [event for event in events if event.event.endswith(".succeeded")]
    for event in finished:
        start, end = _time(event.payload["start_date"]), _time(event.payload["end_date"])
        assert event.payload["duration"] == pytest.approx((end - start).total_seconds())
        assert event.occurred == end
        assert "error" not in event.payload
    dag_run = next(event for event in events if event.event == "airflow.dag_run.succeeded")
    assert dag_run.payload["state"] == "success"
    assert dag_run.payload["run_type"] == "manual"


def test_event_ids_are_deterministic(airflow2_dag_tests: DagTests, airflow2_nats: str) -> None:
    """Each id is recomputed from the fields of its change: what the REST bridge does."""
    events = _of(stored_events(airflow2_nats, expected=5), "interlock_ok")
    assert len(events) == 5
    for event in events:
        state = event.event.rsplit(".", 1)[1]
        payload = event.payload
        common = {
            "dag_id": payload["dag_id"],
            "run_id": payload["run_id"],
            "state": state,
            "airflow_state": payload["state"],
            "start_date": _time(payload["start_date"]),
        }
        if event.event.startswith("airflow.dag_run."):
            rebuilt = dag_run_event(DagRunChange(**common))
        else:
            rebuilt = task_instance_event(
                TaskInstanceChange(
                    task_id=payload["task_id"],
                    try_number=payload["try_number"],
                    map_index=payload["map_index"],
                    **common,
                )
            )
        assert rebuilt.id == event.id, event.event


def test_a_failed_task_publishes_failed_events_with_the_error(
    airflow2_dag_tests: DagTests, airflow2_nats: str
) -> None:
    dag_tests = airflow2_dag_tests
    assert dag_tests.results["interlock_fail"].returncode != 0  # the DAG failed, as meant
    events = _of(stored_events(airflow2_nats, expected=8), "interlock_fail")

    assert _names(events) == [
        ("airflow.dag_run.failed", "airflow.interlock_fail"),
        ("airflow.task_instance.failed", "airflow.interlock_fail.boom"),
        ("airflow.task_instance.running", "airflow.interlock_fail.boom"),
    ], _output(dag_tests, "interlock_fail")
    task = next(event for event in events if event.event == "airflow.task_instance.failed")
    # 2.10's on_task_instance_failed passes the exception (2.8 and 2.9 pass none).
    assert task.payload["error"] == "ValueError: bad row 17 in sales.csv"
    assert task.payload["state"] == "failed"
    assert task.payload["try_number"] == 1
    assert task.payload["duration"] >= 0
    dag_run = next(event for event in events if event.event == "airflow.dag_run.failed")
    assert dag_run.payload["state"] == "failed"
    assert dag_run.payload["error"] == "task_failure"  # Airflow's reason for the run
