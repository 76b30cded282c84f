"""``emit()``: the synchronous one-liner, configured from the environment, fork-safe."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from interlock.sdk import EVENTS_STREAM, ensure_streams

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from interlock.sdk import emit

    parent = emit("job.started", "nightly", payload={"pid": "parent"})
    child = os.fork()
    if child == 0:
        # Airflow runs tasks in forked processes: emit must work in the child too.
        emit("job.finished", "nightly", payload={"pid": "child"})
        from interlock.sdk.sync import _close_shared
        _close_shared()
        os._exit(0)
    _, status = os.waitpid(child, 0)
    print(parent.id)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


async def stored(url: str) -> list[dict[str, object]]:
    nc = await nats.connect(url)
    subscription = await nc.jetstream().pull_subscribe(
        "interlock.events.>",
        stream=EVENTS_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
    )
    messages = await subscription.fetch(10, timeout=2)
    await nc.close()
    return [json.loads(message.data) for message in messages]


def test_emit_from_env_config_in_a_parent_and_a_forked_child(nats_url: str, tmp_path: Path) -> None:
    async def prepare() -> None:
        nc = await nats.connect(nats_url)
        await ensure_streams(nc.jetstream())
        await nc.close()

    asyncio.run(prepare())
    env = {
        **os.environ,
        "INTERLOCK_NATS_URL": nats_url,
        "INTERLOCK_SOURCE": "cron.nightly",
        "INTERLOCK_SPOOL_DIR": str(tmp_path / "spool"),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    events = asyncio.run(stored(nats_url))
    assert sorted((e["event"], e["payload"]["pid"]) for e in events) == [  # type: ignore[index]
        ("job.finished", "child"),
        ("job.started", "parent"),
    ]
    assert {e["source"] for e in events} == {"cron.nightly"}
    assert result.stdout.strip() in {e["id"] for e in events}
