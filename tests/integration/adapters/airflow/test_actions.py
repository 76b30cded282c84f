"""The Airflow executors against a real ``airflow api-server``, through the executor contract.

Each test builds an :class:`ActionRequest` as the dispatcher does and calls
``execute``; the DAG ``interlock_api`` is only triggered (no scheduler runs here, so its
runs stay queued), paused and unpaused.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from harness.ports import free_port
from integration.adapters.airflow.airflow_env import (
    PASSWORD,
    USERNAME,
    ApiServer,
    api_request,
)
from interlock.adapters.airflow.actions import (
    PauseDagExecutor,
    TriggerDagExecutor,
    UnpauseDagExecutor,
    run_id_for,
)
from interlock.sdk.executors import ActionFailed, ActionRequest, ExecutorContext

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAG = "interlock_api"


def _request(kind: str, action: dict[str, Any], *, key: uuid.UUID | None = None) -> ActionRequest:
    return ActionRequest(
        idempotency_key=key or uuid.uuid4(),
        firing_id=uuid.uuid4(),
        rule="airflow-test",
        kind=kind,
        action={"action": kind, **action},
        attempt=1,
    )


def _environ(server: ApiServer) -> dict[str, str]:
    return {
        "INTERLOCK_AIRFLOW_URL": server.url,
        "INTERLOCK_AIRFLOW_USERNAME": USERNAME,
        "INTERLOCK_AIRFLOW_PASSWORD": PASSWORD,
    }


async def test_trigger_starts_one_run_with_the_conf_even_when_retried(
    airflow_api: ApiServer,
) -> None:
    executor = TriggerDagExecutor(ExecutorContext(environ=_environ(airflow_api)))
    key = uuid.uuid4()
    conf = {"day": "2026-11-24", "tables": ["sales", "fx"], "full": True}
    try:
        first = await executor.execute(
            _request("airflow_trigger_dag", {"dag_id": DAG, "conf": conf}, key=key)
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

    run = api_request(airflow_api, "GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}")
    assert run["conf"] == conf
    assert run["logical_date"] is None
    runs = api_request(airflow_api, "GET", f"/api/v2/dags/{DAG}/dagRuns?limit=100")
    assert isinstance(runs["dag_runs"], list)
    assert [r["dag_run_id"] for r in runs["dag_runs"] if r["dag_run_id"] == run_id] == [run_id]


async def test_the_run_id_is_the_same_on_every_attempt() -> None:
    key = uuid.uuid4()
    first = _request("airflow_trigger_dag", {"dag_id": DAG}, key=key)
    later = _request("airflow_trigger_dag", {"dag_id": DAG}, key=key)
    assert run_id_for(first) == run_id_for(later) == f"interlock__{key}"


async def test_pause_and_unpause_a_dag(airflow_api: ApiServer) -> None:
    connection = {"url": airflow_api.url, "username": USERNAME, "password": PASSWORD}
    pause = PauseDagExecutor(ExecutorContext(environ={}))
    unpause = UnpauseDagExecutor(ExecutorContext(environ={}))
    try:
        paused = await pause.execute(_request("airflow_pause_dag", {"dag_id": DAG, **connection}))
        assert paused.data == {"dag_id": DAG, "is_paused": True}
        assert api_request(airflow_api, "GET", f"/api/v2/dags/{DAG}")["is_paused"] is True

        resumed = await unpause.execute(
            _request("airflow_unpause_dag", {"dag_id": DAG, **connection})
        )
        assert resumed.data == {"dag_id": DAG, "is_paused": False}
        assert api_request(airflow_api, "GET", f"/api/v2/dags/{DAG}")["is_paused"] is False
    finally:
        await pause.close()
        await unpause.close()
        api_request(airflow_api, "PATCH", f"/api/v2/dags/{DAG}", {"is_paused": True})


async def test_an_unknown_dag_fails_at_once(airflow_api: ApiServer) -> None:
    executor = TriggerDagExecutor(ExecutorContext(environ=_environ(airflow_api)))
    try:
        with pytest.raises(ActionFailed) as caught:
            await executor.execute(_request("airflow_trigger_dag", {"dag_id": "no_such_dag"}))
    finally:
        await executor.close()
    assert caught.value.retryable is False
    assert "no_such_dag" in str(caught.value)
    assert "HTTP 404" in str(caught.value)


async def test_a_wrong_password_fails_at_once_and_is_never_shown(airflow_api: ApiServer) -> None:
    environ = {**_environ(airflow_api), "INTERLOCK_AIRFLOW_PASSWORD": "wrong-password-42"}
    executor = PauseDagExecutor(ExecutorContext(environ=environ))
    try:
        with pytest.raises(ActionFailed) as caught:
            await executor.execute(_request("airflow_pause_dag", {"dag_id": DAG}))
    finally:
        await executor.close()
    assert caught.value.retryable is False
    assert "HTTP 401" in str(caught.value)
    assert "wrong-password-42" not in str(caught.value)


async def test_an_unreachable_airflow_fails_retryably_without_the_token() -> None:
    environ = {
        "INTERLOCK_AIRFLOW_URL": f"http://127.0.0.1:{free_port()}",
        "INTERLOCK_AIRFLOW_TOKEN": "very-secret-token",
    }
    executor = TriggerDagExecutor(ExecutorContext(environ=environ))
    try:
        with pytest.raises(ActionFailed) as caught:
            await executor.execute(_request("airflow_trigger_dag", {"dag_id": DAG}))
    finally:
        await executor.close()
    assert caught.value.retryable is True
    assert "cannot connect" in str(caught.value)
    assert "very-secret-token" not in str(caught.value)


async def test_a_bad_action_fails_at_once_naming_the_field() -> None:
    executor = TriggerDagExecutor(ExecutorContext(environ={"INTERLOCK_AIRFLOW_TOKEN": "t"}))
    try:
        with pytest.raises(ActionFailed, match="unknown field 'dag'") as unknown:
            await executor.execute(_request("airflow_trigger_dag", {"dag": DAG}))
        with pytest.raises(ActionFailed, match="dag_id is required"):
            await executor.execute(_request("airflow_trigger_dag", {"conf": {}}))
        with pytest.raises(ActionFailed, match="url: is required") as no_url:
            await executor.execute(_request("airflow_trigger_dag", {"dag_id": DAG}))
    finally:
        await executor.close()
    assert unknown.value.retryable is False
    assert "INTERLOCK_AIRFLOW_URL" in str(no_url.value)
