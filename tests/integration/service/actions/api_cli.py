"""The API served by uvicorn over test services, and the real ``interlock`` command line
(a subprocess) pointed at it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn

from interlock.service.api.app import create_app
from interlock.service.context import Services

__all__ = ["cli", "serving_api"]

INTERLOCK = str(Path(sys.executable).parent / "interlock")


@asynccontextmanager
async def serving_api(services: Services) -> AsyncIterator[str]:
    """Serve the API over ``services`` on a free port; yield its URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=0, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving


async def cli(url: str, tmp: Path, *args: str) -> tuple[int, str, str]:
    """Run ``interlock ARGS`` against the API at ``url``: (exit status, stdout, stderr)."""
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
