"""Real Airflow for the Airflow adapter's tests, in its own virtualenv.

Airflow's dependencies clash with ours, so :func:`airflow_virtualenv` builds a separate
virtualenv with uv (``UV_PYTHON_DOWNLOADS=never``, our Python) from
``tests/envs/airflow/requirements.txt`` plus our ``interlock-sdk`` and
``interlock-adapters[airflow]`` installed editable from the workspace (so the plugin
Airflow loads is the code under test). It is cached under
``.cache/envs/airflow-<hash>`` in the repository; the hash covers the requirements, the
two packages' ``pyproject.toml`` (their entry points) and the Python version, and a
``.complete`` marker says the build finished. :class:`AirflowHome` is one
``AIRFLOW_HOME`` (SQLite) with its DAG files, and runs ``airflow`` commands in it;
:class:`ApiServer` is ``airflow api-server`` on a free port.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[4]
REQUIREMENTS = ROOT / "tests" / "envs" / "airflow" / "requirements.txt"
USERNAME = "interlock"
PASSWORD = "airflow-test-password"

DAGS = """
from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def interlock_ok():
    @task
    def extract():
        return 3

    @task
    def load(rows):
        print("loaded", rows)

    load(extract())


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def interlock_fail():
    @task(retries=0)
    def boom():
        raise ValueError("bad row 17 in sales.csv")

    boom()


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def interlock_api():
    @task
    def noop():
        return None

    noop()


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def interlock_offline():
    @task
    def work():
        return "done"

    work()


interlock_ok()
interlock_fail()
interlock_offline()
interlock_api()
"""


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        raise RuntimeError("uv is needed to build the Airflow test environment (see Makefile)")
    return found


def _digest() -> str:
    hasher = hashlib.sha256()
    for path in (
        REQUIREMENTS,
        ROOT / "sdk" / "pyproject.toml",
        ROOT / "adapters" / "pyproject.toml",
    ):
        hasher.update(path.read_bytes())
    hasher.update(sys.version.encode())
    return hasher.hexdigest()[:12]


def airflow_virtualenv() -> Path:
    """The cached virtualenv with Airflow and our packages; built on first use."""
    env = ROOT / ".cache" / "envs" / f"airflow-{_digest()}"
    marker = env / ".complete"
    env.parent.mkdir(parents=True, exist_ok=True)
    with (env.parent / f"{env.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test session may be building it
        if marker.exists():
            return env
        shutil.rmtree(env, ignore_errors=True)
        uv_env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        python = str(env / "bin" / "python")
        for command in (
            [_uv(), "venv", "-q", "--python", sys.executable, str(env)],
            [
                _uv(),
                "pip",
                "install",
                "-q",
                "--python",
                python,
                "-r",
                str(REQUIREMENTS),
                "-e",
                str(ROOT / "sdk"),
                "-e",
                f"{ROOT / 'adapters'}[airflow]",
            ],
        ):
            result = subprocess.run(
                command, env=uv_env, capture_output=True, text=True, timeout=900, check=False
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"building the Airflow test environment failed: {' '.join(command)}\n"
                    f"{result.stdout}\n{result.stderr}"
                )
        marker.write_text("ok\n")
        return env


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class DagTests:
    """The ``airflow dags test`` runs of the session, by DAG id."""

    results: dict[str, subprocess.CompletedProcess[str]]
    offline_spool: Path


class AirflowHome:
    """One ``AIRFLOW_HOME`` with SQLite, our DAG file, and a test user."""

    def __init__(self, venv: Path, directory: Path, nats_url: str) -> None:
        self.venv = venv
        self.directory = directory
        self.dags = directory / "dags"
        self.dags.mkdir(parents=True, exist_ok=True)
        (self.dags / "interlock_dags.py").write_text(DAGS)
        passwords = directory / "passwords.json"
        passwords.write_text(json.dumps({USERNAME: PASSWORD}))
        self.nats_url = nats_url
        self.spool = directory / "spool"
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "INTERLOCK_", "VIRTUAL_ENV", "PYTHON"))
        }
        self.environ: dict[str, str] = {
            **base,
            "AIRFLOW_HOME": str(directory),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": "interlock-test-jwt-secret-0123456789abcdef",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "INTERLOCK_NATS_URL": nats_url,
            "INTERLOCK_SPOOL_DIR": str(self.spool),
            # Generous for a loaded test machine: an event spooled by a slow connection
            # would reach the stream only with the next producer.
            "INTERLOCK_PUBLISH_TIMEOUT": "10",
        }

    def run(
        self, *args: str, environ: Mapping[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` here (output captured; the caller checks the return code)."""
        return subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args],
            env={**self.environ, **(environ or {})},
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def check(self, *args: str) -> None:
        """Run ``airflow ARGS`` and fail with its output unless it succeeds."""
        result = self.run(*args)
        if result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )


class ApiServer:
    """``airflow api-server`` on a free port, for the bridge and the executors."""

    def __init__(self, home: AirflowHome) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.directory / "api-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        """Start it and wait until ``/api/v2/monitor/health`` answers."""
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    str(self.home.venv / "bin" / "airflow"),
                    "api-server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                ],
                env=self.home.environ,
                cwd=self.home.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"airflow api-server exited:\n{self.log.read_text()[-4000:]}")
            health = f"{self.url}/api/v2/monitor/health"
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2):
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"airflow api-server not healthy within {timeout:g} s:\n{self.log.read_text()[-4000:]}"
        )

    def stop(self) -> None:
        """Stop it and the workers it started (its own process group)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def api_request(
    server: ApiServer, method: str, path: str, json_body: object = None
) -> dict[str, object]:
    """Call the API server as the test user (a fresh JWT); return the JSON answer."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        token = client.post(
            "/auth/token", json={"username": USERNAME, "password": PASSWORD}
        ).json()["access_token"]
        response = client.request(
            method, path, json=json_body, headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        answer: dict[str, object] = response.json()
        return answer


@contextlib.contextmanager
def running_api_server(home: AirflowHome) -> Iterator[ApiServer]:
    """An :class:`ApiServer`, stopped afterwards."""
    server = ApiServer(home)
    server.start()
    try:
        yield server
    finally:
        server.stop()
