"""``interlock worker --api-url``: a worker that holds only the API's URL and a worker key.

A real ``interlock server`` (embedded NATS, SQLite, its own worker off) and real
``interlock worker`` processes whose environment names no database and no NATS:

- 20 runs on a queue limited to 2 at once all complete, never more than 2 running (each
  process writes when it starts and ends), while the API restarts in the middle; their
  logs are read through the API;
- a worker killed with SIGKILL has its run marked crashed once its lease passes (found
  by another API worker);
- an http target runs with its connection read through the API at each call (a
  rotated token is the next call's);
- log chunks are appended once (a repeat or an overlap is skipped), and only the
  worker a run runs on records its end;
- scopes: a worker key reads nothing else, no other key is a worker's; a wrong key
  stops the worker at once with one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.interlock_server import RunningServer, interlock_server
from harness.ports import free_port
from harness.receiver import http_receiver

pytestmark = pytest.mark.slow

INTERLOCK = [sys.executable, "-m", "interlock.sdk.cli"]

STEP = textwrap.dedent("""
    import json, os, sys, time
    parameters = json.loads(os.environ["INTERLOCK_PARAMETERS"])
    journal = parameters["journal"]
    def note(what):
        with open(journal, "a") as out:
            out.write(f"{what} {parameters['n']} {time.time()}\\n")
    note("start")
    print("step", parameters["n"], "ran", flush=True)
    time.sleep(parameters.get("seconds", 0.4))
    note("end")
""")


def _deployments(step: Path) -> str:
    return textwrap.dedent(f"""
        [queues.limited]
        concurrency_limit = 2

        [deployments.step]
        queue = "limited"
        target = {{ type = "process", command = [{sys.executable!r}, {str(step)!r}] }}
    """)


def _key(workdir: Path, name: str, scope: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["INTERLOCK_DATA_DIR"] = str(workdir / "data")
    done = subprocess.run(
        [*INTERLOCK, "keys", "create", name, "--scope", scope],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def _plane(tmp_path: Path) -> tuple[Path, Path, str, str]:
    """The step script, the server's directory, an admin key and a worker key."""
    step = tmp_path / "step.py"
    step.write_text(STEP)
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    return (
        step,
        server_dir,
        _key(server_dir, "admin", "admin"),
        _key(server_dir, "etl-worker", "worker"),
    )


class Api:
    """The API with an admin key."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.is_success, (response.status_code, response.text)
        return response.json() if response.content else None

    def run(self, id_: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call("GET", f"/api/runs/{id_}")
        return found

    def wait(self, id_: str, *states: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (run := self.run(id_))["state"] not in states:
            assert time.monotonic() < deadline, f"run {id_} stayed {run['state']}: {run}"
            time.sleep(0.1)
        return run


@contextmanager
def api_worker(
    url: str, token: str, workdir: Path, name: str, *, lease: str = "30s"
) -> Iterator[subprocess.Popen[bytes]]:
    """``interlock worker --api-url``; its environment names no database, NATS or key file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["INTERLOCK_API_KEY"] = token
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [
            *INTERLOCK,
            "worker",
            "--api-url",
            url,
            "--queue",
            "limited",
            "--name",
            name,
            "--concurrency",
            "4",
            "--poll-interval",
            "0.1",
            "--lease",
            lease,
            "--data-dir",
            str(workdir),
        ],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=log,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _most_at_once(journal: Path) -> int:
    changes = []
    for line in journal.read_text().splitlines():
        what, _, at = line.split()
        changes.append((float(at), 1 if what == "start" else -1))
    running = most = 0
    for _, change in sorted(changes, key=lambda c: (c[0], c[1])):  # an end before a start
        running += change
        most = max(most, running)
    return most


def _server(workdir: Path, port: int, step: Path) -> Any:
    return interlock_server(
        workdir,
        deployments=_deployments(step),
        env={"INTERLOCK_API__PORT": str(port), "INTERLOCK_EMBEDDED_WORKER": "false"},
    )


def test_twenty_runs_at_most_two_at_once_through_an_api_restart(tmp_path: Path) -> None:
    step, server_dir, admin, worker_key = _plane(tmp_path)
    journal = tmp_path / "journal.txt"
    journal.touch()
    port = free_port()
    server: RunningServer
    with _server(server_dir, port, step) as server:
        api = Api(server.url, admin)
        ids = [
            api.call(
                "POST",
                "/api/deployments/step/run",
                json={"parameters": {"n": n, "journal": str(journal)}},
            )["id"]
            for n in range(20)
        ]
        with api_worker(server.url, worker_key, tmp_path / "worker", "api-1") as worker:
            deadline = time.monotonic() + 120
            while journal.read_text().count("end") < 6:
                assert time.monotonic() < deadline, journal.read_text()
                assert worker.poll() is None
                time.sleep(0.1)
            server.stop()  # the API restarts while runs are running and waiting
            time.sleep(1.0)
            api.close()
            with _server(server_dir, port, step) as again:
                api = Api(again.url, admin)
                for id_ in ids:
                    run = api.wait(id_, "completed", "failed", "crashed", timeout=120)
                    assert run["state"] == "completed", run
                assert worker.poll() is None  # it outlived the restart
                log = api.http.get(f"/api/runs/{ids[0]}/logs")
                assert log.status_code == 200, log.text
                assert "step 0 ran" in log.text
                last = api.http.get(f"/api/runs/{ids[-1]}/logs")
                assert "step 19 ran" in last.text
                api.close()
    starts = journal.read_text().count("start")
    assert starts == 20, journal.read_text()  # each run ran once: no claim was repeated
    assert _most_at_once(journal) == 2  # the queue's limit, held over the restart


def test_a_killed_api_worker_has_its_run_marked_crashed(tmp_path: Path) -> None:
    step, server_dir, admin, worker_key = _plane(tmp_path)
    journal = tmp_path / "journal.txt"
    with _server(server_dir, free_port(), step) as server:
        api = Api(server.url, admin)
        run = api.call(
            "POST",
            "/api/deployments/step/run",
            json={"parameters": {"n": 1, "journal": str(journal), "seconds": 60}},
        )
        with api_worker(server.url, worker_key, tmp_path / "w1", "doomed", lease="2s") as doomed:
            api.wait(run["id"], "running")
            doomed.kill()
            doomed.wait()
        assert api.run(run["id"])["state"] == "running"
        with api_worker(server.url, worker_key, tmp_path / "w2", "survivor", lease="2s"):
            crashed = api.wait(run["id"], "crashed", timeout=60)
        assert crashed["message"].startswith("its worker stopped renewing its lease (2s)")
        assert "survivor" in crashed["message"]
        api.close()


def test_a_worker_key_runs_runs_and_nothing_else(tmp_path: Path) -> None:
    step, server_dir, admin, worker_key = _plane(tmp_path)
    with _server(server_dir, free_port(), step) as server:
        as_worker = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {worker_key}"}
        )
        as_admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"})
        with as_worker, as_admin:
            _scopes(as_worker, as_admin)
        # A wrong key: the worker says so in one line and stops.
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
        env["INTERLOCK_API_KEY"] = "il_wrong"
        done = subprocess.run(
            [*INTERLOCK, "worker", "--api-url", server.url, "--data-dir", str(tmp_path / "w")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "refused this worker's key" in lines[0]
        assert "il_wrong" not in lines[0]


def _scopes(as_worker: httpx.Client, as_admin: httpx.Client) -> None:
    assert as_worker.get("/api/runs").status_code == 403
    assert as_worker.post("/api/worker/states", json={"runs": []}).status_code == 200
    refused = as_admin.post("/api/worker/states", json={"runs": []})
    assert refused.status_code == 403
    assert "this needs worker" in refused.json()["detail"]


def test_an_api_worker_runs_an_http_target_with_the_connection_as_it_is_now(
    tmp_path: Path,
) -> None:
    step, server_dir, admin, worker_key = _plane(tmp_path)
    with (
        http_receiver() as receiver,
        _server(server_dir, free_port(), step) as server,
        api_worker(server.url, worker_key, tmp_path / "w", "api-1"),
    ):
        api = Api(server.url, admin)
        fields = {"base_url": receiver.url, "token": "jobs-secret-token"}
        api.call(
            "POST", "/api/connections", json={"name": "jobs", "kind": "http", "fields": fields}
        )
        target = {"type": "http", "connection": "jobs", "path": "/jobs/backfill"}
        api.call(
            "POST", "/api/deployments", json={"name": "call", "queue": "limited", "target": target}
        )
        first = api.call("POST", "/api/deployments/call/run", json={"parameters": {"day": 1}})
        done = api.wait(first["id"], "completed", "failed", "crashed")
        assert done["state"] == "completed", done
        assert done["remote_state"] == "HTTP 200"  # recorded through the worker API
        assert done["remote_url"] == f"{receiver.url}/jobs/backfill"
        (received,) = receiver.received("/jobs/backfill")
        assert received.headers["Authorization"] == "Bearer jobs-secret-token"
        # Rotated through the API: the worker's next call uses the new secret.
        api.call("POST", "/api/connections/jobs/rotate", json={"secrets": {"token": "rotated"}})
        second = api.call("POST", "/api/deployments/call/run", json={"parameters": {"day": 2}})
        assert api.wait(second["id"], "completed", "failed", "crashed")["state"] == "completed"
        assert receiver.received("/jobs/backfill")[-1].headers["Authorization"] == (
            "Bearer rotated"
        )
        api.close()


def test_log_chunks_are_appended_once_and_only_the_owner_records_the_end(
    tmp_path: Path,
) -> None:
    step, server_dir, admin, worker_key = _plane(tmp_path)
    with _server(server_dir, free_port(), step) as server:
        api = Api(server.url, admin)
        started = api.call("POST", "/api/deployments/step/run", json={"parameters": {"n": 0}})
        worker = Api(server.url, worker_key)
        api.call("POST", "/api/queues/limited/pause")
        paused = worker.call("POST", "/api/worker/claim", json={"worker": "manual", "limit": 5})
        assert paused == []  # a paused queue gives nothing
        api.call("POST", "/api/queues/limited/resume")
        (claimed,) = worker.call("POST", "/api/worker/claim", json={"worker": "manual", "limit": 5})
        assert claimed["id"] == started["id"]
        assert worker.call("POST", "/api/worker/claim", json={"worker": "x", "limit": 5}) == []

        def send(offset: int, data: bytes) -> int:
            size: int = worker.call(
                "POST",
                f"/api/worker/runs/{claimed['id']}/log",
                params={"worker": "manual", "offset": offset},
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )["size"]
            return size

        assert send(0, b"line one\n") == 9
        assert send(0, b"line one\n") == 9  # a repeat (its answer was lost): skipped
        assert send(5, b"one\nline two\n") == 18  # overlapping: only what is new
        assert send(40, b"far ahead") == 18  # a gap: not written, the size says so
        assert api.http.get(f"/api/runs/{claimed['id']}/logs").text == "line one\nline two\n"

        body = {"worker": "intruder", "state": "completed", "message": "done"}
        refused = worker.http.post(f"/api/worker/runs/{claimed['id']}/finish", json=body)
        assert refused.status_code == 409
        assert "not running on worker intruder" in refused.json()["detail"]
        body["worker"] = "manual"
        assert (
            worker.call("POST", f"/api/worker/runs/{claimed['id']}/finish", json=body)["state"]
            == "completed"
        )
        again = worker.http.post(f"/api/worker/runs/{claimed['id']}/finish", json=body)
        assert again.status_code == 409  # it ended: nobody changes it any more
        worker.close()
        api.close()
