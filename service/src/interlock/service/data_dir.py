"""One server per data directory: ``<data_dir>/server.lock``.

A data directory holds one server's SQLite database, JetStream store, spool, run logs and
secret key; a second server on it would stop the first one's nats-server as a leftover
and fight it for its ports. So :class:`DataDirLock` takes an exclusive ``flock`` on
``<data_dir>/server.lock`` for the server's whole life and writes its pid there. The
operating system releases the lock when the process ends, however it ends (``kill -9``
included), so a stale file never blocks a start; the lock's descriptor is not inherited
by child processes (nats-server, runs), so none of them keeps it after the server dies.

What the server tells local command lines (its URLs) is ``server.json`` beside it, see
:mod:`interlock.sdk.local_server`.

Errors::

    InterlockError
    └── DataDirInUse (RuntimeError)   another live server holds the lock (its pid named)
"""

from __future__ import annotations

import logging
from pathlib import Path

from interlock.sdk.errors import ConfigurationError, InterlockError
from interlock.service.pid_lock import LockHeld, LockUnsupported, PidLock

__all__ = ["LOCK_FILE", "DataDirInUse", "DataDirLock"]

logger = logging.getLogger(__name__)

LOCK_FILE = "server.lock"


class DataDirInUse(InterlockError, RuntimeError):
    """Another running server holds the data directory.

    Attributes:
        data_dir: The directory.
        pid: The holder's process id (0 if it could not be read).
    """

    def __init__(self, data_dir: Path, pid: int) -> None:
        self.data_dir = data_dir
        self.pid = pid
        holder = f"pid {pid}" if pid else "a process whose pid could not be read"
        super().__init__(
            f"the data directory {data_dir} is in use by another interlock server "
            f"({holder}): stop that one first, or give this one its own --data-dir"
        )


class DataDirLock:
    """The exclusive lock of one data directory, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._lock = PidLock(self.path)

    def acquire(self) -> None:
        """Take the lock and write this process's pid into it.

        Raises:
            DataDirInUse: another live process holds it.
            ConfigurationError: the directory or the lock file cannot be created.
        """
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except LockHeld as held:
            raise DataDirInUse(self.data_dir, held.pid) from None
        except LockUnsupported as exc:  # a file system without locks (some network mounts)
            raise ConfigurationError(
                "data_dir", f"cannot lock {self.path} ({exc}); use a local directory"
            ) from exc
        except OSError as exc:
            raise ConfigurationError("data_dir", f"cannot create {self.path}: {exc}") from exc

    def release(self) -> None:
        """Let the lock go (the file stays: removing it would race with a new holder)."""
        self._lock.release()

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock.held
