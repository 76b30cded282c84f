"""Deployments on remote targets, end to end: ``interlock server`` (embedded NATS, SQLite,
its worker) in a child process, real Airflow 3 and Prefect 3 servers, a local HTTP
receiver.

One rule, ``start-backfill``, starts the deployment ``backfill`` on every
``test.backfill.requested`` event; the tests point ``backfill`` at an Airflow DAG, a
Prefect deployment and an HTTP endpoint (through the API and ``interlock deployments
set-target``) and never change the rule. No Airflow scheduler or Prefect worker runs in
Airflow's scheduler runs for this module (``LocalExecutor`` on the session's SQLite
home, tasks through the API server's execution API), so DAG runs really run: a DAG
paused when its run is triggered keeps it ``queued`` until the test unpauses it. No
Prefect worker runs in the harness: the Prefect test moves the flow run's state through
Prefect's API (``POST /flow_runs/{id}/set_state``), as a worker would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from harness.interlock_server import RunningServer, interlock_server
from harness.receiver import http_receiver
from integration.adapters.airflow.airflow_env import (
    PASSWORD,
    USERNAME,
    AirflowHome,
    ApiServer,
    api_request,
)
from integration.adapters.prefect.prefect_api import PrefectApi
from integration.adapters.prefect.prefect_server import AUTH_STRING
from interlock.adapters.prefect import PrefectConnection

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAG = "interlock_api"
RULES = """
from interlock.rules import Rule, on, run_deployment

backfill = Rule(
    name="start-backfill",
    when=on("test.backfill.requested"),
    then=[run_deployment("backfill", parameters={"day": "{{ event.payload.day }}"})],
)
"""
SERVER_ENV = {
    "INTERLOCK_ENGINE__CONSUMER_MAX_WAIT": "50ms",
    "INTERLOCK_ACTIONS__BACKOFF_INITIAL": "100ms",
    "INTERLOCK_ACTIONS__BACKOFF_MAX": "300ms",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("targets")
    with interlock_server(workdir, rules={"backfill_rules.py": RULES}, env=SERVER_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def airflow_scheduler(airflow_home: AirflowHome, airflow_api: ApiServer) -> Iterator[None]:
    """``airflow scheduler`` with the LocalExecutor for this module, stopped afterwards."""
    environ = {
        **airflow_home.environ,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{airflow_api.url}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    }
    log = airflow_home.directory / "scheduler.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(airflow_home.venv / "bin" / "airflow"), "scheduler"],
            env=environ,
            cwd=airflow_home.directory,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextlib.contextmanager
def unpaused(airflow_api: ApiServer, dag_id: str) -> Iterator[None]:
    """The DAG unpaused (its queued runs run), paused again afterwards."""
    api_request(airflow_api, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    try:
        yield
    finally:
        api_request(airflow_api, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})


def pause(airflow_api: ApiServer, dag_id: str) -> None:
    api_request(airflow_api, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def airflow_target(
    api: httpx.Client, airflow_api: ApiServer, airflow_scheduler: None
) -> dict[str, Any]:
    """The ``test-airflow`` connection, and ``backfill`` created on the DAG ``interlock_api``."""
    fields = {"url": airflow_api.url, "username": USERNAME, "password": PASSWORD}
    ok(
        api.post(
            "/api/connections", json={"name": "test-airflow", "kind": "airflow", "fields": fields}
        )
    )
    target = {
        "type": "airflow",
        "connection": "test-airflow",
        "dag_id": DAG,
        "conf": {"source": "interlock"},
    }
    ok(api.post("/api/deployments", json={"name": "backfill", "target": target}))
    return target


def ok(response: httpx.Response) -> Any:
    assert response.is_success, response.text
    return response.json()


def request_backfill(api: httpx.Client, day: str) -> None:
    """Publish the event the rule fires on (through the API)."""
    event = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": "test.backfill.requested",
        "resource": {"id": "warehouse.sales"},
        "payload": {"day": day},
        "source": "test",
    }
    ok(api.post("/api/events", json=event))


def wait_run(
    api: httpx.Client, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 90
) -> dict[str, Any]:
    """The first run of ``backfill`` for which ``check`` holds, polled through the API."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in ok(api.get("/api/runs", params={"deployment": "backfill"})):
            if check(run):
                return run
        time.sleep(0.2)
    runs = ok(api.get("/api/runs", params={"deployment": "backfill"}))
    raise AssertionError(f"timed out waiting for {what}; runs: {runs}")


def of_day(day: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    def check(run: dict[str, Any]) -> bool:
        return run["parameters"].get("day") == day and all(
            run.get(k) == v for k, v in fields.items()
        )

    return check


def cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.sdk.cli", *args, "--api-url", server.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rule_version(api: httpx.Client) -> int:
    return int(ok(api.get("/api/rules/start-backfill"))["version"])


def test_a_rule_starts_an_airflow_dag_run_and_its_run_mirrors_it_to_completed(
    api: httpx.Client, airflow_api: ApiServer, airflow_target: dict[str, Any]
) -> None:
    ok(api.put("/api/deployments/backfill/target", json={"target": airflow_target}))
    pause(airflow_api, DAG)  # its run waits, queued, until the DAG is unpaused
    request_backfill(api, "2026-12-01")
    run = wait_run(api, of_day("2026-12-01", remote_state="queued"), "the DAG run, queued")
    assert run["state"] == "running"
    dag_run_id = f"interlock__{run['id']}-1"
    assert run["remote_id"] == dag_run_id
    assert run["remote_url"] == f"{airflow_api.url}/dags/{DAG}/runs/{dag_run_id}"
    dag_run = api_request(airflow_api, "GET", f"/api/v2/dags/{DAG}/dagRuns/{dag_run_id}")
    assert dag_run["conf"] == {"source": "interlock", "day": "2026-12-01"}
    assert dag_run["state"] == "queued"

    with unpaused(airflow_api, DAG):  # the scheduler runs its task
        done = wait_run(api, of_day("2026-12-01", state="completed"), "the run to complete")
    tasks = api_request(
        airflow_api, "GET", f"/api/v2/dags/{DAG}/dagRuns/{dag_run_id}/taskInstances"
    )
    assert [(t["task_id"], t["state"]) for t in tasks["task_instances"]] == [("noop", "success")]
    assert (done["remote_id"], done["remote_state"]) == (dag_run_id, "success")
    assert done["message"] == f"DAG run {dag_run_id} of {DAG}: success"
    page = api.get(f"/runs/{run['id']}")  # the web UI's page of the run links to it
    assert page.status_code == 200, page.text
    assert f'<a href="{done["remote_url"]}" rel="noreferrer noopener" target="_blank">' in page.text
    assert f"{dag_run_id}</a> (success)" in page.text


def test_a_failing_dag_run_fails_the_run_naming_its_failed_task(
    api: httpx.Client, airflow_api: ApiServer, airflow_target: dict[str, Any]
) -> None:
    failing = {**airflow_target, "dag_id": "interlock_fail"}
    ok(api.put("/api/deployments/backfill/target", json={"target": failing}))
    with unpaused(airflow_api, "interlock_fail"):
        request_backfill(api, "2026-12-08")
        failed = wait_run(api, of_day("2026-12-08", state="failed"), "the failed DAG run")
    assert failed["remote_state"] == "failed"
    assert failed["message"] == (
        f"DAG run {failed['remote_id']} of interlock_fail: failed (failed: boom)"
    )


def test_set_target_switches_the_same_rule_to_a_prefect_deployment(
    server: RunningServer,
    api: httpx.Client,
    prefect: PrefectConnection,
    airflow_target: dict[str, Any],
) -> None:
    fields = {"url": prefect.api_url, "auth_string": AUTH_STRING}
    ok(
        api.post(
            "/api/connections", json={"name": "test-prefect", "kind": "prefect", "fields": fields}
        )
    )
    flow = f"backfill-{uuid.uuid4().hex[:6]}"
    with PrefectApi(prefect) as prefect_api:
        deployment_id = prefect_api.deployment(flow, "daily", {"region": "eu"})
        version = rule_version(api)
        switched = cli(
            server,
            "deployments",
            "set-target",
            "backfill",
            "prefect",
            "connection=test-prefect",
            f"deployment={flow}/daily",
        )
        assert switched.returncode == 0, switched.stderr
        assert switched.stdout.strip() == (
            f"deployment backfill now runs prefect {flow}/daily (connection test-prefect)"
        )
        assert rule_version(api) == version  # the rule is untouched

        request_backfill(api, "2026-12-02")
        run = wait_run(api, of_day("2026-12-02", remote_state="SCHEDULED"), "the flow run")
        flow_runs = prefect_api.flow_runs(deployment_id)
        assert [f["id"] for f in flow_runs] == [run["remote_id"]]
        assert flow_runs[0]["parameters"] == {"region": "eu", "day": "2026-12-02"}
        assert run["remote_url"] == (
            f"{prefect.base_url.removesuffix('/api')}/runs/flow-run/{run['remote_id']}"
        )

        # What a Prefect worker reports as it runs the flow.
        path = f"/flow_runs/{run['remote_id']}/set_state"
        prefect_api._json("POST", path, {"state": {"type": "RUNNING"}, "force": True})
        running = wait_run(api, of_day("2026-12-02", remote_state="RUNNING"), "RUNNING")
        assert running["state"] == "running"
        prefect_api._json("POST", path, {"state": {"type": "COMPLETED"}, "force": True})
        done = wait_run(api, of_day("2026-12-02", state="completed"), "the run to complete")
        assert done["remote_state"] == "COMPLETED"

        # Cancelling a run whose flow run has not started cancels the flow run.
        request_backfill(api, "2026-12-05")
        waiting = wait_run(api, of_day("2026-12-05", remote_state="SCHEDULED"), "a flow run")
        ok(api.post(f"/api/runs/{waiting['id']}/cancel"))
        deadline = time.monotonic() + 60
        flow_run = f"/flow_runs/{waiting['remote_id']}"
        while prefect_api._json("GET", flow_run)["state"]["type"] != "CANCELLED":
            assert time.monotonic() < deadline, "the flow run was not cancelled in Prefect"
            time.sleep(0.3)


def test_an_http_target_runs_when_the_endpoint_answers(
    api: httpx.Client, airflow_target: dict[str, Any]
) -> None:
    with http_receiver() as receiver:
        fields = {"base_url": receiver.url, "token": "jobs-secret-token"}
        ok(
            api.post(
                "/api/connections", json={"name": "test-jobs", "kind": "http", "fields": fields}
            )
        )
        target = {"type": "http", "connection": "test-jobs", "path": "/jobs/backfill"}
        ok(api.put("/api/deployments/backfill/target", json={"target": target}))
        request_backfill(api, "2026-12-03")
        done = wait_run(api, of_day("2026-12-03", state="completed"), "the http run")
        (received,) = receiver.received("/jobs/backfill")
        assert received.method == "POST"
        assert received.json() == {"day": "2026-12-03"}
        assert received.headers["Authorization"] == "Bearer jobs-secret-token"
        assert received.headers["Idempotency-Key"] == f"{done['id']}-1"
        assert done["remote_state"] == "HTTP 200"
        assert done["remote_url"] == f"{receiver.url}/jobs/backfill"

        receiver.status = 500
        request_backfill(api, "2026-12-04")
        failed = wait_run(api, of_day("2026-12-04", state="failed"), "the failed http run")
        assert (
            failed["message"]
            == f"POST {receiver.url}/jobs/backfill: HTTP 500 Internal Server Error"
        )
        assert "jobs-secret-token" not in str(failed)

        # A failed request is retried by the deployment's policy: a new attempt, a new key.
        ok(api.put("/api/deployments/backfill/policy", json={"policy": {"retries": 1}}))
        try:
            request_backfill(api, "2026-12-06")
            retried = wait_run(api, of_day("2026-12-06", state="failed"), "a retried run")
        finally:
            ok(api.put("/api/deployments/backfill/policy", json={"policy": {}}))
        assert retried["attempt"] == 2
        keys = [r.headers["Idempotency-Key"] for r in receiver.received("/jobs/backfill")]
        assert keys[-2:] == [f"{retried['id']}-1", f"{retried['id']}-2"]

        # A rotated token is sent by the next run, without a restart.
        rotation = {"secrets": {"token": "rotated-token"}}
        ok(api.post("/api/connections/test-jobs/rotate", json=rotation))
        receiver.status = 200
        request_backfill(api, "2026-12-07")
        wait_run(api, of_day("2026-12-07", state="completed"), "the run after the rotation")
        assert receiver.received("/jobs/backfill")[-1].headers["Authorization"] == (
            "Bearer rotated-token"
        )


def test_cancelling_a_run_cancels_its_remote_dag_run(
    api: httpx.Client, airflow_api: ApiServer, airflow_target: dict[str, Any]
) -> None:
    ok(api.put("/api/deployments/backfill/target", json={"target": airflow_target}))
    pause(airflow_api, DAG)  # queued until cancelled
    started = ok(api.post("/api/deployments/backfill/run", json={"parameters": {"day": "cancel"}}))
    run = wait_run(api, lambda r: r["id"] == started["id"] and bool(r["remote_id"]), "the DAG run")
    dag_run_id = run["remote_id"]
    ok(api.post(f"/api/runs/{run['id']}/cancel"))
    deadline = time.monotonic() + 60
    path = f"/api/v2/dags/{DAG}/dagRuns/{dag_run_id}"
    while api_request(airflow_api, "GET", path)["state"] != "failed":
        assert time.monotonic() < deadline, "the DAG run was not stopped in Airflow"
        time.sleep(0.3)
    cancelled = ok(api.get(f"/api/runs/{run['id']}"))
    assert cancelled["state"] == "cancelled"
    said = f"DAG run {dag_run_id} of {DAG} marked failed in Airflow"
    while said not in (log := api.get(f"/api/runs/{run['id']}/logs").text):
        assert time.monotonic() < deadline, log  # written once Airflow has answered
        time.sleep(0.2)


def test_a_remote_run_past_its_timeout_is_cancelled_there_and_fails(
    api: httpx.Client, airflow_api: ApiServer, airflow_target: dict[str, Any]
) -> None:
    ok(api.put("/api/deployments/backfill/target", json={"target": airflow_target}))
    ok(api.put("/api/deployments/backfill/policy", json={"policy": {"timeout": 3}}))
    pause(airflow_api, DAG)  # queued past the timeout
    try:
        started = ok(api.post("/api/deployments/backfill/run", json={"parameters": {"day": "t"}}))
        done = wait_run(
            api, lambda r: r["id"] == started["id"] and r["state"] == "failed", "the timeout"
        )
    finally:
        ok(api.put("/api/deployments/backfill/policy", json={"policy": {}}))
    assert done["message"] == "timed out after 3s (airflow run cancelled)"
    dag_run = api_request(airflow_api, "GET", f"/api/v2/dags/{DAG}/dagRuns/{done['remote_id']}")
    assert dag_run["state"] == "failed"  # it stayed queued (the DAG paused): cancelled at 3 s


def test_set_target_refuses_an_unknown_type_or_a_missing_connection_in_one_line(
    server: RunningServer, api: httpx.Client, airflow_target: dict[str, Any]
) -> None:
    before = ok(api.get("/api/deployments/backfill"))["target"]
    unknown = cli(server, "deployments", "set-target", "backfill", "ftp", "host=x")
    assert unknown.returncode == 1
    assert unknown.stderr.count("\n") == 1, unknown.stderr
    assert (
        "target.type is not a known target type 'ftp' (known: airflow, http, prefect, process)"
        in unknown.stderr
    )
    missing = cli(
        server, "deployments", "set-target", "backfill", "airflow", "connection=nope", "dag_id=x"
    )
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1, missing.stderr
    assert (
        "target.connection must name an existing airflow connection: connection 'nope' "
        "does not exist" in missing.stderr
    )
    wrong_kind = cli(
        server, "deployments", "set-target", "backfill", "prefect", "connection=test-airflow",
        "deployment=a/b",
    )  # fmt: skip
    assert wrong_kind.returncode == 1
    assert "connection 'test-airflow' is of kind airflow, not prefect" in wrong_kind.stderr
    assert ok(api.get("/api/deployments/backfill"))["target"] == before


def test_create_with_any_target_and_set_policy_through_the_cli(
    server: RunningServer, api: httpx.Client
) -> None:
    target = json.dumps({"type": "process", "command": [sys.executable, "-c", "pass"]})
    created = cli(server, "deployments", "create", "nightly", "--target", target)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "deployment nightly created (queue default)"
    policy = cli(
        server, "deployments", "set-policy", "nightly", "--retries", "2", "--retry-delay", "5",
        "--backoff", "2", "--timeout", "60", "--concurrency-limit", "2",
    )  # fmt: skip
    assert policy.returncode == 0, policy.stderr
    assert policy.stdout.strip() == (
        'deployment nightly: {"retries": 2, "retry_delay": 5.0, "backoff": 2.0, '
        '"timeout": 60.0}, concurrency limit 2'
    )
    kept = cli(
        server, "deployments", "set-policy", "nightly", "--no-timeout", "--no-concurrency-limit"
    )
    assert kept.returncode == 0, kept.stderr
    shown = ok(api.get("/api/deployments/nightly"))
    assert (shown["policy"], shown["concurrency_limit"]) == (
        {"retries": 2, "retry_delay": 5.0, "backoff": 2.0},
        None,
    )
    bad = cli(server, "deployments", "set-policy", "nightly", "--retries", "-1")
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1, bad.stderr
    assert "policy.retries must be a whole number 0 to 100" in bad.stderr
    not_json = cli(server, "deployments", "create", "other", "--target", "{nope")
    assert not_json.returncode == 1
    assert "'--target' is not JSON" in not_json.stderr
