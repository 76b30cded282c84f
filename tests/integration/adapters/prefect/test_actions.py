"""The Prefect executors through the executor contract, against a real Prefect server.

Each test builds an :class:`ActionRequest` as the dispatcher would (templates already
rendered) and calls ``execute``; the outcome is read back from Prefect's REST API.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from integration.adapters.prefect.prefect_api import PrefectApi
from integration.adapters.prefect.prefect_server import AUTH_STRING
from interlock.adapters.prefect import PrefectConnection
from interlock.adapters.prefect.actions import (
    PauseWorkQueueExecutor,
    PrefectExecutor,
    ResumeWorkQueueExecutor,
    RunDeploymentExecutor,
)
from interlock.sdk.executors import ActionFailed, ActionRequest, ExecutorContext

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def request(
    kind: str, key: uuid.UUID | None = None, attempt: int = 1, **action: Any
) -> ActionRequest:
    return ActionRequest(
        idempotency_key=key or uuid.uuid4(),
        firing_id=uuid.uuid4(),
        rule="prefect-test",
        kind=kind,
        action={"action": kind, **action},
        attempt=attempt,
    )


@pytest.fixture
def environ(prefect: PrefectConnection) -> dict[str, str]:
    return {
        "INTERLOCK_PREFECT_API_URL": prefect.api_url,
        "INTERLOCK_PREFECT_AUTH_STRING": AUTH_STRING,
    }


@pytest.fixture
async def api(prefect: PrefectConnection) -> AsyncIterator[PrefectApi]:
    with PrefectApi(prefect) as client:
        yield client


async def call(function: Callable[..., Any], *args: Any) -> Any:
    """A blocking REST helper, off the event loop."""
    return await asyncio.to_thread(function, *args)


async def test_run_deployment_by_name_creates_one_flow_run_per_idempotency_key(
    api: PrefectApi, environ: dict[str, str]
) -> None:
    flow = f"etl-{uuid.uuid4().hex[:8]}"
    deployment_id = await call(api.deployment, flow, "daily", {"region": "eu"})
    executor = RunDeploymentExecutor(ExecutorContext(environ=environ))
    key = uuid.uuid4()
    parameters = {"date": "2026-11-24", "rows": 3}
    try:
        name = f"{flow}/daily"
        first = await executor.execute(
            request("prefect_run_deployment", key, deployment=name, parameters=parameters)
        )
        retry = await executor.execute(
            request("prefect_run_deployment", key, 2, deployment=name, parameters=parameters)
        )
    finally:
        await executor.close()
    assert first.data["created"] is True
    assert retry.data["created"] is False
    assert retry.data["flow_run_id"] == first.data["flow_run_id"]
    assert "created by an earlier attempt" in retry.detail
    runs = await call(api.flow_runs, deployment_id)
    assert [run["id"] for run in runs] == [first.data["flow_run_id"]]
    (run,) = runs
    assert run["parameters"] == {"region": "eu", "date": "2026-11-24", "rows": 3}
    assert run["idempotency_key"] == str(key)
    assert run["state"]["type"] == "SCHEDULED"


async def test_run_deployment_by_id_and_a_new_key_creates_another_run(
    api: PrefectApi, environ: dict[str, str]
) -> None:
    deployment_id = await call(api.deployment, f"etl-{uuid.uuid4().hex[:8]}", "hourly", {})
    executor = RunDeploymentExecutor(ExecutorContext(environ=environ))
    try:
        for _ in range(2):
            await executor.execute(
                request("prefect_run_deployment", deployment=deployment_id, parameters={"n": 1})
            )
    finally:
        await executor.close()
    runs = await call(api.flow_runs, deployment_id)
    assert len(runs) == 2
    assert all(run["parameters"] == {"n": 1} for run in runs)


async def test_pause_and_resume_a_work_queue_of_a_work_pool(
    api: PrefectApi, environ: dict[str, str]
) -> None:
    pool, queue = f"pool-{uuid.uuid4().hex[:8]}", "nightly"
    await call(api.pool_queue, pool, queue)
    pause, resume = (
        PauseWorkQueueExecutor(ExecutorContext(environ=environ)),
        ResumeWorkQueueExecutor(ExecutorContext(environ=environ)),
    )
    try:
        result = await pause.execute(
            request("prefect_pause_work_queue", queue=queue, work_pool=pool)
        )
        assert result.data["paused"] is True
        assert (await call(api.queue_in_pool, pool, queue))["is_paused"] is True
        await resume.execute(request("prefect_resume_work_queue", queue=queue, work_pool=pool))
        assert (await call(api.queue_in_pool, pool, queue))["is_paused"] is False
    finally:
        await pause.close()
        await resume.close()


async def test_pause_and_resume_a_work_queue_by_name_alone(
    api: PrefectApi, environ: dict[str, str]
) -> None:
    queue = f"queue-{uuid.uuid4().hex[:8]}"
    created = await call(api.default_pool_queue, queue)
    pause, resume = (
        PauseWorkQueueExecutor(ExecutorContext(environ=environ)),
        ResumeWorkQueueExecutor(ExecutorContext(environ=environ)),
    )
    try:
        result = await pause.execute(request("prefect_pause_work_queue", queue=queue))
        assert result.data["queue_id"] == created["id"]
        assert (await call(api.queue_by_name, queue))["is_paused"] is True
        await resume.execute(request("prefect_resume_work_queue", queue=queue))
        assert (await call(api.queue_by_name, queue))["is_paused"] is False
    finally:
        await pause.close()
        await resume.close()


async def test_action_fields_override_the_environment(
    api: PrefectApi, prefect: PrefectConnection
) -> None:
    pool, queue = f"pool-{uuid.uuid4().hex[:8]}", "q"
    await call(api.pool_queue, pool, queue)
    executor = PauseWorkQueueExecutor(
        ExecutorContext(
            environ={
                "INTERLOCK_PREFECT_API_URL": "http://127.0.0.1:9/api",
                "INTERLOCK_PREFECT_AUTH_STRING": AUTH_STRING,
            }
        )
    )
    try:
        await executor.execute(
            request(
                "prefect_pause_work_queue", queue=queue, work_pool=pool, api_url=prefect.api_url
            )
        )
    finally:
        await executor.close()
    assert (await call(api.queue_in_pool, pool, queue))["is_paused"] is True


@pytest.mark.parametrize(
    ("make", "action", "match", "retryable"),
    [
        pytest.param(
            RunDeploymentExecutor,
            {"deployment": "no-such-flow/no-such-deployment"},
            r"looking up deployment 'no-such-flow/no-such-deployment' at "
            r"http://127\.0\.0\.1:\d+: HTTP 404",
            False,
            id="unknown-deployment",
        ),
        pytest.param(
            RunDeploymentExecutor,
            {"deployment": "not-a-name"},
            "must be 'flow-name/deployment-name' or a deployment id",
            False,
            id="malformed-deployment",
        ),
        pytest.param(
            PauseWorkQueueExecutor,
            {"queue": "no-such-queue", "work_pool": "no-such-pool"},
            "HTTP 404",
            False,
            id="unknown-pool",
        ),
        pytest.param(PauseWorkQueueExecutor, {}, "queue is required", False, id="no-queue"),
    ],
)
async def test_bad_actions_fail_without_retry(
    environ: dict[str, str],
    make: Callable[..., PrefectExecutor],
    action: dict[str, Any],
    match: str,
    retryable: bool,
) -> None:
    executor = make(ExecutorContext(environ=environ))
    try:
        with pytest.raises(ActionFailed, match=match) as raised:
            await executor.execute(request("prefect_test", **action))  # type: ignore[attr-defined]
    finally:
        await executor.close()
    assert raised.value.retryable is retryable


async def test_refused_credentials_fail_at_once_and_name_no_secret(
    prefect: PrefectConnection,
) -> None:
    executor = RunDeploymentExecutor(
        ExecutorContext(
            environ={
                "INTERLOCK_PREFECT_API_URL": prefect.api_url,
                "INTERLOCK_PREFECT_AUTH_STRING": "interlock:wrong-secret",
            }
        )
    )
    try:
        with pytest.raises(ActionFailed, match="HTTP 401, the credentials were refused") as raised:
            await executor.execute(request("prefect_run_deployment", deployment="a/b"))
    finally:
        await executor.close()
    assert raised.value.retryable is False
    assert "wrong-secret" not in str(raised.value)


async def test_a_server_that_is_down_is_retried() -> None:
    executor = RunDeploymentExecutor(
        ExecutorContext(
            environ={
                "INTERLOCK_PREFECT_API_URL": "http://127.0.0.1:9/api",
                "INTERLOCK_PREFECT_API_KEY": "pnu_secret",
            }
        )
    )
    try:
        with pytest.raises(ActionFailed, match="connection failed") as raised:
            await executor.execute(request("prefect_run_deployment", deployment="a/b"))
    finally:
        await executor.close()
    assert raised.value.retryable is True
    assert "pnu_secret" not in str(raised.value)


async def test_no_api_url_anywhere_is_a_clear_error() -> None:
    executor = RunDeploymentExecutor(ExecutorContext(environ={}))
    try:
        with pytest.raises(ActionFailed, match="INTERLOCK_PREFECT_API_URL") as raised:
            await executor.execute(request("prefect_run_deployment", deployment="a/b"))
    finally:
        await executor.close()
    assert raised.value.retryable is False
