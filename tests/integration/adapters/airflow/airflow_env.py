"""Real Airflow for the Airflow adapter's tests, in its own virtualenv: 3.x and 2.x.

Airflow's dependencies clash with ours, so :func:`airflow_virtualenv` builds a separate
virtualenv per :class:`Release` with uv (``UV_PYTHON_DOWNLOADS=never``, our Python) from
its requirements (``tests/envs/airflow/requirements.txt`` for Airflow 3,
``tests/envs/airflow2/requirements.txt`` for Airflow 2) plus our ``interlock-sdk`` and
``interlock-adapters[airflow]`` installed editable from the workspace (so the plugin
Airflow loads is the code under test). It is cached under
``.cache/envs/<release>-<hash>`` in the repository; the hash covers the requirements, the
two packages' ``pyproject.toml`` (their entry points) and the Python version, and a
``.complete`` marker says the build finished. :class:`AirflowHome` is one
``AIRFLOW_HOME`` (SQLite) with its DAG files, and runs ``airflow`` commands in it;
:class:`ApiServer` is the release's API server on a free port: ``airflow api-server``
(Airflow 3, ``/api/v2``, JWTs) or ``airflow webserver`` (Airflow 2, ``/api/v1``, HTTP
basic authentication).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.ports import free_port

ROOT = Path(__file__).resolve().parents[4]
USERNAME = "interlock"
PASSWORD = "airflow-test-password"

DAGS = """
from datetime import datetime

from {decorators} import dag, task


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


@dataclass(frozen=True)
class Release:
    """One Airflow release under test: where its pins are and how it is driven."""

    name: str
    """The cached environment's name: ``.cache/envs/<name>-<hash>``."""
    requirements: Path
    """The pinned requirements of the release's virtualenv."""
    major: int
    """2 or 3: how the home is configured (auth) and the API server is called."""
    decorators: str
    """The module the DAG file imports ``dag`` and ``task`` from."""
    server: tuple[str, ...]
    """The ``airflow`` command serving the REST API (``--port`` is added)."""
    health: str
    """A path that answers 200 once the API server is up."""
    dags_test: tuple[str, ...] = ()
    """Options of ``airflow dags test``."""


AIRFLOW3 = Release(
    name="airflow",
    requirements=ROOT / "tests" / "envs" / "airflow" / "requirements.txt",
    major=3,
    decorators="airflow.sdk",
    server=("api-server", "--host", "127.0.0.1", "--workers", "1"),
    health="/api/v2/monitor/health",
)
AIRFLOW2 = Release(
    name="airflow2",
    requirements=ROOT / "tests" / "envs" / "airflow2" / "requirements.txt",
    major=2,
    decorators="airflow.decorators",
    server=("webserver", "--hostname", "127.0.0.1", "--workers", "1"),
    health="/health",
    # Through the executor (SequentialExecutor): each task runs in `airflow tasks run
    # --local`, a process of its own, as on a worker. Without it, 2.10's `dags test` runs
    # tasks in-process and records no task start_date (start_date and duration null).
    dags_test=("--use-executor",),
)
AIRFLOW2_8 = Release(
    name="airflow2.8",
    requirements=ROOT / "tests" / "envs" / "airflow2" / "requirements-2.8.txt",
    major=2,
    decorators="airflow.decorators",
    server=("webserver", "--hostname", "127.0.0.1", "--workers", "1"),
    health="/health",
    # 2.8 has no --use-executor: tasks run in the `dags test` process.
)
"""The oldest Airflow 2 supported: its ``on_task_instance_failed`` has no ``error``."""


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        raise RuntimeError("uv is needed to build the Airflow test environment (see Makefile)")
    return found


def _digest(release: Release) -> str:
    hasher = hashlib.sha256()
    for path in (
        release.requirements,
        ROOT / "sdk" / "pyproject.toml",
        ROOT / "adapters" / "pyproject.toml",
    ):
        hasher.update(path.read_bytes())
    hasher.update(sys.version.encode())
    return hasher.hexdigest()[:12]


def airflow_virtualenv(release: Release = AIRFLOW3) -> Path:
    """The cached virtualenv with ``release`` and our packages; built on first use."""
    env = ROOT / ".cache" / "envs" / f"{release.name}-{_digest(release)}"
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
                str(release.requirements),
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
                    f"building the {release.name} test environment failed: {' '.join(command)}\n"
                    f"{result.stdout}\n{result.stderr}"
                )
        marker.write_text("ok\n")
        return env


@dataclass(frozen=True)
class DagTests:
    """The ``airflow dags test`` runs of the session, by DAG id."""

    results: dict[str, subprocess.CompletedProcess[str]]
    offline_spool: Path | None = None
    """The spool of the run made while NATS was down (Airflow 3's session only)."""


class AirflowHome:
    """One ``AIRFLOW_HOME`` with SQLite, our DAG file, and a test user."""

    def __init__(
        self, venv: Path, directory: Path, nats_url: str, release: Release = AIRFLOW3
    ) -> None:
        self.venv = venv
        self.release = release
        self.directory = directory
        self.dags = directory / "dags"
        self.dags.mkdir(parents=True, exist_ok=True)
        (self.dags / "interlock_dags.py").write_text(
            DAGS.replace("{decorators}", release.decorators)
        )
        self.nats_url = nats_url
        self.spool = directory / "spool"
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "INTERLOCK_", "VIRTUAL_ENV", "PYTHON"))
        }
        self.environ: dict[str, str] = {
            **base,
            # Airflow 2's executors start `airflow tasks run` by name.
            "PATH": os.pathsep.join((str(venv / "bin"), base.get("PATH", os.defpath))),
            "AIRFLOW_HOME": str(directory),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "INTERLOCK_NATS_URL": nats_url,
            "INTERLOCK_SPOOL_DIR": str(self.spool),
            # Generous for a loaded test machine: an event spooled by a slow connection
            # would reach the stream only with the next producer.
            "INTERLOCK_PUBLISH_TIMEOUT": "10",
        }
        if release.major >= 3:
            passwords = directory / "passwords.json"
            passwords.write_text(json.dumps({USERNAME: PASSWORD}))
            self.environ.update(
                {
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                    "AIRFLOW__API_AUTH__JWT_SECRET": "interlock-test-jwt-secret-0123456789abcdef",
                }
            )
        else:
            self.environ.update(
                {
                    # /api/v1 with HTTP basic authentication (the user made by prepare()).
                    "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
                    "AIRFLOW__WEBSERVER__SECRET_KEY": "interlock-test-webserver-secret-0123456789",
                }
            )

    def prepare(self) -> None:
        """Migrate the database, serialize the DAGs, and (Airflow 2) create the test user."""
        self.check("db", "migrate")
        self.check("dags", "reserialize")
        if self.release.major < 3:
            self.check(
                "users", "create", "--username", USERNAME, "--password", PASSWORD,
                "--role", "Admin", "--firstname", "Inter", "--lastname", "Lock",
                "--email", "interlock@example.com",
            )  # fmt: skip

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

    def dags_test(
        self, dag_id: str, environ: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``airflow dags test DAG_ID`` with the release's options."""
        return self.run("dags", "test", *self.release.dags_test, dag_id, environ=environ)

    def check(self, *args: str) -> None:
        """Run ``airflow ARGS`` and fail with its output unless it succeeds."""
        result = self.run(*args)
        if result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )


class ApiServer:
    """The release's API server on a free port, for the bridge and the executors."""

    def __init__(self, home: AirflowHome) -> None:
        self.home = home
        self.release = home.release
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.directory / f"{self.release.server[0]}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        """Start it and wait until its health endpoint answers."""
        command = f"airflow {self.release.server[0]}"
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    str(self.home.venv / "bin" / "airflow"),
                    *self.release.server,
                    "--port",
                    str(self.port),
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
                raise RuntimeError(f"{command} exited:\n{self.log.read_text()[-4000:]}")
            health = f"{self.url}{self.release.health}"
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2):
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"{command} not healthy within {timeout:g} s:\n{self.log.read_text()[-4000:]}"
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
    """Call the API server as the test user; return the JSON answer.

    Airflow 3: with a fresh JWT from ``/auth/token``; Airflow 2: with basic authentication.
    """
    with httpx.Client(base_url=server.url, timeout=30) as client:
        headers: dict[str, str] = {}
        basic: httpx.BasicAuth | None = None
        if server.release.major >= 3:
            token = client.post(
                "/auth/token", json={"username": USERNAME, "password": PASSWORD}
            ).json()["access_token"]
            headers["Authorization"] = f"Bearer {token}"
        else:
            basic = httpx.BasicAuth(USERNAME, PASSWORD)
        response = client.request(method, path, json=json_body, headers=headers, auth=basic)
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
