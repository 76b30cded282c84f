"""Rule changes across replicas (issue 19): made on any replica, run by the engine's owner.

Real processes: two ``interlock server`` replicas on one nats-server and one PostgreSQL
database. Replica ``a`` owns the engine, ``b`` stands by. A rule applied through ``b``
(through its HTTP API) is announced in the lease bucket and loaded by ``a``'s engine
within :data:`BOUND` seconds (well under the 10 s reconcile, so the announcement is what
brings it), and fires there; pausing it through ``b`` stops ``a`` firing it. A restart
of the standby does not apply its ``config/rules`` over the rules changed through the API.
Each replica's metrics name it (``interlock_replica_info``) and the leases it holds.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from harness.replicas import ReplicaProcess, publish_events
from interlock.rules import Rule, on
from interlock.rules.rule import dump_rules
from interlock.sdk.event import Event

pytestmark = pytest.mark.slow

BOUND = 3.0
"""Seconds a rule change through the standby may take to reach the owner's engine."""
ENV = {
    "INTERLOCK_REPLICAS__LEASE_TTL": "3s",
    "INTERLOCK_ENGINE__CONSUMER_MAX_WAIT": "50ms",
}


def _replicas(
    tmp_path: Path, nats_url: str, database_url: str, rules: dict[str, str] | None = None
) -> tuple[ReplicaProcess, ReplicaProcess]:
    key = Fernet.generate_key().decode()
    a, b = (
        ReplicaProcess(
            tmp_path / name,
            name,
            nats_url=nats_url,
            database_url=database_url,
            secret_key=key,
            rules=rules,
            env=ENV,
        )
        for name in ("a", "b")
    )
    a.start()
    a.wait_role("owner", 30)
    b.start()
    b.wait_role("standby", 30)
    return a, b


def _apply(replica: ReplicaProcess, rule: Rule) -> dict[str, Any]:
    answer = httpx.post(
        f"{replica.url}/api/rules",
        content=dump_rules([rule]),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    answer.raise_for_status()
    change: dict[str, Any] = answer.json()["changes"][0]
    return change


def _status(replica: ReplicaProcess, name: str) -> dict[str, Any]:
    answer = httpx.get(f"{replica.url}/api/rules/{name}", timeout=5)
    if answer.status_code == 404:
        return {}
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def _wait_loaded(replica: ReplicaProcess, name: str, *, version: int, enabled: bool) -> float:
    """Wait until ``replica``'s engine runs ``name`` at ``version``; return the seconds."""
    started = time.monotonic()
    while True:
        shown = _status(replica, name)
        status = shown.get("status", {})
        if (
            shown.get("version") == version
            and status.get("loaded")
            and status.get("enabled") is enabled
        ):
            return time.monotonic() - started
        if time.monotonic() - started > 15:
            raise AssertionError(f"{replica.name} shows {shown} for {name}")
        time.sleep(0.01)


def _mark(n: int) -> Event:
    return Event(
        id=uuid.uuid4(),
        occurred=datetime.now(UTC),
        event="sync.mark",
        resource={"id": f"r{n}"},
        payload={"n": n},
        source="test",
    )


def _firings(database_url: str, rule: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = sa.text("SELECT count(*) FROM firings WHERE rule = :rule")
            return int(connection.execute(query, {"rule": rule}).scalar_one())
    finally:
        engine.dispose()


def _wait_firings(database_url: str, rule: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (found := _firings(database_url, rule)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{found} firings of {rule}, not {count}, after {timeout} s")
        time.sleep(0.05)


def test_a_rule_applied_through_the_standby_fires_on_the_owner_and_pauses_there(
    tmp_path: Path, nats_url: str, postgres_url: str
) -> None:
    a, b = _replicas(tmp_path, nats_url, postgres_url)
    spool = tmp_path / "spool"
    try:
        rule = Rule(name="via-standby", when=on("sync.mark"), then=[])
        assert _apply(b, rule)["change"] == "created"
        took = _wait_loaded(a, "via-standby", version=1, enabled=True)
        assert took < BOUND, f"the owner loaded the rule {took:.2f} s after the apply"
        publish_events(nats_url, [_mark(1)], spool)
        _wait_firings(postgres_url, "via-standby", 1, BOUND + 5)
        assert a.role() == "owner"
        assert b.role() == "standby"

        paused = httpx.post(f"{b.url}/api/rules/via-standby/pause", timeout=10)
        paused.raise_for_status()
        took = _wait_loaded(a, "via-standby", version=1, enabled=False)
        assert took < BOUND, f"the owner paused the rule {took:.2f} s after the pause"
        publish_events(nats_url, [_mark(2)], spool)
        time.sleep(2.0)
        assert _firings(postgres_url, "via-standby") == 1, "it fired on the owner while paused"

        resumed = httpx.post(f"{b.url}/api/rules/via-standby/resume", timeout=10)
        resumed.raise_for_status()
        _wait_loaded(a, "via-standby", version=1, enabled=True)
        publish_events(nats_url, [_mark(3)], spool)
        _wait_firings(postgres_url, "via-standby", 2, BOUND + 5)
    finally:
        b.stop()
        a.stop()
    assert "changed through another replica" in a.output()


RULES_DIR = """
from interlock.rules import Rule, on

from_files = Rule(name="from-files", when=on("sync.mark"), then=[], description="{text}")
"""


def test_a_restarted_standby_does_not_apply_its_rules_dir_over_api_changes(
    tmp_path: Path, nats_url: str, postgres_url: str
) -> None:
    rules = {"sync.py": RULES_DIR.format(text="as in the files")}
    a, b = _replicas(tmp_path, nats_url, postgres_url, rules)
    try:
        assert _status(b, "from-files")["version"] == 1  # applied once, by the owner
        changed = Rule(name="from-files", when=on("sync.mark"), then=[], description="by api")
        assert _apply(a, changed)["change"] == "updated"
        b.stop()
        b.start()
        b.wait_role("standby", 30)
        shown = _status(a, "from-files")
    finally:
        b.stop()
        a.stop()
    assert shown["version"] == 2
    assert shown["rule"]["description"] == "by api"


def test_each_replica_names_itself_and_its_leases_in_its_metrics(
    tmp_path: Path, nats_url: str, postgres_url: str
) -> None:
    a, b = _replicas(tmp_path, nats_url, postgres_url)
    try:
        scraped = {r.name: httpx.get(f"{r.url}/metrics", timeout=5).text for r in (a, b)}
    finally:
        b.stop()
        a.stop()
    for name, text in scraped.items():
        lines = set(text.splitlines())
        assert f'interlock_replica_info{{replica="{name}"}} 1.0' in lines
        owner = "1.0" if name == "a" else "0.0"
        assert f'interlock_replica_lease_owner{{lease="engine"}} {owner}' in lines
        assert f'interlock_replica_lease_owner{{lease="scheduler"}} {owner}' in lines
