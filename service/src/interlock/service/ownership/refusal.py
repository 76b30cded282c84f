"""A second server on one SQLite file or on another server's embedded NATS is refused.

SQLite and the embedded nats-server belong to one server: replicas need PostgreSQL and
a NATS server or cluster (:data:`~interlock.service.settings.SCALE_OUT_NEEDS`). Two
servers on one data directory are refused already (:mod:`interlock.service.data_dir`);
this module refuses the other ways to share them by mistake:

- :class:`SqliteLock`: an exclusive ``flock`` on ``<database file>.lock`` for the
  server's life, so a second server given the same ``database_url`` (with another data
  directory) stops at start, naming the first one's pid;
- :func:`refuse_embedded_nats_of_another`: the embedded nats-server is started with the
  server name :data:`EMBEDDED_NATS_NAME`; a server whose ``nats_url`` points at one (a
  server of its own would be started for ``embedded``) stops at start. Workers,
  producers and command lines still connect to it: only a second server is refused.

Errors::

    InterlockError
    ├── ConfigurationError          nats_url is another server's embedded nats-server
    └── SqliteInUse (RuntimeError)  another live server has the SQLite database open
"""

from __future__ import annotations

from pathlib import Path

from nats.aio.client import Client as NATS
from sqlalchemy.engine import make_url

from interlock.sdk.errors import ConfigurationError, InterlockError
from interlock.service.pid_lock import LockHeld, LockUnsupported, PidLock
from interlock.service.settings import SCALE_OUT_NEEDS

__all__ = ["EMBEDDED_NATS_NAME", "SqliteInUse", "SqliteLock", "refuse_embedded_nats_of_another"]

EMBEDDED_NATS_NAME = "interlock-embedded"
"""The server name of every embedded nats-server (in its INFO: ``server_name``)."""


class SqliteInUse(InterlockError, RuntimeError):
    """Another running interlock server has the SQLite database ``path`` open.

    Attributes:
        path: The database file.
        pid: The holder's process id (0 if it could not be read).
    """

    def __init__(self, path: Path, pid: int) -> None:
        self.path = path
        self.pid = pid
        holder = f"pid {pid}" if pid else "a process whose pid could not be read"
        super().__init__(
            f"the SQLite database {path} is in use by another interlock server ({holder}): "
            f"stop that one, or give this one its own database; {SCALE_OUT_NEEDS}"
        )


class SqliteLock:
    """The exclusive lock of a SQLite database file, held from :meth:`acquire` to :meth:`release`.

    Args:
        database_url: The service's database URL; anything but a SQLite file is no-op.
    """

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        name = url.database if url.get_backend_name() == "sqlite" else None
        self.path = Path(name).resolve().with_name(Path(name).name + ".lock") if name else None
        if name in (None, "", ":memory:"):
            self.path = None
        self._lock = PidLock(self.path) if self.path is not None else None

    def acquire(self) -> None:
        """Take the lock (nothing to do for PostgreSQL).

        Raises:
            SqliteInUse: another live process holds it.
        """
        if self._lock is None:
            return
        self._lock.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except LockHeld as held:
            raise SqliteInUse(held.path.with_name(held.path.stem), held.pid) from None
        except LockUnsupported:  # a file system without locks: the data directory's lock remains
            return

    def release(self) -> None:
        """Let the lock go (the file stays)."""
        if self._lock is not None:
            self._lock.release()


def refuse_embedded_nats_of_another(nc: NATS, url: str) -> None:
    """Refuse to run a server on ``nc`` if it is another server's embedded nats-server.

    Raises:
        ConfigurationError: it is (its INFO names it :data:`EMBEDDED_NATS_NAME`).
    """
    info = getattr(nc, "_server_info", None) or {}  # nats-py keeps INFO private
    if str(info.get("server_name", "")).startswith(EMBEDDED_NATS_NAME):
        raise ConfigurationError(
            "nats_url",
            f"{url} is the embedded nats-server of another interlock server, which "
            f"belongs to that server alone: {SCALE_OUT_NEEDS}",
        )
