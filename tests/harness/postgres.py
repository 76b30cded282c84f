"""A throwaway PostgreSQL cluster for tests: ``initdb`` + ``pg_ctl`` in a temporary directory.

The cluster trusts every local connection, listens on 127.0.0.1 on a free port, keeps its
unix socket inside its own directory and runs with ``fsync=off`` (committed data survives
a server crash, not an OS crash): fast, private, and gone after ``close()``. ``initdb``
and ``pg_ctl`` refuse to run as root, so as root they run through ``runuser -u postgres
--`` on a directory owned by that user.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import psycopg
from psycopg import sql

from harness.ports import free_port

__all__ = ["PostgresCluster", "PostgresClusterError", "PostgresNotInstalled", "find_pg_bindir"]

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
_OS_USER_WHEN_ROOT = "postgres"
_COMMAND_TIMEOUT = 120.0
_TAIL_LINES = 25


class PostgresNotInstalled(FileNotFoundError):
    """The PostgreSQL server binaries (``initdb``, ``pg_ctl``) are not installed."""

    def __init__(self) -> None:
        super().__init__(
            "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin "
            "or on PATH; install the postgresql package: apt-get install -y postgresql"
        )


class PostgresClusterError(RuntimeError):
    """A cluster command failed; the message ends with its output and the server log."""


def find_pg_bindir() -> Path:
    """Return the directory holding ``initdb`` and ``pg_ctl``: the newest Debian one, else PATH."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresNotInstalled


class PostgresCluster:
    """A private PostgreSQL cluster; use as a context manager (``start()`` ... ``close()``).

    ``stop()``, ``start()`` and ``restart()`` keep the data and the port, for fault tests.
    ``url`` is the SQLAlchemy URL of the ``postgres`` database; ``database()`` makes a
    fresh database for one test and drops it afterwards.
    """

    def __init__(self) -> None:
        self._bindir = find_pg_bindir()
        self._root = Path(tempfile.mkdtemp(prefix="interlock-pg-"))
        self._data = self._root / "data"
        self._log = self._root / "postgres.log"
        self._port = free_port()
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(_OS_USER_WHEN_ROOT)
            except KeyError:
                self.close()
                raise PostgresClusterError(
                    f"running as root, so PostgreSQL must run as the {_OS_USER_WHEN_ROOT!r} "
                    "user, which does not exist; install the postgresql package"
                ) from None
            os.chown(self._root, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", _OS_USER_WHEN_ROOT, "--"]

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1."""
        return self._port

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database."""
        return self.url_for("postgres")

    @property
    def running(self) -> bool:
        """Whether the server is up (``pg_ctl status``)."""
        if not self._data.exists():
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    def url_for(self, database: str) -> str:
        """The SQLAlchemy URL (psycopg 3 driver) of ``database`` in this cluster."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self._port}/{database}"

    def start(self) -> None:
        """Start the server (creating the cluster the first time) and wait until it is ready."""
        if not self._data.exists():
            self._initdb()
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self._log))
        logger.info("PostgreSQL ready at 127.0.0.1:%d (%s)", self._port, self._root)

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server; ``mode="immediate"`` is a crash (recovery runs on next start)."""
        if self.running:
            self._pg_ctl("stop", "-w", "-t", "60", "-m", mode)

    def restart(self) -> None:
        """Stop the server and start it again on the same port with the same data."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete the cluster's directory."""
        try:
            if self._root.exists():
                self.stop()
        finally:
            shutil.rmtree(self._root, ignore_errors=True)

    @contextmanager
    def database(self) -> Iterator[str]:
        """Create a fresh, uniquely named database; yield its URL; drop it afterwards."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield self.url_for(name)
        finally:
            if not self.running:  # a fault test may have left the server down
                self.start()
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            self._admin(drop.format(sql.Identifier(name)))

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(
            host="127.0.0.1", port=self._port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(statement)

    def _initdb(self) -> None:
        self._run(
            self._bindir / "initdb",
            *("-D", str(self._data), "-U", SUPERUSER, "--auth=trust"),
            *("--encoding=UTF8", "--locale=C", "--no-sync"),
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self._port),
            "unix_socket_directories": f"'{self._root}'",
            # Speed without lying to fault tests: a commit still reaches the OS before it
            # returns (synchronous_commit stays on), so it survives a server crash; only
            # an OS crash could lose it. synchronous_commit=off loses the last commits.
            "fsync": "off",
            "full_page_writes": "off",
        }
        with (self._data / "postgresql.conf").open("a") as conf:
            conf.write("\n# interlock test harness\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(self._bindir / "pg_ctl", "-D", str(self._data), *args, check=check)

    def _run(
        self, binary: Path, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self._as_owner, str(binary), *args],
            cwd=self._root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            raise PostgresClusterError(
                f"{binary.name} {' '.join(args)} failed with status {result.returncode}\n"
                f"{result.stdout}{result.stderr}--- server log ---\n{self._log_tail()}"
            )
        return result

    def _log_tail(self) -> str:
        if not self._log.exists():
            return "(no log yet)"
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-_TAIL_LINES:])


def _version(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))
