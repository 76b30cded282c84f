"""Scopes (issue 14, finding 9): ``publish`` sends events and nothing else; creating a
deployment (a command run on workers) needs ``admin``; ``write`` includes publishing,
``read`` does not."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from integration.service.actions.api_cli import serving_api
from interlock.service.api.app import create_app

from .conftest import Rig, api_client
from .test_malformed_input import assert_problem
from .test_uvicorn_cli import INTERLOCK

EVENT = {"event": "job.done", "resource": {"id": "job-1"}}
DEPLOYMENT = {"name": "backfill", "target": {"type": "process", "command": ["true"]}}


@pytest.fixture
async def api(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app(rig.services, key_cache_ttl=0)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_publish_sends_events_and_nothing_else(rig: Rig, api: httpx.AsyncClient) -> None:
    producer = bearer(await rig.token("publish"))
    sent = await api.post("/api/events", json=EVENT, headers=producer)
    assert sent.status_code == 202, sent.text
    for method, path, body in [
        ("GET", "/api/rules", None),
        ("GET", "/api/firings", None),
        ("GET", "/api/deployments", None),
        ("POST", "/api/rules", {"name": "r"}),
        ("POST", "/api/queues", {"name": "q"}),
        ("POST", "/api/deployments", DEPLOYMENT),
        ("POST", "/api/deployments/backfill/run", {}),
        ("POST", "/api/channels", {"name": "ops", "url": "json://localhost"}),
        ("GET", "/api/keys", None),
    ]:
        response = await api.request(method, path, json=body, headers=producer)
        assert_problem(response, 403, "has scope publish")


async def test_read_does_not_publish_and_write_does(rig: Rig, api: httpx.AsyncClient) -> None:
    reader = bearer(await rig.token("read"))
    writer = bearer(await rig.token("write"))
    assert_problem(
        await api.post("/api/events", json=EVENT, headers=reader), 403, "this needs publish"
    )
    assert (await api.post("/api/events", json=EVENT, headers=writer)).status_code == 202
    assert (await api.get("/api/rules", headers=writer)).status_code == 200


async def test_creating_a_deployment_needs_admin(rig: Rig, api: httpx.AsyncClient) -> None:
    writer = bearer(await rig.token("write"))
    admin = bearer(await rig.admin_token())
    refused = await api.post("/api/deployments", json=DEPLOYMENT, headers=writer)
    assert_problem(refused, 403, "has scope write; this needs admin")
    assert await rig.services.store.deployments.list() == []
    created = await api.post("/api/deployments", json=DEPLOYMENT, headers=admin)
    assert created.status_code == 201, created.text
    # Running what an admin set up, and managing queues, stay with write.
    started = await api.post("/api/deployments/backfill/run", json={}, headers=writer)
    assert started.status_code == 201, started.text
    queue = await api.post("/api/queues", json={"name": "etl"}, headers=writer)
    assert queue.status_code == 201, queue.text


async def test_publish_keys_from_the_api_and_the_command_line(
    rig: Rig, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    admin = bearer(await rig.admin_token())
    created = await api.post(
        "/api/keys", json={"name": "airflow-prod", "scopes": ["publish"]}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["key"]["scopes"] == ["publish"]
    token = created.json()["token"]
    assert (await api.post("/api/events", json=EVENT, headers=bearer(token))).status_code == 202

    status, cli_token, err = await _run(
        tmp_path, rig, "keys", "create", "s3-adapter", "--scope", "publish"
    )
    assert status == 0, err
    assert "scope publish" in err
    async with serving_api(rig.services) as url, httpx.AsyncClient(base_url=url) as client:
        sent = await client.post("/api/events", json=EVENT, headers=bearer(cli_token.strip()))
        assert sent.status_code == 202, sent.text
        looked = await client.get("/api/rules", headers=bearer(cli_token.strip()))
        assert looked.status_code == 403


async def _run(tmp_path: Path, rig: Rig, *args: str) -> tuple[int, str, str]:
    """``interlock ARGS`` on the rig's database (``keys`` works on the database directly)."""
    settings = rig.services.settings
    assert settings.secret_key is not None
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "INTERLOCK_DATABASE_URL": settings.database_url,
        "INTERLOCK_DATA_DIR": str(tmp_path / "cli-data"),
        "INTERLOCK_SECRET_KEY": settings.secret_key.get_secret_value(),
    }
    process = await asyncio.create_subprocess_exec(
        INTERLOCK,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
