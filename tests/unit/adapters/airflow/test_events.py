"""The Airflow events and options, without Airflow: ids, payloads, parsing the API's items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from typing import Any

import pytest

from interlock.adapters.airflow._events import (
    DagRunChange,
    TaskInstanceChange,
    dag_run_event,
    error_summary,
    state_of,
    task_instance_event,
)
from interlock.adapters.airflow.bridge import AirflowRestAdapter, run_changes, task_changes
from interlock.adapters.base import AdapterConfigError

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
END = START + timedelta(seconds=90)


def _task(state: str = "succeeded", **fields: Any) -> TaskInstanceChange:
    values: dict[str, Any] = {
        "dag_id": "sales",
        "run_id": "manual__1",
        "task_id": "load",
        "state": state,
        "airflow_state": {"succeeded": "success"}.get(state, state),
        "try_number": 1,
        "start_date": START,
        "end_date": END,
        **fields,
    }
    return TaskInstanceChange(**values)


def test_ids_follow_the_identity_of_the_change_only() -> None:
    event = task_instance_event(_task())
    assert event.id == task_instance_event(_task(end_date=END + timedelta(seconds=1))).id
    assert event.id == task_instance_event(_task(error="x")).id
    others = [
        _task(try_number=2),
        _task(map_index=3),
        _task(task_id="extract"),
        _task(run_id="manual__2"),
        _task(state="failed"),
    ]
    assert len({event.id, *(task_instance_event(other).id for other in others)}) == 6
    assert task_instance_event(_task(), instance="prod").id != event.id


def test_a_task_event_names_its_resource_labels_and_timing() -> None:
    event = task_instance_event(_task(state="failed", error="ValueError: bad"), instance="prod")
    assert event.event == "airflow.task_instance.failed"
    assert event.resource == {
        "id": "airflow.sales.load",
        "dag_id": "sales",
        "task_id": "load",
        "instance": "prod",
    }
    assert event.related == [{"id": "airflow.sales", "role": "dag", "instance": "prod"}]
    assert event.occurred == END
    assert event.payload["duration"] == 90.0
    assert event.payload["error"] == "ValueError: bad"


def test_a_cleared_and_rerun_dag_run_gets_new_ids() -> None:
    first = DagRunChange(
        dag_id="sales", run_id="r", state="succeeded", airflow_state="success", start_date=START
    )
    rerun = DagRunChange(
        dag_id="sales", run_id="r", state="succeeded", airflow_state="success", start_date=END
    )
    assert dag_run_event(first).id != dag_run_event(rerun).id
    assert dag_run_event(first).resource == {"id": "airflow.sales", "dag_id": "sales"}


def test_states_and_error_summaries() -> None:
    assert state_of("success") == "succeeded"
    assert state_of("up_for_retry") == "failed"
    assert state_of("queued") is None
    assert state_of(None) is None
    assert error_summary(ValueError("bad\n  row")) == "ValueError: bad row"
    assert error_summary(KeyError()) == "KeyError"
    assert len(error_summary("x" * 5000) or "") == 1000


def test_api_items_become_the_changes_they_went_through() -> None:
    run = {
        "dag_id": "sales",
        "dag_run_id": "manual__1",
        "state": "failed",
        "run_type": "manual",
        "logical_date": None,
        "start_date": "2026-11-24T09:00:00Z",
        "end_date": "2026-11-24T09:01:30Z",
    }
    assert [change.state for change in run_changes(run)] == ["running", "failed"]
    assert run_changes({**run, "state": "queued", "start_date": None}) == []
    assert [change.state for change in run_changes({**run, "start_date": None})] == ["failed"]
    task = {**run, "task_id": "load", "try_number": 2, "map_index": -1, "state": "up_for_retry"}
    changes = task_changes(task)
    assert [(c.state, c.airflow_state, c.try_number) for c in changes] == [
        ("running", "running", 2),
        ("failed", "up_for_retry", 2),
    ]
    assert task_changes({**task, "state": "skipped"}) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "url: is required"),
        ({"url": "airflow:8080"}, "must be an http"),
        ({"url": "http://a", "api_version": "v3"}, "api_version"),
        ({"url": "http://a"}, "give a username and password, or a token"),
        ({"url": "http://a", "username": "u"}, "password: is required"),
        (
            {"url": "http://a", "token": "t", "tokn": "x"},
            "tokn: is not an option of 'airflow.rest'",
        ),
        ({"url": "http://a", "token": "t", "token_env": "T"}, "not both"),
        ({"url": "http://a", "token_env": "INTERLOCK_TEST_UNSET_TOKEN"}, "is not set"),
        ({"url": "http://a", "token": "t", "page_size": 0}, "page_size"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, Any], message: str) -> None:
    with pytest.raises(AdapterConfigError, match=message):
        AirflowRestAdapter.from_options("airflow", options)


def test_the_secret_is_not_in_the_connection_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_TEST_AIRFLOW_PASSWORD", "hunter2-secret")
    adapter = AirflowRestAdapter.from_options(
        "airflow",
        {
            "url": "http://airflow:8080",
            "username": "u",
            "password_env": "INTERLOCK_TEST_AIRFLOW_PASSWORD",
        },
    )
    try:
        assert adapter.client.connection.password == "hunter2-secret"
        assert "hunter2-secret" not in repr(adapter.client.connection)
    finally:
        adapter.close()


def test_the_entry_points_load() -> None:
    actions = {e.name: e for e in entry_points(group="interlock.actions")}
    for kind in ("airflow_trigger_dag", "airflow_pause_dag", "airflow_unpause_dag"):
        assert actions[kind].load().kind == kind
    adapters = {e.name: e for e in entry_points(group="interlock.adapters")}
    assert adapters["airflow.rest"].load() is AirflowRestAdapter
    plugins = {e.name: e.value for e in entry_points(group="airflow.plugins")}
    assert plugins["interlock"] == "interlock.adapters.airflow.plugin:InterlockPlugin"
