"""Workers on a real store (SQLite, PostgreSQL), real subprocesses and real NATS."""

from __future__ import annotations

import asyncio
import os
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from harness.nats import nats_client, read_events
from integration.service.deployments.deploy_fixtures import (
    Workers,
    eventually,
    python,
    read,
    wait_state,
)
from interlock.service.context import Services
from interlock.service.deployments import cancel_run, create_deployment, start_run


async def deploy(
    services: Services, name: str, target: dict[str, object], **options: object
) -> None:
    await create_deployment(services, name, target=target, **options)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_run_completes_with_its_output_in_its_log_and_events(
    services: Services, workers: Workers, nats_url: str
) -> None:
    code = "import json, os; print('hello', json.loads(os.environ['INTERLOCK_PARAMETERS']))"
    await deploy(
        services,
        "hello",
        {"type": "process", "command": python(code)},
        parameters={"who": "world", "n": 1},
    )
    run = await start_run(services, "hello", parameters={"n": 2}, reason="test")
    assert (run.state, run.queue, run.parameters) == (
        "pending",
        "default",
        {"who": "world", "n": 2},
    )
    workers.start(["default"], name="w1")
    done = await wait_state(services, run, "completed", "failed", "crashed")
    assert done.state == "completed", done.message
    assert done.started_at is not None
    assert done.ended_at is not None
    assert done.log_path is not None
    assert read(done.log_path) == "hello {'who': 'world', 'n': 2}\n"
    async with nats_client(nats_url) as client:
        events = await read_events(client, expected=3, subject="interlock.events.interlock.run.>")
    assert [e.event for e in events] == [
        "interlock.run.pending",
        "interlock.run.running",
        "interlock.run.completed",
    ]
    last = events[-1]
    assert last.resource == {"id": "hello", "queue": "default"}
    assert last.payload["run_id"] == str(run.id)
    assert last.payload["parameters"] == {"who": "world", "n": 2}
    assert last.payload["state"] == "completed"
    assert last.payload["duration"] >= 0
    assert events[0].payload["reason"] == "test"
    counted = services.metrics.render().decode()
    assert 'interlock_runs_total{state="completed"} 1.0' in counted


async def test_a_worker_of_every_queue_serves_a_queue_created_after_it_started(
    services: Services, workers: Workers
) -> None:
    workers.start(None, name="embedded")  # as `interlock server` runs its own
    await services.store.queues.create("reports")
    await deploy(
        services, "late-report", {"type": "process", "command": python("print('ok')")},
        queue="reports",
    )  # fmt: skip
    run = await start_run(services, "late-report", reason="test")
    assert run.queue == "reports"
    done = await wait_state(services, run, "completed", "failed", "crashed")
    assert done.state == "completed", done.message
    assert done.log_path is not None
    assert read(done.log_path) == "ok\n"


async def test_a_failing_command_fails_with_its_exit_code_and_last_line(
    services: Services, workers: Workers
) -> None:
    code = "import sys; print('working'); print('disk full', file=sys.stderr); sys.exit(3)"
    await deploy(services, "broken", {"type": "process", "command": python(code)})
    run = await start_run(services, "broken")
    workers.start(["default"], name="w1")
    done = await wait_state(services, run, "completed", "failed", "crashed")
    assert (done.state, done.message) == ("failed", "exit code 3: disk full")


async def test_a_missing_program_fails_the_run(services: Services, workers: Workers) -> None:
    await deploy(services, "nothing", {"type": "process", "command": ["/no/such/program"]})
    run = await start_run(services, "nothing")
    workers.start(["default"], name="w1")
    done = await wait_state(services, run, "completed", "failed", "crashed")
    assert done.state == "failed"
    assert done.message is not None
    assert "cannot start '/no/such/program'" in done.message
    assert done.log_path is not None
    assert "cannot start" in read(done.log_path)


async def test_a_process_killed_by_a_signal_crashes_its_run(
    services: Services, workers: Workers
) -> None:
    code = "import os, signal; print('bye', flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    await deploy(services, "suicide", {"type": "process", "command": python(code)})
    run = await start_run(services, "suicide")
    workers.start(["default"], name="w1")
    done = await wait_state(services, run, "completed", "failed", "crashed")
    assert (done.state, done.message) == ("crashed", "killed by SIGKILL: bye")


async def test_an_entrypoint_gets_the_parameters_as_keyword_arguments(
    services: Services, workers: Workers, tmp_path: Path
) -> None:
    package = tmp_path / "flows"
    package.mkdir()
    (package / "reports.py").write_text(
        textwrap.dedent("""
        import asyncio

        def build(date, full=False):
            print(f"building {date} full={full}")

        async def build_async(date):
            await asyncio.sleep(0)
            print(f"async {date}")

        def explode(**_):
            raise RuntimeError("no data for that date")
    """)
    )
    env = {"PYTHONPATH": str(package)}
    for name, entrypoint in [
        ("sync", "reports:build"),
        ("async", "reports:build_async"),
        ("explodes", "reports:explode"),
    ]:
        await deploy(
            services,
            name,
            {"type": "process", "entrypoint": entrypoint, "env": env},
            parameters={"date": "2026-03-02"},
        )
    runs = [
        await start_run(services, "sync", parameters={"full": True}),
        await start_run(services, "async"),
        await start_run(services, "explodes"),
    ]
    workers.start(["default"], name="w1")
    done = [await wait_state(services, run, "completed", "failed", "crashed") for run in runs]
    assert [d.state for d in done] == ["completed", "completed", "failed"]
    logs = [read(d.log_path) for d in done]
    assert logs[0] == "building 2026-03-02 full=True\n"
    assert logs[1] == "async 2026-03-02\n"
    assert "Traceback" in logs[2]
    assert done[2].message == "exit code 1: RuntimeError: no data for that date"


async def test_a_paused_queue_holds_its_runs_until_resumed(
    services: Services, workers: Workers
) -> None:
    await services.store.queues.create("etl", paused=True)
    await deploy(
        services, "etl-job", {"type": "process", "command": python("print('ran')")}, queue="etl"
    )
    run = await start_run(services, "etl-job")
    worker = workers.start(["etl"], name="w1")
    await asyncio.sleep(1.0)  # twenty polls and more
    assert (await services.store.runs.get(run.id)).state == "pending"
    assert worker.active == []
    await services.store.queues.set_paused("etl", False)
    done = await wait_state(services, run, "completed", "failed", "crashed")
    assert done.state == "completed"


async def test_a_concurrency_limit_holds_across_two_workers(
    services: Services, workers: Workers, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    code = textwrap.dedent(f"""
        import os, time
        run = os.environ["INTERLOCK_RUN_ID"]
        with open(os.path.join({str(marks)!r}, run + ".start"), "w") as f:
            f.write(repr(time.time()))
        time.sleep(0.4)
        with open(os.path.join({str(marks)!r}, run + ".end"), "w") as f:
            f.write(repr(time.time()))
    """)
    await services.store.queues.create("limited", concurrency_limit=3)
    await deploy(services, "busy", {"type": "process", "command": python(code)}, queue="limited")
    runs = [await start_run(services, "busy") for _ in range(20)]
    workers.start(["limited"], name="w1", concurrency=5)
    workers.start(["limited"], name="w2", concurrency=5)
    highest = 0

    async def all_done() -> bool:
        nonlocal highest
        running = await services.store.runs.list(queue="limited", state="running")
        highest = max(highest, len(running))
        states = [r.state for r in await services.store.runs.list(queue="limited")]
        return all(state == "completed" for state in states)

    await eventually(all_done, timeout=90, what="20 runs to complete")
    assert highest <= 3
    intervals = [
        (float((marks / f"{r.id}.start").read_text()), float((marks / f"{r.id}.end").read_text()))
        for r in runs
    ]
    moments = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    overlap = peak = 0
    for _, step in moments:
        overlap += step
        peak = max(peak, overlap)
    assert 2 <= peak <= 3  # the limit is used, and never exceeded
    workers_seen = {r.message for r in await services.store.runs.list(queue="limited")}
    assert workers_seen == {"exit code 0"}


async def test_cancelling_a_running_run_terminates_its_process(
    services: Services, workers: Workers, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    code = textwrap.dedent(f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        print("started", flush=True)
        time.sleep(120)
    """)
    await deploy(services, "long", {"type": "process", "command": python(code)})
    run = await start_run(services, "long")
    workers.start(["default"], name="w1")
    await wait_state(services, run, "running")

    async def started() -> bool:
        return pid_file.exists() and pid_file.read_text() != ""

    await eventually(started, what="the process to start")
    pid = int(pid_file.read_text())
    cancelled = await cancel_run(services, run.id)
    assert cancelled.state == "cancelled"

    async def gone() -> bool:
        return not alive(pid)

    await eventually(gone, what=f"process {pid} to end")
    assert (await services.store.runs.get(run.id)).state == "cancelled"


async def test_a_cancelled_pending_run_never_starts(
    services: Services, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    await deploy(
        services, "never", {"type": "process", "command": python(f"open({str(marker)!r}, 'w')")}
    )
    run = await start_run(services, "never")
    await cancel_run(services, run.id)
    later = await start_run(services, "never")
    workers.start(["default"], name="w1")
    await wait_state(services, later, "completed")
    marker.unlink()
    await asyncio.sleep(0.5)
    assert not marker.exists()
    assert (await services.store.runs.get(run.id)).state == "cancelled"


async def test_an_idempotency_key_starts_one_run(services: Services) -> None:
    await deploy(services, "once", {"type": "process", "command": ["true"]})
    first = await start_run(services, "once", idempotency_key="schedule:once:2026-03-02T06:00Z")
    again = await start_run(services, "once", idempotency_key="schedule:once:2026-03-02T06:00Z")
    assert again.id == first.id
    assert len(await services.store.runs.list(deployment="once")) == 1


async def test_a_run_scheduled_later_waits_for_its_time(
    services: Services, workers: Workers
) -> None:
    await deploy(services, "later", {"type": "process", "command": ["true"]})
    run = await start_run(
        services, "later", scheduled_at=services.clock.now() + timedelta(seconds=1.5)
    )
    assert run.state == "scheduled"
    workers.start(["default"], name="w1")
    await asyncio.sleep(0.5)
    assert (await services.store.runs.get(run.id)).state == "scheduled"
    done = await wait_state(services, run, "completed")
    assert done.started_at is not None
    assert done.started_at >= run.scheduled_at


async def test_stopping_a_worker_terminates_its_runs_as_crashed(
    services: Services, workers: Workers
) -> None:
    await deploy(
        services, "long", {"type": "process", "command": python("import time; time.sleep(60)")}
    )
    run = await start_run(services, "long")
    worker = workers.start(["default"], name="w1")
    await wait_state(services, run, "running")
    await workers.stop(worker)
    done = await services.store.runs.get(run.id)
    assert (done.state, done.message) == ("crashed", "worker w1 stopped while it ran (terminated)")


@pytest.mark.parametrize("state", ["completed"])
async def test_runs_are_listed_by_state(services: Services, workers: Workers, state: str) -> None:
    await deploy(services, "quick", {"type": "process", "command": ["true"]})
    runs = [await start_run(services, "quick") for _ in range(3)]
    workers.start(["default"], name="w1", concurrency=2)
    for run in runs:
        await wait_state(services, run, state)
    listed = await services.store.runs.list(deployment="quick", state=state)  # type: ignore[arg-type]
    assert {r.id for r in listed} == {r.id for r in runs}
