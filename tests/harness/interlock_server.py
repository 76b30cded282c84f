"""``interlock server`` as users run it, in a child process, for browser tests and benchmarks.

:func:`interlock_server` starts it in a work directory of its own (embedded NATS and
SQLite under it, the rule modules and deployments given), waits for its start line
(``serving the API at URL (NATS URL)``) and a healthy ``/api/health``, and stops it
with SIGTERM (SIGKILL after a timeout). :func:`publish` sends events with the SDK.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from interlock.sdk import NatsOptions, PublisherConfig
from interlock.sdk.event import Event
from interlock.sdk.sync import SyncPublisher

__all__ = ["RunningServer", "interlock_server", "publish"]

_SERVING = re.compile(r"serving the API at (http://\S+) \(NATS (\S+?)\)")


@dataclass
class RunningServer:
    """A running ``interlock server``."""

    process: subprocess.Popen[bytes]
    url: str
    """The API and UI, ``http://127.0.0.1:PORT``."""
    nats_url: str
    log: Path
    workdir: Path

    def output(self) -> str:
        """What it wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def interlock_server(
    workdir: Path,
    *,
    rules: Mapping[str, str] | None = None,
    deployments: str = "",
    env: Mapping[str, str] | None = None,
    start_timeout: float = 60.0,
) -> Iterator[RunningServer]:
    """Run ``interlock server`` (embedded) in ``workdir`` until the block ends.

    Args:
        workdir: Its directory (data, rules, log); created if missing.
        rules: Rule modules to load at start, by file name.
        deployments: The ``deployments.toml`` to declare at start.
        env: More environment variables (``INTERLOCK_*`` settings).
        start_timeout: Seconds to wait for it to serve.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    rules_dir = workdir / "rules"
    rules_dir.mkdir(exist_ok=True)
    for name, text in (rules or {}).items():
        (rules_dir / name).write_text(text)
    (workdir / "deployments.toml").write_text(deployments)
    (workdir / "adapters.toml").write_text("")
    variables = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")},
        "INTERLOCK_DATA_DIR": str(workdir / "data"),
        "INTERLOCK_API__PORT": "0",
        "INTERLOCK_RULES_DIR": str(rules_dir),
        "INTERLOCK_DEPLOYMENTS_FILE": str(workdir / "deployments.toml"),
        "INTERLOCK_ADAPTERS_FILE": str(workdir / "adapters.toml"),
        **(env or {}),
    }
    log = workdir / "server.log"
    offset = log.stat().st_size if log.exists() else 0  # a restart appends to the log
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "interlock.sdk.cli", "server"],
            env=variables,
            cwd=workdir,
            stdout=output,
            stderr=output,
        )
    server = RunningServer(process=process, url="", nats_url="", log=log, workdir=workdir)
    try:
        deadline = time.monotonic() + start_timeout
        while not server.url:
            if found := _SERVING.search(log.read_bytes()[offset:].decode(errors="replace")):
                server.url, server.nats_url = found.group(1), found.group(2)
            elif process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"interlock server did not start:\n{server.output()[-4000:]}")
            else:
                time.sleep(0.05)
        with httpx.Client(timeout=5) as probe:
            while not _healthy(probe, server.url):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not healthy:\n{server.output()[-4000:]}")
                time.sleep(0.05)
        yield server
    finally:
        server.stop()


def _healthy(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(f"{url}/api/health").status_code == 200
    except httpx.HTTPError:
        return False


def publish(nats_url: str, events: Iterable[Event], spool: Path) -> None:
    """Publish ``events`` with the SDK (blocking), as a producer would."""
    config = PublisherConfig(nats=NatsOptions(servers=(nats_url,)), source="test", spool_dir=spool)
    publisher = SyncPublisher(config)
    try:
        publisher.publish_many(list(events))
    finally:
        publisher.close()
