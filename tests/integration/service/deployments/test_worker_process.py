"""``interlock worker`` as a real process: it runs runs, and when it is killed with
SIGKILL its run is marked crashed — by its restart, or by another worker once the lease
passes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from integration.service.deployments.deploy_fixtures import (
    SECRET_KEY,
    Workers,
    python,
    wait_state,
)
from interlock.service.context import Services
from interlock.service.deployments import create_deployment, start_run

INTERLOCK = str(Path(sys.executable).with_name("interlock"))


@contextlib.asynccontextmanager
async def worker_process(
    services: Services, nats_url: str, data_dir: Path, *, name: str, lease: str = "30s"
) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **os.environ,
        "INTERLOCK_DATABASE_URL": services.settings.database_url,
        "INTERLOCK_SECRET_KEY": SECRET_KEY,
    }
    # An empty settings file (a --config named must exist): set up before the process runs.
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
    (data_dir / "none.toml").write_text("")
    process = await asyncio.create_subprocess_exec(
        INTERLOCK,
        "worker",
        "--queue",
        "default",
        "--name",
        name,
        "--poll-interval",
        "0.1",
        "--lease",
        lease,
        "--nats-url",
        nats_url,
        "--data-dir",
        str(data_dir),
        "--config",
        str(data_dir / "none.toml"),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def long_run(services: Services, pid_file: Path) -> object:
    code = textwrap.dedent(f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        time.sleep(120)
    """)
    await create_deployment(services, "long", target={"type": "process", "command": python(code)})
    return await start_run(services, "long")


def kill_orphan(pid_file: Path) -> None:
    if pid_file.exists() and pid_file.read_text():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


async def test_the_worker_command_runs_and_stops_cleanly(
    services: Services, nats_url: str, tmp_path: Path
) -> None:
    await create_deployment(
        services, "hello", target={"type": "process", "command": python("print('hi')")}
    )
    run = await start_run(services, "hello")
    async with worker_process(services, nats_url, tmp_path / "w", name="cli-1") as process:
        done = await wait_state(services, run, "completed", "failed", "crashed")
        assert done.state == "completed", done.message
        assert done.log_path == str((tmp_path / "w" / "runs" / f"{run.id}.log").resolve())
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


@pytest.mark.parametrize("found_by", ["restart", "lease"])
async def test_a_worker_killed_with_sigkill_leaves_a_crashed_run(
    services: Services, workers: Workers, nats_url: str, tmp_path: Path, found_by: str
) -> None:
    pid_file = tmp_path / "pid"
    run = await long_run(services, pid_file)
    try:
        async with worker_process(
            services, nats_url, tmp_path / "w", name="cli-1", lease="2s"
        ) as process:
            await wait_state(services, run, "running")  # type: ignore[arg-type]
            process.kill()
            await process.wait()
        assert (await services.store.runs.get(run.id)).state == "running"  # type: ignore[attr-defined]
        if found_by == "restart":
            async with worker_process(services, nats_url, tmp_path / "w", name="cli-1"):
                done = await wait_state(services, run, "crashed")  # type: ignore[arg-type]
            assert done.message == "worker cli-1 restarted while it ran (it was lost)"
        else:
            workers.start(["default"], name="other", lease=timedelta(seconds=2))
            done = await wait_state(services, run, "crashed")  # type: ignore[arg-type]
            assert done.message is not None
            assert done.message.startswith("its worker stopped renewing its lease (2s)")
    finally:
        kill_orphan(pid_file)


async def test_the_worker_command_explains_embedded_nats(tmp_path: Path) -> None:
    env = {**os.environ, "INTERLOCK_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    env.pop("INTERLOCK_NATS_URL", None)
    (tmp_path / "none.toml").write_text("")
    process = await asyncio.create_subprocess_exec(
        INTERLOCK,
        "worker",
        "--config",
        str(tmp_path / "none.toml"),
        "--data-dir",
        str(tmp_path),
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    lines = err.decode().strip().splitlines()
    assert lines == [
        f"interlock: error: nats_url: no server running embedded on the data directory "
        f"{tmp_path} (no live server in {tmp_path / 'server.json'}): start `interlock "
        "server` there, give this worker its --data-dir, or give --nats-url"
    ]
