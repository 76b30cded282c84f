"""The listener plugin inside real Airflow (``airflow dags test``): events in JetStream.

The runs are made once per session (``conftest.py``): ``interlock_ok`` (extract → load),
``interlock_fail`` (a task raising ``ValueError``) and ``interlock_offline`` (run while
NATS is down).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from harness.nats import stored_events
from integration.adapters.airflow.airflow_env import DagTests
from interlock.adapters.airflow._events import (
    DagRunChange,
    TaskInstanceChange,
    dag_run_event,
    task_instance_event,
)
from interlock.sdk import Event, NatsOptions, PublisherConfig, SyncPublisher

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


def test_a_successful_run_publishes_task_and_dag_run_events(
    dag_tests: DagTests, airflow_nats: str
) -> None:
    assert dag_tests.results["interlock_ok"].returncode == 0, _output(dag_tests, "interlock_ok")
    events = _of(stored_events(airflow_nats, expected=5), "interlock_ok")

    assert _names(events) == [
        ("airflow.dag_run.succeeded", "airflow.interlock_ok"),
        ("airflow.task_instance.running", "airflow.interlock_ok.extract"),
        ("airflow.task_instance.running", "airflow.interlock_ok.load"),
        ("airflow.task_instance.succeeded", "airflow.interlock_ok.extract"),
        ("airflow.task_instance.succeeded", "airflow.interlock_ok.load"),
    ]
    run_ids = {event.payload["run_id"] for event in events}
    assert len(run_ids) == 1
    for event in events:
        assert event.source == "adapter.airflow.listener"
        assert event.resource["dag_id"] == "interlock_ok"
        assert event.payload["logical_date"] is not None
        _time(event.payload["logical_date"])
    for event in events:
        if event.event.startswith("airflow.task_instance."):
            assert event.resource["task_id"] == event.payload["task_id"]
            assert event.related == [{"id": "airflow.interlock_ok", "role": "dag"}]
            assert event.payload["try_number"] == 1
            assert event.payload["map_index"] == -1
    finished = [event for event in events if event.event.endswith(".succeeded")]
    for event in finished:
        start, end = _time(event.payload["start_date"]), _time(event.payload["end_date"])
        assert event.payload["duration"] == pytest.approx((end - start).total_seconds())
        assert event.occurred == end
        assert "error" not in event.payload
    dag_run = next(event for event in events if event.event == "airflow.dag_run.succeeded")
    assert dag_run.payload["state"] == "success"
    assert dag_run.payload["run_type"] == "manual"


def test_event_ids_are_deterministic(dag_tests: DagTests, airflow_nats: str) -> None:
    """Each id is recomputed from the fields of its change: what the REST bridge does."""
    events = _of(stored_events(airflow_nats, expected=5), "interlock_ok")
    assert events
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
    dag_tests: DagTests, airflow_nats: str
) -> None:
    assert dag_tests.results["interlock_fail"].returncode != 0  # the DAG failed, as meant
    events = _of(stored_events(airflow_nats, expected=8), "interlock_fail")

    assert _names(events) == [
        ("airflow.dag_run.failed", "airflow.interlock_fail"),
        ("airflow.task_instance.failed", "airflow.interlock_fail.boom"),
        ("airflow.task_instance.running", "airflow.interlock_fail.boom"),
    ], _output(dag_tests, "interlock_fail")
    task = next(event for event in events if event.event == "airflow.task_instance.failed")
    assert task.payload["error"] == "ValueError: bad row 17 in sales.csv"
    assert task.payload["state"] == "failed"
    assert task.payload["try_number"] == 1
    assert task.payload["duration"] >= 0
    dag_run = next(event for event in events if event.event == "airflow.dag_run.failed")
    assert dag_run.payload["state"] == "failed"
    assert dag_run.payload["error"] == "task_failure"  # Airflow's reason for the run


def test_with_nats_down_the_task_succeeds_and_its_events_are_spooled_then_sent(
    dag_tests: DagTests, airflow_nats: str
) -> None:
    assert dag_tests.results["interlock_offline"].returncode == 0, _output(
        dag_tests, "interlock_offline"
    )
    assert not _of(stored_events(airflow_nats), "interlock_offline")
    spooled = [path for path in dag_tests.offline_spool.rglob("*") if path.is_file()]
    assert any(path.stat().st_size > 0 for path in spooled), spooled

    # The next producer that opens the spool (here this test) sends what Airflow left.
    config = PublisherConfig(
        nats=NatsOptions(servers=(airflow_nats,)), spool_dir=dag_tests.offline_spool
    )
    with SyncPublisher(config) as publisher:
        assert publisher.flush(timeout=30)

    events = _of(stored_events(airflow_nats, expected=11), "interlock_offline")
    assert _names(events) == [
        ("airflow.dag_run.succeeded", "airflow.interlock_offline"),
        ("airflow.task_instance.running", "airflow.interlock_offline.work"),
        ("airflow.task_instance.succeeded", "airflow.interlock_offline.work"),
    ]
