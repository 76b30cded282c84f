"""``make run``: ``interlock server`` on embedded defaults with the repository's config/.

It starts its own nats-server child, keeps SQLite and the NATS store under
``.interlock/``, loads ``config/rules`` and ``config/deployments.toml``; then the
README's walkthrough, as written: with no port given to any command (they find the
server in ``.interlock/server.json``), the Airflow DAG event fires the bridge rule, whose
deployment runs on the in-process worker and completes; a finance DAG failing notifies
the ``data-team-slack`` channel, pointed at a local receiver, which gets it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.receiver import http_receiver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
_SERVING = re.compile(r"serving the API at (http://\S+) \(NATS (nats://\S+)\)")


def interlock(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "interlock.sdk.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_embedded_server_runs_the_readme_walkthrough(tmp_path: Path) -> None:
    (tmp_path / "config").symlink_to(ROOT / "config")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["INTERLOCK_API__PORT"] = "0"
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "interlock.sdk.cli", "server"],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=output,
            start_new_session=True,  # a terminal of its own, for the Ctrl-C below
        )
    nats_port = 0
    try:
        deadline = time.monotonic() + 60
        while not (found := _SERVING.search(log.read_text())):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        api, nats_url = found.group(1), found.group(2)
        nats_port = int(nats_url.rsplit(":", 1)[1])
        assert (tmp_path / ".interlock" / "interlock.db").exists()
        assert (tmp_path / ".interlock" / "nats").is_dir()
        interlock(  # no --nats-url: found in .interlock/server.json
            "events", "emit", "airflow.dag_run.succeeded",
            "--resource-id", "airflow.load_sales",
            "--payload", '{"run_id": "manual__1", "dag_id": "load_sales"}',
            env=env, cwd=tmp_path,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            runs = httpx.get(f"{api}/api/runs", params={"deployment": "build-reports"}).json()
            if runs and runs[0]["state"] in {"completed", "failed", "crashed"}:
                break
            assert time.monotonic() < deadline, runs
            time.sleep(0.2)
        assert runs[0]["state"] == "completed", runs
        assert runs[0]["parameters"] == {"run": "manual__1"}
        fired = interlock("firings", "list", env=env, cwd=tmp_path)  # no --api-url either
        assert "load-sales-starts-reports" in fired
        logs = interlock("runs", "logs", runs[0]["id"][:8], env=env, cwd=tmp_path)
        assert "building reports for run manual__1" in logs
        rules = json.loads(interlock("rules", "list", "--json", env=env, cwd=tmp_path))
        assert len(rules) >= 10

        # See a notification: the channel to a local receiver, then a finance DAG fails.
        with http_receiver() as receiver:
            interlock(
                "channels", "add", "data-team-slack", f"json://127.0.0.1:{receiver.port}/data-team",
                env=env, cwd=tmp_path,
            )  # fmt: skip
            interlock(
                "events", "emit", "airflow.dag_run.failed",
                "--resource-id", "airflow.load_sales", "--label", "team=finance",
                "--payload", '{"run_id": "manual__2", "error": "disk full"}',
                env=env, cwd=tmp_path,
            )  # fmt: skip
            [notified] = receiver.wait_for(1, "/data-team", timeout=60)
        said = notified.json()
        assert (said["title"], said["message"]) == (
            "DAG airflow.load_sales failed",
            "run manual__2: disk full",
        )
    finally:
        os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        server.wait(timeout=30)
    said = log.read_text()
    assert server.returncode == 0, said[-2000:]
    # The service stopped first and its nats-server after it, so it never lost NATS ...
    assert "NATS connection error" not in said, said[-2000:]
    assert "disconnected from NATS" not in said, said[-2000:]
    # ... and nothing is left listening.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", nats_port)) != 0
