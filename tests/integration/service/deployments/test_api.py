"""The deployment, run and queue endpoints over a real store, NATS and worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from integration.service.deployments.deploy_fixtures import Workers, python, wait_state
from interlock.service.api.app import create_app
from interlock.service.context import Services


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


HELLO = {
    "type": "process",
    "command": python("import os; print(os.environ['INTERLOCK_PARAMETERS'])"),
}


async def test_create_list_show_and_run_a_deployment(
    api: httpx.AsyncClient, services: Services, workers: Workers
) -> None:
    created = await api.post(
        "/api/deployments",
        json={"name": "hello", "target": HELLO, "parameters": {"a": 1}, "tags": ["demo"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["queue"] == "default"
    assert [d["name"] for d in (await api.get("/api/deployments")).json()] == ["hello"]
    shown = (await api.get("/api/deployments/hello")).json()
    assert (shown["target"], shown["parameters"], shown["tags"]) == (HELLO, {"a": 1}, ["demo"])

    started = await api.post("/api/deployments/hello/run", json={"parameters": {"b": 2}})
    assert started.status_code == 201, started.text
    run = started.json()
    assert (run["state"], run["parameters"]) == ("pending", {"a": 1, "b": 2})
    same = await api.post("/api/deployments/hello/run", json={"idempotency_key": "k1"})
    again = await api.post("/api/deployments/hello/run", json={"idempotency_key": "k1"})
    assert same.json()["id"] == again.json()["id"]
    bare = await api.post("/api/deployments/hello/run")
    assert bare.status_code == 201, bare.text

    workers.start(["default"], name="w1")
    stored = await services.store.runs.get(uuid.UUID(run["id"]))
    await wait_state(services, stored, "completed")
    shown_run = (await api.get(f"/api/runs/{run['id']}")).json()
    assert shown_run["state"] == "completed"
    logs = await api.get(f"/api/runs/{run['id']}/logs")
    assert logs.status_code == 200
    assert logs.headers["content-type"].startswith("text/plain")
    assert logs.text == '{"a": 1, "b": 2}\n'
    assert logs.headers["x-log-size"] == str(len(logs.text))
    assert (await api.get(f"/api/runs/{run['id']}/logs", params={"offset": 5})).text == logs.text[
        5:
    ]
    listed = (await api.get("/api/runs", params={"deployment": "hello", "limit": 10})).json()
    assert run["id"] in [r["id"] for r in listed]
    assert (await api.get("/api/runs", params={"state": "bogus"})).status_code == 400


async def test_log_tail(api: httpx.AsyncClient, services: Services, workers: Workers) -> None:
    target = {"type": "process", "command": python("for i in range(10): print(i)")}
    await api.post("/api/deployments", json={"name": "count", "target": target})
    run = (await api.post("/api/deployments/count/run")).json()
    workers.start(["default"], name="w1")
    await wait_state(services, await services.store.runs.get(uuid.UUID(run["id"])), "completed")
    tail = await api.get(f"/api/runs/{run['id']}/logs", params={"tail": 3})
    assert tail.text == "7\n8\n9\n"


async def test_bad_deployments_are_400_naming_the_field(api: httpx.AsyncClient) -> None:
    cases = [
        ({"type": "ftp"}, None, "target.type is not a known target type 'ftp' (known: airflow"),
        ({"type": "airflow"}, None, "target.connection is required"),
        (
            {"type": "airflow", "connection": "nowhere", "dag_id": "d"},
            None,
            "target.connection must name an existing airflow connection: connection 'nowhere' "
            "does not exist",
        ),
        ({"type": "process"}, None, "target needs exactly one of 'command'"),
        ({"type": "process", "command": []}, None, "target.command must be a non-empty list"),
        ({"type": "process", "entrypoint": "nocolon"}, None, "target.entrypoint must read"),
        ({"type": "process", "command": ["x"], "shell": True}, None, "target.shell is not a field"),
        ({"type": "process", "command": ["x"]}, "every minute", "schedule is not a cron"),
    ]
    for target, schedule, expected in cases:
        answer = await api.post(
            "/api/deployments", json={"name": "bad", "target": target, "schedule": schedule}
        )
        assert answer.status_code == 400, (target, answer.text)
        assert expected in answer.json()["detail"], answer.json()["detail"]
    no_queue = await api.post(
        "/api/deployments", json={"name": "bad", "target": HELLO, "queue": "nope"}
    )
    assert no_queue.status_code == 400
    assert "names no queue ('nope')" in no_queue.json()["detail"]
    extra = await api.post("/api/deployments", json={"name": "x", "target": HELLO, "colour": 1})
    assert extra.status_code == 400
    assert (await api.post("/api/deployments/nope/run")).status_code == 404
    assert (await api.get("/api/deployments/nope")).status_code == 404
    await api.post("/api/deployments", json={"name": "dup", "target": HELLO})
    assert (
        await api.post("/api/deployments", json={"name": "dup", "target": HELLO})
    ).status_code == 409


async def test_schedule_pause_and_resume(api: httpx.AsyncClient) -> None:
    await api.post(
        "/api/deployments", json={"name": "cron", "target": HELLO, "schedule": "0 6 * * *"}
    )
    paused = await api.post("/api/deployments/cron/schedule/pause")
    assert paused.status_code == 200
    assert paused.json()["schedule_enabled"] is False
    resumed = await api.post("/api/deployments/cron/schedule/resume")
    assert resumed.json()["schedule_enabled"] is True
    assert (await api.post("/api/deployments/cron/schedule/stop")).status_code == 404


async def test_queues_and_cancelling(
    api: httpx.AsyncClient, services: Services, workers: Workers
) -> None:
    created = await api.post("/api/queues", json={"name": "etl", "concurrency_limit": 2})
    assert created.status_code == 201
    assert created.json()["concurrency_limit"] == 2
    assert (await api.post("/api/queues", json={"name": "etl"})).status_code == 409
    assert (
        await api.post("/api/queues", json={"name": "z", "concurrency_limit": 0})
    ).status_code == 400
    assert (await api.post("/api/queues/etl/pause")).json()["paused"] is True
    assert [q["name"] for q in (await api.get("/api/queues")).json()] == ["etl"]
    await api.post(
        "/api/deployments",
        json={
            "name": "sleepy",
            "queue": "etl",
            "target": {"type": "process", "command": python("import time; time.sleep(60)")},
        },
    )
    run = (await api.post("/api/deployments/sleepy/run")).json()
    workers.start(["etl"], name="w1")
    logs = await api.get(f"/api/runs/{run['id']}/logs")
    assert (logs.status_code, logs.text) == (200, "")
    assert (await api.post("/api/queues/etl/resume")).json()["paused"] is False
    await wait_state(services, await services.store.runs.get(uuid.UUID(run["id"])), "running")
    cancelled = await api.post(f"/api/runs/{run['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    again = await api.post(f"/api/runs/{run['id']}/cancel")
    assert again.status_code == 409
    assert "cannot become cancelled" in again.json()["detail"]
    assert (await api.post("/api/queues/nope/pause")).status_code == 404
    assert (await api.get(f"/api/runs/{uuid.uuid4()}")).status_code == 404


async def test_scopes(api: httpx.AsyncClient, services: Services) -> None:
    read = (await services.store.api_keys.create("reader", ["read"])).token
    write = (await services.store.api_keys.create("writer", ["write"])).token
    assert (await api.get("/api/deployments")).status_code == 401
    headers = {"Authorization": f"Bearer {read}"}
    assert (await api.get("/api/deployments", headers=headers)).status_code == 200
    assert (await api.get("/api/queues", headers=headers)).status_code == 200
    assert (await api.get("/api/runs", headers=headers)).status_code == 200
    refused = await api.post("/api/queues", json={"name": "q"}, headers=headers)
    assert refused.status_code == 403
    allowed = await api.post(
        "/api/queues", json={"name": "q"}, headers={"Authorization": f"Bearer {write}"}
    )
    assert allowed.status_code == 201
