"""Named connections against real Airflow 3 and Prefect 3 servers, moto's S3 (issue 20).

A connection is stored with a wrong credential: ``connections test`` says in one line
that the system answered and refused the credentials, without the secret, and the
executor's action fails the same way. The secret is rotated in the store while the
executor lives on (no restart, no new executor): the next call uses it and succeeds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet

from harness.ports import free_port
from integration.adapters.airflow.airflow_env import PASSWORD, USERNAME, ApiServer, api_request
from integration.adapters.prefect.prefect_api import PrefectApi
from integration.adapters.prefect.prefect_server import AUTH_STRING
from integration.adapters.s3_fixtures import CREDENTIALS, REGION, moto_server, moto_url
from interlock.adapters.airflow.actions import TriggerDagExecutor, run_id_for
from interlock.adapters.prefect import PrefectConnection
from interlock.adapters.prefect.actions import RunDeploymentExecutor
from interlock.sdk.executors import ActionFailed, ActionRequest, ExecutorContext
from interlock.service.connections.checks import check
from interlock.service.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

WRONG = "wrong-9d3e-s3cr3t"
__all__ = ["moto_server", "moto_url"]  # fixtures


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[Store]:
    async with Store(sqlite_url, secret_key=Fernet.generate_key()) as store:
        await store.migrate()
        yield store


def request(kind: str, **action: Any) -> ActionRequest:
    return ActionRequest(
        idempotency_key=uuid.uuid4(),
        firing_id=uuid.uuid4(),
        rule="connections-test",
        kind=kind,
        action={"action": "call", "kind": kind, **action},
        attempt=1,
    )


async def test_airflow_rotated_password_is_used_by_the_next_call(
    airflow_api: ApiServer, store: Store
) -> None:
    await store.connections.put(
        "prod-airflow",
        "airflow",
        {"url": airflow_api.url, "username": USERNAME, "password": WRONG},
    )
    refused = await check(await store.connections.resolve("prod-airflow"))
    assert (refused.ok, refused.outcome) == (False, "refused")
    assert refused.detail == (
        f"Airflow at {airflow_api.url} answered but refused the credentials (HTTP 401)"
    )
    executor = TriggerDagExecutor(ExecutorContext(connections=store.connections))
    try:
        with pytest.raises(ActionFailed) as failed:
            await executor.execute(
                request("airflow_trigger_dag", connection="prod-airflow", dag_id="interlock_api")
            )
        assert failed.value.retryable is False
        assert WRONG not in str(failed.value)

        await store.connections.rotate("prod-airflow", {"password": PASSWORD})
        trigger = request("airflow_trigger_dag", connection="prod-airflow", dag_id="interlock_api")
        result = await executor.execute(trigger)
    finally:
        await executor.close()
    assert result.data["created"] is True
    run = await asyncio.to_thread(
        api_request, airflow_api, "GET", f"/api/v2/dags/interlock_api/dagRuns/{run_id_for(trigger)}"
    )
    assert run["dag_run_id"] == run_id_for(trigger)
    accepted = await check(await store.connections.resolve("prod-airflow"))
    assert (accepted.ok, accepted.outcome) == (True, "ok")


async def test_prefect_rotated_auth_string_is_used_by_the_next_call(
    prefect: PrefectConnection, store: Store
) -> None:
    user = AUTH_STRING.partition(":")[0]
    await store.connections.put(
        "prod-prefect", "prefect", {"url": prefect.api_url, "auth_string": f"{user}:{WRONG}"}
    )
    refused = await check(await store.connections.resolve("prod-prefect"))
    assert (refused.ok, refused.outcome) == (False, "refused")
    assert "Prefect at http://127.0.0.1:" in refused.detail
    assert WRONG not in refused.detail
    with PrefectApi(prefect) as api:
        flow = f"etl-{uuid.uuid4().hex[:8]}"
        deployment_id = await asyncio.to_thread(api.deployment, flow, "daily", {"region": "eu"})
        executor = RunDeploymentExecutor(ExecutorContext(connections=store.connections))
        try:
            with pytest.raises(ActionFailed, match="HTTP 401, the credentials were refused") as no:
                await executor.execute(
                    request(
                        "prefect_run_deployment",
                        connection="prod-prefect",
                        deployment=f"{flow}/daily",
                    )
                )
            assert WRONG not in str(no.value)
            await store.connections.rotate("prod-prefect", {"auth_string": AUTH_STRING})
            result = await executor.execute(
                request(
                    "prefect_run_deployment",
                    connection="prod-prefect",
                    deployment=f"{flow}/daily",
                    parameters={"region": "us"},
                )
            )
        finally:
            await executor.close()
        runs = await asyncio.to_thread(api.flow_runs, deployment_id)
    assert [run["id"] for run in runs] == [result.data["flow_run_id"]]
    accepted = await check(await store.connections.resolve("prod-prefect"))
    assert (accepted.ok, accepted.outcome) == (True, "ok")


async def test_a_connection_of_another_kind_is_refused_by_name(store: Store) -> None:
    await store.connections.put("tickets", "http", {"base_url": "http://127.0.0.1:9"})
    executor = TriggerDagExecutor(ExecutorContext(connections=store.connections))
    with pytest.raises(ActionFailed, match="connection 'tickets' is of kind http, not airflow"):
        await executor.execute(request("airflow_trigger_dag", connection="tickets", dag_id="x"))
    with pytest.raises(ActionFailed, match="connection 'nope' does not exist"):
        await executor.execute(request("airflow_trigger_dag", connection="nope", dag_id="x"))


async def test_s3_and_database_connections_are_checked(
    moto_url: str, store: Store, sqlite_url: str
) -> None:
    s3_fields = {
        "endpoint_url": moto_url,
        "region": REGION,
        "access_key_id": CREDENTIALS["aws_access_key_id"],
        "secret_access_key": CREDENTIALS["aws_secret_access_key"],
    }
    await store.connections.put("landing-s3", "s3", s3_fields)
    answered = await check(await store.connections.resolve("landing-s3"))
    assert (answered.ok, answered.detail) == (
        True,
        f"{moto_url} answered and accepted the credentials",
    )
    closed = f"http://127.0.0.1:{free_port()}"
    await store.connections.put("gone-s3", "s3", {**s3_fields, "endpoint_url": closed})
    gone = await check(await store.connections.resolve("gone-s3"), timeout=2)
    assert (gone.ok, gone.outcome, gone.detail) == (
        False,
        "unreachable",
        f"{closed} does not answer",
    )

    await store.connections.put("local-db", "database", {"url": sqlite_url})
    assert (await check(await store.connections.resolve("local-db"))).ok
    port = free_port()
    await store.connections.put(
        "warehouse", "database", {"url": f"postgresql://etl:{WRONG}@127.0.0.1:{port}/w"}
    )
    down = await check(await store.connections.resolve("warehouse"), timeout=2)
    assert (down.ok, down.outcome) == (False, "unreachable")
    assert down.detail.startswith(f"postgresql://etl@127.0.0.1:{port}/w does not answer (")
    assert WRONG not in down.detail
