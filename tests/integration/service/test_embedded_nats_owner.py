"""An embedded nats-server never outlives its owner, and never shares its store with one
that did: two servers on one JetStream store would corrupt it.

Real processes throughout: the owner is a Python child killed with SIGKILL (as the
out-of-memory killer would), the leftover a nats-server started without the safeguard.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nats.js.api import StreamConfig

from harness.nats import nats_client
from harness.ports import free_port
from interlock.service.embedded_nats import EmbeddedNatsServer, NatsStoreInUse, find_nats_server

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's"
)

OWNER = """
import sys, time
from pathlib import Path
from interlock.service.embedded_nats import EmbeddedNatsServer
server = EmbeddedNatsServer(Path(sys.argv[1]), port=0)
server.start()
print(server.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_server_stops_when_its_owner_is_killed(tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "store")], stdout=subprocess.PIPE, text=True
    )
    nats_pid = 0
    try:
        assert owner.stdout is not None
        nats_pid = int(owner.stdout.readline())
        assert alive(nats_pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert wait_until_gone(nats_pid), "nats-server outlived the process that started it"
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
        if nats_pid and alive(nats_pid):  # the test failed: leave no server behind
            os.kill(nats_pid, signal.SIGKILL)
    log = (tmp_path / "nats-server.log").read_text()
    assert "Server Exiting" in log  # it shut down (on SIGTERM), it was not killed


async def test_a_server_left_on_the_store_is_stopped_before_a_new_one_starts(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    port = free_port()
    leftover = start_leftover(store, port)
    try:
        async with nats_client(f"nats://127.0.0.1:{port}") as client:
            await client.jetstream().add_stream(StreamConfig(name="KEPT", subjects=["kept.>"]))
            await client.jetstream().publish("kept.one", b"1")

        with EmbeddedNatsServer(store, port=0) as server:
            assert leftover.wait(timeout=10) == 0  # stopped cleanly, before the new one ran
            assert server.pid != leftover.pid
            async with nats_client(server.url) as client:
                info = await client.jetstream().stream_info("KEPT")
                assert info.state.messages == 1  # the store came through intact
    finally:
        leftover.kill()
        leftover.wait()


def test_a_stale_pid_file_names_no_process_to_stop(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "nats-server.pid").write_text(str(os.getpid()))  # a live process, not a server
    with EmbeddedNatsServer(store, port=0) as server:
        assert server.running
    assert alive(os.getpid())


def start_leftover(store: Path, port: int) -> subprocess.Popen[bytes]:
    """A nats-server on ``store`` as an owner killed before the safeguard would leave it."""
    pid_file = store / "nats-server.pid"
    argv = [str(find_nats_server()), "-a", "127.0.0.1", "-p", str(port), "-js"]
    leftover = subprocess.Popen(
        [*argv, "-sd", str(store), "-P", str(pid_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not _accepts(port):
        if time.monotonic() > deadline:
            leftover.kill()
            raise AssertionError("the leftover nats-server did not start")
        time.sleep(0.02)
    return leftover


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_live_owners_server_is_never_stopped(tmp_path: Path) -> None:
    store = tmp_path / "store"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(store)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        nats_pid = int(owner.stdout.readline())
        with pytest.raises(NatsStoreInUse) as refused:
            EmbeddedNatsServer(store, port=0).start()
        assert refused.value.owner == owner.pid
        assert str(refused.value).startswith(
            f"the NATS store {store} is in use by process {owner.pid}, which runs a "
            "nats-server on it: stop that process first"
        )
        assert alive(nats_pid)  # the live owner's server was left alone
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
    assert wait_until_gone(nats_pid)
    with EmbeddedNatsServer(store, port=0) as server:  # its owner gone, the store is free
        assert server.running
