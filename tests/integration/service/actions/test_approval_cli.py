"""``interlock approvals list | approve | reject``: the real command line (a subprocess)
against the API served by uvicorn over a real store and NATS (SQLite only: the store is
covered elsewhere)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import uvicorn

from integration.service.actions.dispatch_fixtures import (
    all_in,
    dispatching,
    eventually,
    make_rule,
    queue,
    running_services,
    states,
)
from integration.service.actions.receiver import Receiver
from interlock.rules import approve, webhook
from interlock.service.api.app import create_app

INTERLOCK = str(Path(sys.executable).parent / "interlock")


@pytest.fixture
def sqlite_only(sqlite_url: str) -> str:
    return sqlite_url


async def cli(url: str, tmp: Path, *args: str) -> tuple[int, str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "INTERLOCK_API_URL": url}
    process = await asyncio.create_subprocess_exec(
        INTERLOCK,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_list_approve_and_reject_from_the_command_line(
    sqlite_only: str, streams: str, tmp_path: Path
) -> None:
    async with (
        Receiver() as receiver,
        running_services(sqlite_only, streams, tmp_path / "spool") as services,
    ):
        ask = f"json://127.0.0.1:{receiver.port}/ask"
        yes = make_rule("yes", [approve(ask, title="Ship it?"), webhook(f"{receiver.url}/y")])
        no = make_rule("no", [approve(ask), webhook(f"{receiver.url}/n")])
        (to_approve,) = await queue(services, yes)
        (to_reject,) = await queue(services, no)
        server = uvicorn.Server(
            uvicorn.Config(create_app(services), host="127.0.0.1", port=0, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        try:
            for _ in range(500):
                if server.started:
                    break
                await asyncio.sleep(0.02)
            url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
            async with dispatching(services):
                for name in ("yes", "no"):
                    await eventually(
                        lambda n=name: _is(services, n, ["waiting", "held"]), what=name
                    )
                status, out, err = await cli(url, tmp_path, "approvals", "list")
                assert status == 0, err
                assert str(to_approve.id) in out
                assert "Ship it?" in out

                status, out, err = await cli(
                    url, tmp_path, "approvals", "approve", str(to_approve.id), "--by", "ana"
                )
                assert (status, out.strip()) == (
                    0,
                    f"firing {to_approve.id} (rule yes): approved by ana",
                ), err
                status, out, err = await cli(
                    url,
                    tmp_path,
                    "approvals",
                    "reject",
                    str(to_reject.id),
                    "--reason",
                    "no",
                    "--json",
                )
                assert status == 0, err
                decided = json.loads(out)
                assert (decided["decision"], decided["decided_by"]) == ("rejected", "api")
                await eventually(lambda: all_in(services, "yes", "succeeded"))
                await eventually(lambda: all_in(services, "no", "cancelled"))

                status, out, err = await cli(
                    url, tmp_path, "approvals", "approve", str(to_reject.id)
                )
                assert status != 0
                assert len(err.strip().splitlines()) == 1  # one clear line, no traceback
        finally:
            server.should_exit = True
            await serving
        assert len(receiver.paths("/y")) == 1
        assert receiver.paths("/n") == []


async def _is(services: object, rule: str, wanted: list[str]) -> bool:
    return await states(services, rule) == wanted  # type: ignore[arg-type]
