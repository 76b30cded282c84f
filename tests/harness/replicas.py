"""``interlock server`` replicas as child processes, for the scale-out tests and benchmark.

:class:`ReplicaProcess` runs one ``interlock server`` with ``replicas.enabled`` against a
NATS server and a PostgreSQL database shared with its peers, in a directory of its own
(data, rules, log). It can be killed (``kill -9``), paused (``SIGSTOP``) and continued,
and reads its role from ``/api/health`` (``owner`` or ``standby`` of the engine lease).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from interlock.sdk import NatsOptions, PublisherConfig
from interlock.sdk.event import Event
from interlock.sdk.sync import SyncPublisher

__all__ = ["ReplicaProcess", "firing_ids", "make_events", "publish_events"]

_SERVING = re.compile(r"serving the API at (http://\S+)")


class ReplicaProcess:
    """One ``interlock server`` replica.

    Args:
        workdir: Its directory (created).
        name: Its replica name (``replicas.name``).
        nats_url: The shared NATS server.
        database_url: The shared PostgreSQL database.
        secret_key: The shared Fernet key.
        rules: Rule modules by file name, loaded at start.
        env: More ``INTERLOCK_*`` settings.
    """

    def __init__(
        self,
        workdir: Path,
        name: str,
        *,
        nats_url: str,
        database_url: str,
        secret_key: str,
        rules: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.name = name
        workdir.mkdir(parents=True, exist_ok=True)
        rules_dir = workdir / "rules"
        rules_dir.mkdir(exist_ok=True)
        for file, text in (rules or {}).items():
            (rules_dir / file).write_text(text)
        (workdir / "deployments.toml").write_text("")
        (workdir / "adapters.toml").write_text("")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")},
            "INTERLOCK_DATA_DIR": str(workdir / "data"),
            "INTERLOCK_API__PORT": "0",
            "INTERLOCK_RULES_DIR": str(rules_dir),
            "INTERLOCK_DEPLOYMENTS_FILE": str(workdir / "deployments.toml"),
            "INTERLOCK_ADAPTERS_FILE": str(workdir / "adapters.toml"),
            "INTERLOCK_NATS_URL": nats_url,
            "INTERLOCK_DATABASE_URL": database_url,
            "INTERLOCK_SECRET_KEY": secret_key,
            "INTERLOCK_REPLICAS__ENABLED": "true",
            "INTERLOCK_REPLICAS__NAME": name,
            **(env or {}),
        }
        self.log = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until its API serves."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "interlock.sdk.cli", "server"],
                env=self.env,
                cwd=self.workdir,
                stdout=output,
                stderr=output,
            )
        deadline = time.monotonic() + timeout
        self.url = ""
        while not self.url:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            if found := _SERVING.search(text):
                self.url = found.group(1)
            elif self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replica {self.name} did not start:\n{text[-4000:]}")
            else:
                time.sleep(0.05)

    def output(self) -> str:
        """What it logged so far."""
        return self.log.read_text(errors="replace")

    def health(self) -> dict[str, Any]:
        """``/api/health``'s body (``{}`` when it does not answer)."""
        try:
            body: dict[str, Any] = httpx.get(f"{self.url}/api/health", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return {}
        return body

    def role(self) -> str:
        """``owner``, ``standby`` or ``starting`` of the engine lease; ``""`` if unknown."""
        return str(self.health().get("replica", {}).get("engine", ""))

    def wait_role(self, role: str, timeout: float) -> float:
        """Wait until its engine role is ``role``; return the seconds waited."""
        started = time.monotonic()
        while (found := self.role()) != role:
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"replica {self.name} is {found!r}, not {role!r}, after {timeout} s:\n"
                    f"{self.output()[-3000:]}"
                )
            time.sleep(0.02)
        return time.monotonic() - started

    def kill(self) -> None:
        """``kill -9``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def pause(self) -> None:
        """``SIGSTOP``: frozen, its sockets open."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """``SIGCONT``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (continuing it first if paused), then SIGKILL if it does not exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def make_events(
    ticks: int, *, mark_every: int, start: datetime, seed: str = "replicas"
) -> list[Event]:
    """``ticks`` ``ha.tick`` events and a ``ha.mark`` every ``mark_every``, with fixed ids.

    The ids and times depend only on the arguments, so two runs given the same list make
    firings with the same ids.
    """
    events: list[Event] = []
    for n in range(ticks):
        at = start + timedelta(milliseconds=n)
        events.append(_event(f"{seed}/tick/{n}", "ha.tick", "source", at, {"n": n}))
        if n % mark_every == 0:
            events.append(_event(f"{seed}/mark/{n}", "ha.mark", "source", at, {"n": n}))
    return events


def _event(key: str, name: str, resource: str, at: datetime, payload: dict[str, Any]) -> Event:
    return Event(
        id=uuid.uuid5(uuid.NAMESPACE_URL, key),
        occurred=at,
        event=name,
        resource={"id": resource},
        payload=payload,
        source="test",
    )


def publish_events(
    nats_url: str, events: Iterable[Event], spool: Path, *, per_second: float = 0
) -> None:
    """Publish ``events`` with the SDK, ``per_second`` at most (0: at once, in one go)."""
    config = PublisherConfig(nats=NatsOptions(servers=(nats_url,)), source="test", spool_dir=spool)
    publisher = SyncPublisher(config)
    try:
        batch = list(events)
        chunk = max(1, int(per_second / 20)) if per_second > 0 else len(batch)
        started = time.monotonic()
        for index in range(0, len(batch), chunk):
            publisher.publish_many(batch[index : index + chunk])
            if per_second > 0:
                due = started + (index + chunk) / per_second
                time.sleep(max(0.0, due - time.monotonic()))
        # what NATS did not take at once (a stream leader being elected) was spooled:
        # closing would leave it on disk after a short wait, so wait for it here
        assert publisher.flush(60), "the spool was not sent within 60 s"
    finally:
        publisher.close()


def firing_ids(database_url: str) -> set[uuid.UUID]:
    """The ids of every stored firing."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return {row[0] for row in connection.execute(sa.text("SELECT id FROM firings"))}
    finally:
        engine.dispose()
