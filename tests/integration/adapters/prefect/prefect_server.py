"""A real Prefect server for the Prefect adapter's tests, in its own virtualenv.

Prefect's dependencies clash with ours, so it lives in a virtualenv of its own, built
on demand with uv from ``tests/envs/prefect/requirements.txt`` and cached under
``.cache/envs/prefect-<hash>`` in the repository (the hash covers the requirements and
the Python version, so changing either builds a fresh one). The server runs on a free
port with SQLite under a temporary ``PREFECT_HOME`` and with an auth string set, so
credentials are exercised too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from harness.ports import free_port
from interlock.adapters.prefect import PrefectConnection

ROOT = Path(__file__).resolve().parents[4]
REQUIREMENTS = ROOT / "tests" / "envs" / "prefect" / "requirements.txt"
AUTH_STRING = "interlock:prefect-test-secret"
STARTUP_TIMEOUT = 180.0


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        raise RuntimeError("uv is needed to build the Prefect test environment (make setup)")
    return found


def prefect_env() -> Path:
    """The Prefect virtualenv, built once and reused (a file lock guards parallel runs)."""
    python = os.path.realpath(sys.executable)
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    env = ROOT / ".cache" / "envs" / f"prefect-{digest}"
    env.parent.mkdir(parents=True, exist_ok=True)
    stamp = env / ".interlock-complete"
    with (env.parent / f"prefect-{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            shutil.rmtree(env, ignore_errors=True)
            run_env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
            run_env.pop("VIRTUAL_ENV", None)
            for command in (
                [_uv(), "venv", "-q", "--python", python, str(env)],
                [
                    _uv(),
                    "pip",
                    "install",
                    "-q",
                    "--python",
                    str(env / "bin" / "python"),
                    "-r",
                    str(REQUIREMENTS),
                ],
            ):
                done = subprocess.run(
                    command, check=False, env=run_env, capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
            stamp.write_text("ok\n")
    return env


@contextlib.contextmanager
def running_prefect_server(home: Path) -> Iterator[PrefectConnection]:
    """Start ``prefect server start`` and yield its connection once ``/api/health`` answers."""
    env_dir = prefect_env()
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "server.log"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_API_AUTH_STRING": AUTH_STRING,
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_API_AUTH_STRING": AUTH_STRING,
        # Events are replayed once persisted: flushed every 0.5 s, not 5 s, tests wait less.
        "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "0.5",
    }
    environment.pop("VIRTUAL_ENV", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(env_dir / "bin" / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    connection = PrefectConnection(api_url=f"http://127.0.0.1:{port}/api", auth_string=AUTH_STRING)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with {process.returncode}:\n"
                    f"{log_path.read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{connection.api_url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"prefect server not healthy after {STARTUP_TIMEOUT:.0f}s:\n"
                    f"{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield connection
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
