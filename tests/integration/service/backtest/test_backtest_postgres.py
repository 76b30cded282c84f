"""The same self-consistency on PostgreSQL: the live firings read through the API (the
command line) and from the store (the API's jobs) agree with the backtest id for id."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.backtest_recording import Recorded, record
from harness.postgres import PostgresCluster
from interlock.rules.loader import load_paths

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded_on_postgres(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Recorded]:
    with postgres.database() as url, record(tmp_path_factory.mktemp("pg"), url) as done:
        yield done


def _agrees(report: dict[str, Any]) -> None:
    assert report["changed"] is False
    for rule in report["rules"]:
        live = rule["live"]
        assert (live["newly"], live["no_longer"]) == ([], []), rule["rule"]
        assert live["same"] == rule["fired"] + rule["resolved"], rule["rule"]
    assert sum(rule["fired"] for rule in report["rules"]) == 10


def test_the_command_and_a_job_agree_with_the_live_firings(recorded_on_postgres: Recorded) -> None:
    recorded = recorded_on_postgres
    done = recorded.backtest(str(recorded.rules_file), *recorded.span, "--json")
    assert done.returncode == 0, done.stderr
    _agrees(json.loads(done.stdout))

    names = [rule.name for rule in load_paths([recorded.rules_file]).rules]
    span = {"since": recorded.since.isoformat(), "until": recorded.until.isoformat()}
    with httpx.Client(base_url=recorded.server.url, timeout=30) as api:
        job = api.post("/api/backtests", json={"names": names, "warmup": "5m", **span}).json()
        deadline = time.monotonic() + 90
        while job["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
            job = api.get(f"/api/backtests/{job['id']}").json()
    assert job["state"] == "done", job
    _agrees(job["report"])
