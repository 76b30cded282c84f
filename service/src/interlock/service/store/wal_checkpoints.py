"""Checkpointing SQLite's write-ahead log from a thread of its own.

A commit in WAL mode appends pages to the ``-wal`` file; a *checkpoint* copies them back
into the database file and syncs it to disk. By default SQLite runs one inside whichever
commit takes the log past 1,000 pages, and the service's connections run on the event
loop's thread (:mod:`~interlock.service.store.sqlite_inline`): measured here, that made
the average commit 101 µs instead of 44 µs, and one commit in a few hundred took 18 ms,
the loop stopped for all of it.

So the service's connections turn automatic checkpoints off
(``PRAGMA wal_autocheckpoint=0``), and a :class:`WalCheckpointer` thread, with a
connection of its own, runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval``
seconds: passive checkpoints never wait for, nor block, the writers. SQLite also
checkpoints when the last connection to a database closes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["WalCheckpointer"]

logger = logging.getLogger(__name__)


class WalCheckpointer:
    """A daemon thread checkpointing one SQLite database's WAL periodically.

    Args:
        database: The database file.
        interval: Seconds between checkpoints.
    """

    def __init__(self, database: str, *, interval: float = 0.5) -> None:
        self.database = database
        self.interval = interval
        self.checkpoints = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="interlock-wal-checkpoints", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current checkpoint."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._stopping.clear()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stopping.wait(self.interval):
                try:
                    if connection is None:
                        connection = sqlite3.connect(self.database, timeout=0, isolation_level=None)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as error:  # busy, or the file is gone: try again later
                    logger.debug("WAL checkpoint of %s skipped: %s", self.database, error)
        finally:
            if connection is not None:
                connection.close()
