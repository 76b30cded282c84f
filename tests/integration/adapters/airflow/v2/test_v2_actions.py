"""The Airflow executors with ``api_version = "v1"`` against a real Airflow 2.10 webserver.

Each test builds an :class:`ActionRequest` as the dispatcher does and calls ``execute``;
the DAG ``interlock_api`` is only triggered (no scheduler runs here, so its runs stay
queued), paused and unpaused.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from integration.adapters.airflow.airflow_env import PASSWORD, USERNAME, ApiServer, api_request
from interlock.adapters.airflow.actions import (
    PauseDagExecutor,
    TriggerDagExecutor,
    UnpauseDagExecutor,
)
from interlock.sdk.executors import ActionFailed, ActionRequest, ExecutorContext

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAG = "interlock_api"


def _request(kind: str, action: dict[str, Any], *, key: uuid.UUID | None = None) -> ActionRequest:
    return ActionRequest(
        idempotency_key=key or uuid.uuid4(),
        firing_id=uuid.uuid4(),
        rule="airflow2-test",
        kind=kind,
        action={"action": kind, **action},
        attempt=1,
    )


def _environ(server: ApiServer) -> dict[str, str]:
    return {
        "INTERLOCK_AIRFLOW_URL": server.url,
        "INTERLOCK_AIRFLOW_API_VERSION": "v1",
        "INTERLOCK_AIRFLOW_USERNAME": USERNAME,
        "INTERLOCK_AIRFLOW_PASSWORD": PASSWORD,
    }


async def test_trigger_starts_one_run_with_the_conf_even_when_retried(
    airflow2_api: ApiServer,
) -> None:
    executor = TriggerDagExecutor(ExecutorContext(environ=_environ(airflow2_api)))
    key = uuid.uuid4()
    conf = {"day": "2026-11-24", "tables": ["sales", "fx"], "full": True}
    try:
        first = await executor.execute(
            _request(
                "airflow_trigger_dag", {"dag_id": DAG, "conf": conf, "note": "from a rule"}, key=key
            )
        )
        retried = await executor.execute(
            _request("airflow_trigger_dag", {"dag_id": DAG, "conf": conf}, key=key)
        )
    finally:
        await executor.close()
    run_id = f"interlock__{key}"
    assert first.data == {"dag_id": DAG, "dag_run_id": run_id, "created": True, "state": "queued"}
    assert retried.data["created"] is False
    assert retried.data["dag_run_id"] == run_id
    assert "already existed" in retried.detail

    run = api_request(airflow2_api, "GET", f"/api/v1/dags/{DAG}/dagRuns/{run_id}")
    assert run["conf"] == conf
    assert run["note"] == "from a rule"
    assert run["logical_date"] is not None  # v1 fills in the trigger time
    runs = api_request(airflow2_api, "GET", f"/api/v1/dags/{DAG}/dagRuns?limit=100")
    assert isinstance(runs["dag_runs"], list)
    assert [r["dag_run_id"] for r in runs["dag_runs"] if r["dag_run_id"] == run_id] == [run_id]


async def test_pause_and_unpause_a_dag(airflow2_api: ApiServer) -> None:
    connection = {
        "url": airflow2_api.url,
        "api_version": "v1",
        "username": USERNAME,
        "password": PASSWORD,
    }
    pause = PauseDagExecutor(ExecutorContext(environ={}))
    unpause = UnpauseDagExecutor(ExecutorContext(environ={}))
    try:
        resumed = await unpause.execute(
            _request("airflow_unpause_dag", {"dag_id": DAG, **connection})
        )
        assert resumed.data == {"dag_id": DAG, "is_paused": False}
        assert api_request(airflow2_api, "GET", f"/api/v1/dags/{DAG}")["is_paused"] is False

        paused = await pause.execute(_request("airflow_pause_dag", {"dag_id": DAG, **connection}))
        assert paused.data == {"dag_id": DAG, "is_paused": True}
        assert api_request(airflow2_api, "GET", f"/api/v1/dags/{DAG}")["is_paused"] is True
    finally:
        await pause.close()
        await unpause.close()
        api_request(airflow2_api, "PATCH", f"/api/v1/dags/{DAG}", {"is_paused": True})


async def test_an_unknown_dag_fails_at_once(airflow2_api: ApiServer) -> None:
    executor = TriggerDagExecutor(ExecutorContext(environ=_environ(airflow2_api)))
    try:
        with pytest.raises(ActionFailed) as caught:
            await executor.execute(_request("airflow_trigger_dag", {"dag_id": "no_such_dag"}))
    finally:
        await executor.close()
    assert caught.value.retryable is False
    assert "no_such_dag" in str(caught.value)
    assert "HTTP 404" in str(caught.value)


async def test_a_wrong_password_fails_at_once_and_is_never_shown(airflow2_api: ApiServer) -> None:
    environ = {**_environ(airflow2_api), "INTERLOCK_AIRFLOW_PASSWORD": "wrong-password-42"}
    executor = PauseDagExecutor(ExecutorContext(environ=environ))
    try:
        with pytest.raises(ActionFailed) as caught:
            await executor.execute(_request("airflow_pause_dag", {"dag_id": DAG}))
    finally:
        await executor.close()
    assert caught.value.retryable is False
    assert "HTTP 401" in str(caught.value)
    assert "wrong-password-42" not in str(caught.value)
