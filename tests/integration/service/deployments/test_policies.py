"""Run policies on a real store (SQLite, PostgreSQL) with real subprocesses and NATS:
retries with backoff, a timeout, and a deployment's own concurrency limit."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from harness.nats import nats_client, read_events
from integration.service.deployments.deploy_fixtures import Workers, python, read, wait_state
from interlock.service.context import Services
from interlock.service.deployments import create_deployment, start_run
from interlock.service.deployments.catalog import set_policy
from interlock.service.store import InvalidRecord

FINAL = ("completed", "failed", "crashed", "cancelled")


def stamping(directory: Path, then: str) -> list[str]:
    """A command that writes its start time into ``directory`` (one file per attempt), then
    runs ``then`` (Python)."""
    code = (
        "import os, sys, time, uuid, pathlib\n"
        f"d = pathlib.Path({str(directory)!r}); d.mkdir(exist_ok=True)\n"
        "(d / uuid.uuid4().hex).write_text(repr(time.time()))\n" + then
    )
    return python(code)


def starts(directory: Path) -> list[float]:
    return sorted(float(path.read_text()) for path in directory.iterdir())


async def test_a_failing_run_is_retried_with_backoff_and_ends_failed_after_its_retries(
    services: Services, workers: Workers, nats_url: str, tmp_path: Path
) -> None:
    attempts = tmp_path / "attempts"
    await create_deployment(
        services,
        "flaky",
        target={"type": "process", "command": stamping(attempts, "sys.exit('bad row 17')")},
        policy={"retries": 2, "retry_delay": 0.5, "backoff": 2},
    )
    run = await start_run(services, "flaky")
    workers.start(["default"], name="w1")
    done = await wait_state(services, run, *FINAL, timeout=60)
    assert done.state == "failed", done.message
    assert done.attempt == 3
    assert done.message == "exit code 1: bad row 17"
    times = starts(attempts)
    assert len(times) == 3
    assert times[1] - times[0] >= 0.5  # retry_delay
    assert times[2] - times[1] >= 1.0  # retry_delay * backoff
    log = read(done.log_path)
    assert "attempt 1 of 3 failed: exit code 1: bad row 17; retrying in 0.5s" in log
    assert "attempt 2 of 3 failed: exit code 1: bad row 17; retrying in 1s" in log
    async with nats_client(nats_url) as client:
        events = await read_events(client, subject="interlock.events.interlock.run.>")
    mine = [e for e in events if e.payload["run_id"] == str(run.id)]
    assert [(e.event, e.payload["attempt"]) for e in mine] == [
        ("interlock.run.pending", 1),
        ("interlock.run.running", 1),
        ("interlock.run.scheduled", 2),
        ("interlock.run.pending", 2),
        ("interlock.run.running", 2),
        ("interlock.run.scheduled", 3),
        ("interlock.run.pending", 3),
        ("interlock.run.running", 3),
        ("interlock.run.failed", 3),
    ]


async def test_a_retry_that_succeeds_completes_the_run(
    services: Services, workers: Workers, tmp_path: Path
) -> None:
    attempts = tmp_path / "attempts"
    second_time_lucky = "sys.exit(1 if len(list(d.iterdir())) < 2 else 0)"
    await create_deployment(
        services,
        "lucky",
        target={"type": "process", "command": stamping(attempts, second_time_lucky)},
        policy={"retries": 3},
    )
    run = await start_run(services, "lucky")
    workers.start(["default"], name="w1")
    done = await wait_state(services, run, *FINAL, timeout=60)
    assert (done.state, done.attempt) == ("completed", 2)
    assert len(starts(attempts)) == 2


async def test_an_attempt_past_its_timeout_is_terminated_and_retried(
    services: Services, workers: Workers, tmp_path: Path
) -> None:
    attempts = tmp_path / "attempts"
    await create_deployment(
        services,
        "slow",
        target={"type": "process", "command": stamping(attempts, "time.sleep(60)")},
        policy={"timeout": 1, "retries": 1},
    )
    began = time.monotonic()
    run = await start_run(services, "slow")
    workers.start(["default"], name="w1")
    done = await wait_state(services, run, *FINAL, timeout=60)
    assert (done.state, done.attempt) == ("failed", 2)
    assert done.message == "timed out after 1s (terminated)"
    assert time.monotonic() - began < 30  # not the 60 s the command sleeps
    assert len(starts(attempts)) == 2
    assert "attempt 1 of 2 failed: timed out after 1s (terminated)" in read(done.log_path)


async def test_a_deployment_concurrency_limit_of_2_holds_over_workers(
    services: Services, workers: Workers, tmp_path: Path
) -> None:
    spans = tmp_path / "spans"
    spans.mkdir()
    code = (
        "import json, os, time, pathlib\n"
        "began = time.time(); time.sleep(1.0)\n"
        f"pathlib.Path({str(spans)!r}, os.environ['INTERLOCK_RUN_ID']).write_text("
        "json.dumps([began, time.time()]))\n"
    )
    await create_deployment(
        services, "limited", target={"type": "process", "command": python(code)}
    )
    await set_policy(services, "limited", {}, 2)
    runs = [await start_run(services, "limited") for _ in range(6)]
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            running = await services.store.runs.list(deployment="limited", state="running")
            most = max(most, len(running))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    workers.start(["default"], name="w1", concurrency=4)
    workers.start(["default"], name="w2", concurrency=4)
    try:
        for run in runs:
            done = await wait_state(services, run, *FINAL, timeout=90)
            assert done.state == "completed", done.message
    finally:
        watcher.cancel()
    assert most == 2
    intervals = [json.loads(path.read_text()) for path in spans.iterdir()]
    assert len(intervals) == 6
    for began, _ in intervals:  # no instant with three processes running
        assert sum(1 for b, e in intervals if b <= began < e) <= 2


async def test_bad_policies_are_refused_naming_the_field(services: Services) -> None:
    target = {"type": "process", "command": python("pass")}
    cases = [
        ({"retries": -1}, "policy.retries must be a whole number 0 to 100"),
        ({"retries": 1.5}, "policy.retries must be a whole number 0 to 100"),
        ({"timeout": 0}, "policy.timeout must be a number from 0.001 to 604800"),
        ({"backoff": 0.5}, "policy.backoff must be a number from 1 to 10"),
        ({"colour": 1}, "policy.colour is not a policy field (retries, retry_delay"),
    ]
    for policy, expected in cases:
        with pytest.raises(InvalidRecord, match=expected.replace("(", r"\(")):
            await create_deployment(services, "bad", target=target, policy=policy)
    with pytest.raises(InvalidRecord, match="concurrency_limit must be 1 to 10,000"):
        await create_deployment(services, "bad", target=target, concurrency_limit=0)
