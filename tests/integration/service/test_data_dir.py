"""``interlock server`` and its data directory, through the real command line:

- one server per data directory: a second is refused in one line naming the first's pid,
  and the first keeps its NATS (the second used to stop it as a leftover);
- the embedded nats-server keeps its port across restarts, and command lines on the
  machine find it (and the API) in the data directory: no port to type;
- ``interlock worker`` beside an embedded server needs no flag nor secret key;
- a port clash of the API and a missing ``--config`` are one line and exit status 1.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

_SERVING = re.compile(r"serving the API at (http://\S+) \(NATS (nats://\S+)\)")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d (INFO|WARNING) ")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["INTERLOCK_API__PORT"] = "0"
    return env


def interlock(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.sdk.cli", *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Running:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, api: str, nats: str) -> None:
        self.process, self.log, self.api, self.nats = process, log, api, nats

    @property
    def nats_port(self) -> int:
        return int(self.nats.rsplit(":", 1)[1])


@contextmanager
def server(cwd: Path, *args: str, name: str = "server") -> Iterator[Running]:
    log = cwd / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "interlock.sdk.cli", "server", *args],
            cwd=cwd,
            env=clean_env(),
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not (found := _SERVING.search(log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield Running(process, log, found.group(1), found.group(2))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)


def nats_pid(data_dir: Path) -> int:
    return int((data_dir / "nats" / "nats-server.pid").read_text())


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()  # no rules, no deployments: a quick start
    return tmp_path


def test_a_second_server_on_a_data_directory_is_refused_and_the_first_runs_on(
    workdir: Path,
) -> None:
    with server(workdir) as first:
        nats = nats_pid(workdir / ".interlock")
        second = interlock("server", cwd=workdir)
        assert second.returncode == 1, second.stderr
        assert second.stderr.splitlines()[-1] == (
            "interlock: error: the data directory .interlock is in use by another interlock "
            f"server (pid {first.process.pid}): stop that one first, or give this one its "
            "own --data-dir"
        )
        assert "Traceback" not in second.stderr
        assert alive(nats)  # the first server's nats-server was left alone
        time.sleep(0.5)
        health = httpx.get(f"{first.api}/api/health").json()
        assert health == {"status": "ok", "nats": "ok", "database": "ok"}
    assert "disconnected" not in first.log.read_text()
    # Once it stopped, its data directory is free again.
    with server(workdir, name="again") as again:
        assert again.process.pid != first.process.pid


def test_the_embedded_nats_keeps_its_port_and_command_lines_find_it(workdir: Path) -> None:
    with socket.socket() as default_port:  # 4222 taken (by us, or already by someone)
        try:
            default_port.bind(("127.0.0.1", 4222))
            default_port.listen()
        except OSError:
            pass
        with server(workdir) as first:
            assert first.nats_port != 4222
            server_json = json.loads((workdir / ".interlock" / "server.json").read_text())
            assert server_json == {
                "pid": first.process.pid,
                "api_url": first.api,
                "nats_url": first.nats,
            }
    # 4222 is free again (unless someone else holds it): the port it had wins.
    with server(workdir, name="second") as second:
        assert second.nats == first.nats
        # No --nats-url, no --api-url: both come from the data directory.
        emitted = interlock(
            "events", "emit", "job.finished", "--resource-id", "nightly", cwd=workdir
        )
        assert emitted.returncode == 0, emitted.stderr
        event_id = json.loads(emitted.stdout)["id"]
        tailed = interlock(
            "events", "tail", "job.>", "--all", "--count", "1", cwd=workdir, timeout=30
        )
        assert tailed.returncode == 0, tailed.stderr
        assert json.loads(tailed.stdout)["id"] == event_id
        listed = interlock("rules", "list", "--json", cwd=workdir)
        assert (listed.returncode, json.loads(listed.stdout)) == (0, [])


def test_a_worker_beside_an_embedded_server_needs_no_flags(workdir: Path) -> None:
    with server(workdir):
        log = workdir / "worker.log"
        with log.open("wb") as output:
            worker = subprocess.Popen(
                [sys.executable, "-m", "interlock.sdk.cli", "worker", "--queue", "default"],
                cwd=workdir,
                env=clean_env(),
                stdout=output,
                stderr=output,
            )
        try:
            deadline = time.monotonic() + 30
            while "serving default" not in log.read_text():
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        assert worker.returncode == 0, log.read_text()
    # Without a running server there, it says what to do, in one line.
    alone = interlock("worker", cwd=workdir)
    assert alone.returncode == 1
    assert alone.stderr.startswith(
        "interlock: error: nats_url: no server running embedded on the data directory .interlock"
    )
    assert alone.stderr.count("\n") == 1


def test_a_port_taken_by_another_process_is_one_line(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = interlock("server", "--port", str(port), cwd=workdir)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"interlock: error: api.port: 127.0.0.1:{port} is in use by another process: stop "
        "it, or choose another port (--port, INTERLOCK_API__PORT or [api] port)"
    ]
    assert not (workdir / ".interlock" / "nats").exists()  # refused before starting NATS


def test_a_missing_or_invalid_config_file_is_named(workdir: Path) -> None:
    done = interlock("server", "--config", "typo.toml", cwd=workdir)
    assert (done.returncode, done.stderr) == (
        1,
        "interlock: error: --config: typo.toml does not exist (give the path of a TOML "
        "settings file)\n",
    )
    (workdir / "bad.toml").write_text("[engine]\nconsumer_batch_size = 0\n")
    done = interlock("server", "--config", "bad.toml", cwd=workdir, timeout=30)
    assert done.returncode == 1
    assert done.stderr.endswith("(in bad.toml)\n"), done.stderr


def test_server_logs_carry_their_time_and_can_be_json(workdir: Path) -> None:
    with server(workdir) as text:
        pass
    lines = [line for line in text.log.read_text().splitlines() if " interlock." in line]
    assert lines
    assert all(_TIMESTAMP.match(line) for line in lines), lines[:3]

    with server(workdir, "--log-format", "json", name="json") as structured:
        pass
    records = [
        json.loads(line) for line in structured.log.read_text().splitlines() if line.startswith("{")
    ]
    assert any(r["message"].startswith("interlock service running") for r in records)
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
