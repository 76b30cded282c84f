"""Backtests as jobs of the running service: ``/api/backtests`` (issue 18).

Against the server of :mod:`harness.backtest_recording` (the same recording as the
command line's tests): a job over the stored rules agrees with their live firings; a
job over a rules document with a lowered threshold reports the predicted firings; one
job runs at a time; bad input is a 4xx problem document.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from harness.backtest_recording import Recorded
from interlock.rules.loader import load_paths
from interlock.rules.rule import dump_rules

pytestmark = pytest.mark.slow


def _wait(api: httpx.Client, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.get(f"/api/backtests/{job_id}").json()
        if job["state"] != "running":
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def _span(recorded: Recorded) -> dict[str, str]:
    return {
        "since": recorded.since.isoformat(),
        "until": recorded.until.isoformat(),
        "warmup": "5m",
    }


def test_a_job_over_the_stored_rules_agrees_with_their_live_firings(recorded: Recorded) -> None:
    names = [rule.name for rule in load_paths([recorded.rules_file]).rules]
    with httpx.Client(base_url=recorded.server.url, timeout=30) as api:
        started = api.post("/api/backtests", json={"names": names, **_span(recorded)})
        assert started.status_code == 202, started.text
        assert started.json()["state"] == "running"
        busy = api.post("/api/backtests", json={"names": names, **_span(recorded)})
        job = _wait(api, started.json()["id"])
        listed = api.get("/api/backtests").json()

    assert busy.status_code == 409, busy.text
    assert "one runs at a time" in busy.json()["detail"]
    assert job["state"] == "done", job
    report = job["report"]
    assert job["progress"]["events"] > 0
    assert report["events"] == len([e for e in recorded.events if e.event != "test.noted"])
    assert [rule["live"]["newly"] + rule["live"]["no_longer"] for rule in report["rules"]] == [
        []
    ] * len(names)
    assert sum(rule["live"]["same"] for rule in report["rules"]) >= 10
    assert [item["id"] for item in listed] == [job["id"]]
    assert listed[0]["state"] == "done"


def test_a_job_over_a_rules_document_reports_what_would_change(recorded: Recorded) -> None:
    changed = recorded.rules_file.with_name("changed_api.py")
    changed.write_text(recorded.rules_file.read_text().replace(">= 100", ">= 50"))
    rules = [rule for rule in load_paths([changed]).rules if rule.name == "big-loads"]
    with httpx.Client(base_url=recorded.server.url, timeout=30) as api:
        started = api.post(
            "/api/backtests",
            content=b'{"rules": '
            + dump_rules(rules)
            + b', "since": "%s", "until": "%s"}'
            % (recorded.since.isoformat().encode(), recorded.until.isoformat().encode()),
            headers={"content-type": "application/json"},
        )
        assert started.status_code == 202, started.text
        job = _wait(api, started.json()["id"])
        gone = api.delete(f"/api/backtests/{job['id']}")
        after = api.get(f"/api/backtests/{job['id']}")

    assert job["state"] == "done", job
    (rule,) = job["report"]["rules"]
    assert (len(rule["live"]["newly"]), len(rule["live"]["no_longer"])) == (2, 0)
    assert (gone.status_code, after.status_code) == (204, 404)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"names": ["job-failed"], "since": "last tuesday"}, 400, "--since 'last tuesday'"),
        ({"names": ["no-such-rule"], "since": "1h"}, 404, "no-such-rule"),
        ({"since": "1h"}, 400, "either rules"),
        ({"rules": [{"name": "x"}], "since": "1h"}, 422, ""),
        ({"names": ["job-failed"], "since": "1h", "until": "2999-01-01T00:00:00Z"}, 400, "future"),
    ],
)
def test_bad_requests_are_problem_documents(
    recorded: Recorded, body: dict[str, Any], status: int, says: str
) -> None:
    with httpx.Client(base_url=recorded.server.url, timeout=30) as api:
        answer = api.post("/api/backtests", json=body)

    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert says in answer.json()["detail"]
