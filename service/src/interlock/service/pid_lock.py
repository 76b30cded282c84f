"""An exclusive ``flock`` on a file that names its holder's pid, while a process runs.

The service holds three: its data directory's ``server.lock``
(:mod:`interlock.service.data_dir`), the embedded nats-server store's ``owner.lock``
(:mod:`interlock.service.embedded_nats`) and a SQLite database's ``<file>.lock``
(:mod:`interlock.service.ownership.refusal`). The operating system lets the lock go when
its holder dies, ``kill -9`` included, so a lock never outlives a crash; the file stays
(removing it would race with the next holder). A process that finds the lock taken
reads the holder's pid from the file, for an error that names it.

On Windows there is no ``flock``: the file is opened and nothing is locked.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING or sys.platform != "win32":
    import fcntl

__all__ = ["LockHeld", "LockUnsupported", "PidLock"]


class LockHeld(Exception):
    """Another live process holds the lock.

    Attributes:
        path: The lock file.
        pid: The holder's process id (0 if it could not be read).
    """

    def __init__(self, path: Path, pid: int) -> None:
        self.path = path
        self.pid = pid
        super().__init__(f"{path} is held by pid {pid or '?'}")


class LockUnsupported(OSError):
    """The file system of the lock file takes no ``flock`` (some network mounts)."""


class PidLock:
    """The exclusive lock of ``path``, held from :meth:`acquire` to :meth:`release`.

    Args:
        path: The lock file; created if missing (its folder must exist).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write this process's pid into the file.

        Raises:
            LockHeld: another live process holds it.
            LockUnsupported: the file system cannot lock it.
            OSError: the file cannot be opened or created.
        """
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if sys.platform == "win32":  # pragma: no cover - no flock: one holder is on trust
            self._fd = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise LockHeld(self.path, holder) from None
        except OSError as exc:
            os.close(fd)
            raise LockUnsupported(exc.errno, f"cannot lock {self.path}: {exc}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the lock go; safe to call when it is not held."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None


def _read_pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0)
    except (OSError, ValueError):
        return 0
