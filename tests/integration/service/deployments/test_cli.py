"""The whole path through ``interlock server``'s ``Service``: the CLI (a real process)
creates and runs deployments, follows logs, pauses queues and cancels runs through the
API; a rule's ``run_deployment`` action starts a run the embedded worker completes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from integration.service.deployments.deploy_fixtures import SECRET_KEY, eventually, wait_state
from interlock.sdk import NatsOptions, Publisher, PublisherConfig
from interlock.service.server import Service
from interlock.service.settings import load_settings

pytestmark = pytest.mark.slow

INTERLOCK = str(Path(sys.executable).with_name("interlock"))
RULES = """
from interlock.rules import Rule, on, run_deployment

go = Rule(
    name="go-hello",
    when=on("demo.go"),
    then=[run_deployment("hello", parameters={"who": "{{ event.payload.who }}"})],
)
"""


@pytest.fixture
async def service(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "go.py").write_text(RULES)
    settings = load_settings(
        None,
        database_url=database_url,
        nats_url=nats_url,
        secret_key=SECRET_KEY,
        data_dir=tmp_path / "data",
        rules_dir=rules,
        api={"port": 0},
        engine={"consumer_max_wait": "50ms"},
    )
    async with Service(settings) as running:
        yield running


async def cli(service: Service, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "INTERLOCK_API_URL": service.api_url}
    process = await asyncio.create_subprocess_exec(
        INTERLOCK, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_deployments_through_the_cli_and_a_rule(
    service: Service, nats_url: str, tmp_path: Path
) -> None:
    assert service.services is not None
    services = service.services
    code = (
        "import json, os; p = json.loads(os.environ['INTERLOCK_PARAMETERS']); "
        "print('hello', p['who'])"
    )
    status, out, err = await cli(
        service,
        "deployments",
        "create",
        "hello",
        "--param",
        "who=nobody",
        "--command",
        sys.executable,
        "-c",
        code,
    )
    assert (status, err) == (0, ""), err
    assert out == "deployment hello created (queue default)\n"

    status, out, err = await cli(
        service, "deployments", "run", "hello", "--param", "who=cli", "--wait", "--json"
    )
    assert status == 0, err
    run = json.loads(out)
    assert run["state"] == "completed"
    status, out, _ = await cli(service, "runs", "logs", run["id"])
    assert (status, out) == (0, "hello cli\n")
    status, out, _ = await cli(service, "runs", "logs", run["id"][:8])  # a unique prefix
    assert (status, out) == (0, "hello cli\n")
    status, out, _ = await cli(service, "runs", "logs", run["id"], "--follow")
    assert (status, out) == (0, "hello cli\n")
    status, out, _ = await cli(service, "runs", "list", "--deployment", "hello")
    assert status == 0
    assert run["id"] in out
    assert "completed" in out

    # A rule's run_deployment action, rendered over the event, run by the embedded worker.
    config = PublisherConfig(
        nats=NatsOptions(servers=(nats_url,)), source="test", spool_dir=tmp_path / "producer"
    )
    async with Publisher(config) as publisher:
        await publisher.publish(publisher.event("demo.go", "x", payload={"who": "a rule"}))

    async def rule_run_completed() -> bool:
        runs = await services.store.runs.list(deployment="hello", state="completed")
        return any(r.parameters == {"who": "a rule"} for r in runs)

    await eventually(rule_run_completed, what="the rule's run to complete")

    # Pause the queue: a run waits; resume: it completes.
    status, out, _ = await cli(service, "queues", "pause", "default")
    assert (status, out) == (0, "queue default paused\n")
    status, out, _ = await cli(service, "deployments", "run", "hello", "--json")
    waiting = await services.store.runs.get(uuid.UUID(json.loads(out)["id"]))
    await asyncio.sleep(2.5)  # more than two polls of the embedded worker
    assert (await services.store.runs.get(waiting.id)).state == "pending"
    status, out, _ = await cli(service, "queues", "list")
    assert "default" in out
    assert "yes" in out
    await cli(service, "queues", "resume", "default")
    await wait_state(services, waiting, "completed")


async def test_cancel_and_errors_through_the_cli(service: Service) -> None:
    assert service.services is not None
    services = service.services
    await cli(
        service,
        "deployments",
        "create",
        "sleepy",
        "--command",
        sys.executable,
        "-c",
        "import time; print('zz', flush=True); time.sleep(60)",
    )
    status, out, _ = await cli(service, "deployments", "run", "sleepy", "--json")
    run = await services.store.runs.get(uuid.UUID(json.loads(out)["id"]))
    await wait_state(services, run, "running")
    status, out, _ = await cli(service, "runs", "cancel", str(run.id))
    assert (status, out) == (0, f"run {run.id} cancelled\n")
    assert (await services.store.runs.get(run.id)).state == "cancelled"

    status, out, err = await cli(service, "runs", "cancel", str(run.id))
    assert status == 1
    assert err.count("\n") == 1
    assert err.startswith(f"interlock: error: run {run.id} is cancelled and cannot become")
    status, _, err = await cli(service, "deployments", "run", "nope")
    assert (status, err) == (1, "interlock: error: no deployment 'nope' (HTTP 404)\n")
    status, _, err = await cli(service, "deployments", "run", "sleepy", "--param", "novalue")
    assert (status, err) == (1, "interlock: error: --param 'novalue' must read key=value\n")


async def test_deployments_list_their_next_run_and_can_be_deleted(service: Service) -> None:
    assert service.services is not None
    services = service.services
    status, _, err = await cli(
        service,
        *("deployments", "create", "weekly", "--schedule", "0 9 * * 1"),
        *("--command", sys.executable, "-c", "print('weekly')"),
    )
    assert status == 0, err
    status, out, _ = await cli(service, "deployments", "list", "--json")
    [weekly] = [d for d in json.loads(out) if d["name"] == "weekly"]
    now = datetime.now(UTC)
    monday = now.date() + timedelta(days=(7 - now.weekday()) % 7)
    due = datetime.combine(monday, time(9), UTC)
    if due <= now:
        due += timedelta(days=7)
    assert weekly["next_run"] == due.isoformat().replace("+00:00", "Z")
    status, out, _ = await cli(service, "deployments", "list")
    header, *rows = out.splitlines()
    [row] = [line for line in rows if line.startswith("weekly ")]
    assert "NEXT_RUN" in header.split()
    assert due.isoformat().replace("+00:00", "Z") in row.split()

    # A run waiting in a paused queue: the deployment cannot go yet.
    await cli(service, "queues", "pause", "default")
    status, out, _ = await cli(service, "deployments", "run", "weekly", "--json")
    waiting = json.loads(out)["id"]
    status, _, err = await cli(service, "deployments", "delete", "weekly")
    assert status == 1
    assert err == (
        "interlock: error: deployment 'weekly' has runs not finished (1 pending): cancel "
        "them first (interlock runs list --deployment weekly; interlock runs cancel ID) "
        "(HTTP 409)\n"
    )
    await cli(service, "runs", "cancel", waiting)
    await cli(service, "queues", "resume", "default")

    status, out, err = await cli(service, "deployments", "delete", "weekly")
    assert (status, out, err) == (0, "deployment weekly deleted, with its 1 finished run(s)\n", "")
    assert "weekly" not in [d.name for d in await services.store.deployments.list()]
    assert await services.store.runs.list(deployment="weekly") == []
    status, _, err = await cli(service, "deployments", "delete", "weekly")
    assert (status, err) == (1, "interlock: error: no deployment 'weekly' (HTTP 404)\n")
