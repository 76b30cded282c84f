"""A real ``interlock server`` (embedded NATS, SQLite) that ran a mix of rules for a while.

For the backtest's tests (issue 18). :func:`record` starts it, publishes a scripted
scenario over about sixteen seconds of wall-clock time (heartbeats that stop and
resume, jobs that finish, fail to finish, finish late, thresholds, sequences, compound
matches, payload values), waits for the live service to judge what fell due, and
hands over what a backtest of the same span needs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from harness.interlock_server import RunningServer, interlock_server
from interlock.sdk import NatsOptions, PublisherConfig
from interlock.sdk.event import Event
from interlock.sdk.sync import SyncPublisher

RULES = """
from interlock.rules import (
    Rule, absent, after, all_of, emit, heartbeat, on, payload, sequence,
)

noted = [emit("test.noted", "{{ rule.name }}", payload={"key": "{{ key }}"})]

failed = Rule(name="job-failed", when=on("job.failed", for_each="resource.id"), then=noted)

big_loads = Rule(
    name="big-loads",
    when=on("job.done", where=payload.rows >= 100, for_each="resource.id"),
    then=noted,
)

landed = Rule(
    name="files-landed",
    when=on("file.landed", at_least=3, within="5s", for_each="resource.id"),
    then=noted,
)

silent = Rule(
    name="table-silent",
    when=absent("db.table.updated", by=heartbeat("3s"), for_each="resource.id",
                keys=["warehouse.sales"]),
    then=noted,
    on_resolved=noted,
)

unfinished = Rule(
    name="job-unfinished",
    when=absent("job.finished", by=after("job.started", within="2s"), for_each="resource.id"),
    then=noted,
    on_resolved=noted,
)

ordered = Rule(
    name="a-then-b",
    when=sequence("seq.a", "seq.b", within="5s", for_each="resource.id"),
    then=noted,
)

both = Rule(
    name="x-and-y",
    when=all_of(on("part.x"), on("part.y"), within="5s", for_each="resource.id"),
    then=noted,
)
"""

SCENARIO: list[tuple[float, str, str, dict[str, Any]]] = [
    # (seconds after the start, event, resource id, payload)
    *[(float(t), "db.table.updated", "warehouse.sales", {}) for t in range(6)],
    *[(float(t), "db.table.updated", "warehouse.sales", {}) for t in range(11, 17)],
    (0.2, "job.failed", "r0", {}),  # in the warm-up
    (2.2, "job.started", "j1", {}),
    (3.2, "job.finished", "j1", {}),
    (4.2, "job.started", "j2", {}),  # never finishes
    (6.7, "job.started", "j3", {}),
    (9.7, "job.finished", "j3", {}),  # a second late
    (3.1, "file.landed", "A", {}),
    (3.4, "file.landed", "A", {}),
    (3.7, "file.landed", "A", {}),
    (3.5, "file.landed", "B", {}),
    (3.8, "file.landed", "B", {}),
    (7.1, "seq.a", "k1", {}),
    (7.6, "seq.b", "k1", {}),
    (8.1, "seq.b", "k2", {}),
    (8.6, "seq.a", "k2", {}),
    (9.1, "part.x", "c1", {}),
    (10.1, "part.y", "c1", {}),
    (2.4, "job.done", "t1", {"rows": 10}),
    (4.4, "job.done", "t1", {"rows": 60}),
    (6.4, "job.done", "t2", {"rows": 70}),
    (8.4, "job.done", "t2", {"rows": 120}),
    (12.4, "job.done", "t3", {"rows": 150}),
    (5.3, "job.failed", "r1", {}),
    (12.3, "job.failed", "r2", {}),
]
SINCE_OFFSET = 1.0
"""``since`` is this long after the start: the first heartbeat is in the warm-up."""


@dataclass
class Recorded:
    """A server that ran the scenario, and the span to backtest."""

    server: RunningServer
    rules_file: Path
    since: datetime
    until: datetime
    events: list[Event] = field(default_factory=list)

    def backtest(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``interlock rules backtest ARGS`` as a user would, on this server's data dir."""
        variables = {
            **{k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")},
            "INTERLOCK_DATA_DIR": str(self.server.workdir / "data"),
            **(env or {}),
        }
        return subprocess.run(
            [sys.executable, "-m", "interlock.sdk.cli", "rules", "backtest", *args],
            env=variables,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    @property
    def span(self) -> list[str]:
        """``--since``, ``--until`` and a warm-up reaching before the server started."""
        return [
            "--since",
            self.since.isoformat(),
            "--until",
            self.until.isoformat(),
            "--warmup",
            "5m",
        ]


def _play(publisher: SyncPublisher, start: float) -> list[Event]:
    published = []
    for offset, name, resource, data in sorted(SCENARIO, key=lambda step: step[0]):
        delay = start + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        event = Event(event=name, resource={"id": resource}, payload=data, source="test")
        publisher.publish_many([event])
        published.append(event)
    return published


@contextmanager
def record(workdir: Path, database_url: str | None = None) -> Iterator[Recorded]:
    """Run the server over the scenario; yield it, still running (see the module).

    Its store is SQLite in ``workdir``, or the database at ``database_url``.
    """
    env = None
    if database_url:  # not embedded any more: the service needs a key of its own
        key = Fernet.generate_key().decode()
        env = {"INTERLOCK_DATABASE_URL": database_url, "INTERLOCK_SECRET_KEY": key}
    with interlock_server(workdir, rules={"mix.py": RULES}, env=env) as server:
        config = PublisherConfig(
            nats=NatsOptions(servers=(server.nats_url,)), source="test", spool_dir=workdir / "spool"
        )
        publisher = SyncPublisher(config)
        try:
            start_wall = datetime.now(UTC)
            start = time.monotonic()
            events = _play(publisher, start)
        finally:
            publisher.close()
        until = datetime.now(UTC)
        time.sleep(2.5)  # the live service judges what fell due before ``until``
        since = start_wall + timedelta(seconds=SINCE_OFFSET)
        yield Recorded(
            server=server,
            rules_file=workdir / "rules" / "mix.py",
            since=since,
            until=until,
            events=events,
        )
