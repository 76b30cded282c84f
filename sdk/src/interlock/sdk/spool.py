"""The on-disk spool: events a producer handed over while NATS could not take them.

A spool is a directory of append-only segment files, one wire-JSON event per line, in
the order they were handed over. Each producer process writes its own segments and holds
an exclusive ``flock`` on each while it lives; a segment whose lock is free belongs to a
process that ended, and the next producer to open the spool adopts it and sends it on.
Segments are drained oldest first; the position of the next unsent line is kept in a
``<segment>.offset`` file, so a crash between sending and recording re-sends a few
events, which JetStream's duplicate window (``Nats-Msg-Id``) stores once.

A spool is not thread-safe: one event loop (one thread) owns it.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from interlock.sdk.errors import SpoolError, SpoolFullError

__all__ = ["Spool", "SpoolBatch"]

logger = logging.getLogger(__name__)

_SUFFIX = ".jsonl"
_READ_CHUNK = 1 << 20


class _Segment:
    """One segment file, locked by this process."""

    def __init__(self, path: Path, fd: int, *, writable: bool) -> None:
        self.path = path
        self.fd = fd
        self.writable = writable
        self.size = os.fstat(fd).st_size
        self.offset = self._read_offset()

    @property
    def offset_path(self) -> Path:
        return self.path.with_suffix(".offset")

    def _read_offset(self) -> int:
        try:
            return min(int(self.offset_path.read_text()), self.size)
        except (FileNotFoundError, ValueError):
            return 0

    def save_offset(self) -> None:
        temporary = self.path.with_suffix(".offset.tmp")
        temporary.write_text(str(self.offset))
        temporary.replace(self.offset_path)

    @property
    def drained(self) -> bool:
        return self.offset >= self.size

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.offset_path.unlink(missing_ok=True)
        os.close(self.fd)

    def release(self) -> None:
        os.close(self.fd)


class SpoolBatch:
    """Lines read from the oldest segment, to be sent and then committed."""

    def __init__(self, segment: _Segment, records: list[bytes], ends: list[int]) -> None:
        self._segment = segment
        self.records = records
        self._ends = ends

    def __len__(self) -> int:
        return len(self.records)


class Spool:
    """A bounded, ordered, crash-safe queue of encoded events in a directory.

    Args:
        directory: Where segments live; created if missing.
        max_bytes: Total size of all segments in the directory beyond which
            :meth:`append` raises :class:`SpoolFullError`.
        fsync: fsync after every append (survives power loss, costs a disk flush).
        segment_bytes: Size at which a new segment is started.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        fsync: bool = False,
        segment_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(self.directory, f"cannot create the directory: {exc}") from exc
        self._segments: list[_Segment] = []
        self._counter = itertools.count()
        self._foreign_bytes = 0
        self._closed = False
        self.adopt_orphans()

    # -- state -------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        """Bytes not yet sent in the segments this process holds."""
        return sum(segment.size - segment.offset for segment in self._segments)

    @property
    def has_pending(self) -> bool:
        """Whether any held segment still has unsent lines."""
        return any(not segment.drained for segment in self._segments)

    @property
    def used_bytes(self) -> int:
        """Bytes on disk counted against ``max_bytes`` (this and other processes)."""
        return self._foreign_bytes + sum(segment.size for segment in self._segments)

    # -- writing -----------------------------------------------------------------------

    def append(self, records: Sequence[bytes]) -> None:
        """Append encoded events, in order, all or none.

        Raises:
            SpoolFullError: they would take the spool past ``max_bytes``; none was stored.
            SpoolError: the disk refused the write; none was stored.
        """
        if self._closed:
            raise SpoolError(self.directory, "the spool is closed")
        data = b"".join(record + b"\n" for record in records)
        if not data:
            return
        if self.used_bytes + len(data) > self.max_bytes:
            self._rescan_foreign()
            if self.used_bytes + len(data) > self.max_bytes:
                raise SpoolFullError(self.directory, self.used_bytes, self.max_bytes)
        segment = self._writable_segment()
        try:
            written = os.write(segment.fd, data)
            while written < len(data):
                written += os.write(segment.fd, data[written:])
            if self.fsync:
                os.fsync(segment.fd)
        except OSError as exc:
            # Cut back to the last whole line so a partial write is not read as an event.
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, segment.size)
            raise SpoolError(segment.path, f"write failed: {exc}") from exc
        segment.size += len(data)
        if segment.size >= self.segment_bytes:
            segment.writable = False

    def _writable_segment(self) -> _Segment:
        if self._segments and self._segments[-1].writable:
            return self._segments[-1]
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._counter):06d}"
        temporary = self.directory / f"{name}.tmp"
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Renamed only once locked, so no other process can adopt it meanwhile.
        path = self.directory / f"{name}{_SUFFIX}"
        temporary.rename(path)
        segment = _Segment(path, fd, writable=True)
        self._segments.append(segment)
        return segment

    # -- reading -----------------------------------------------------------------------

    def read_batch(self, max_records: int) -> SpoolBatch | None:
        """Return up to ``max_records`` unsent lines from the oldest segment, or ``None``."""
        self._drop_drained()
        for segment in self._segments:
            if segment.drained:
                continue
            records: list[bytes] = []
            ends: list[int] = []
            position = segment.offset
            chunk = _READ_CHUNK
            while len(records) < max_records and position < segment.size:
                data = os.pread(segment.fd, min(chunk, segment.size - position), position)
                newline = data.rfind(b"\n")
                if newline < 0:
                    if position + len(data) >= segment.size:
                        self._quarantine_tail(segment, position)
                        break
                    chunk *= 2
                    continue
                start = 0
                for line_end in _line_ends(data, newline):
                    line = data[start:line_end]
                    start = line_end + 1
                    if line:
                        records.append(line)
                        ends.append(position + start)
                    if len(records) >= max_records:
                        break
                position += start
            if records:
                return SpoolBatch(segment, records, ends)
        return None

    def commit(self, batch: SpoolBatch, sent: int) -> None:
        """Record that the first ``sent`` lines of ``batch`` are stored in JetStream."""
        if sent <= 0:
            return
        segment = batch._segment
        segment.offset = batch._ends[sent - 1]
        if segment.drained and not segment.writable:
            self._segments.remove(segment)
            segment.remove()
        else:
            segment.save_offset()

    def _drop_drained(self) -> None:
        for segment in list(self._segments):
            if segment.drained:
                # A drained writable segment is retired too; the next append starts anew.
                self._segments.remove(segment)
                segment.remove()

    def _quarantine_tail(self, segment: _Segment, position: int) -> None:
        """Move an unterminated last line (a write torn by a crash) aside, loudly."""
        if segment.writable:
            return  # our own segment: a line is always written whole before we read it
        tail = os.pread(segment.fd, segment.size - position, position)
        quarantine = segment.path.with_suffix(".torn")
        quarantine.write_bytes(tail)
        logger.error(
            "spool segment %s ends with %d bytes that are not a whole event (a write torn "
            "by a crash); kept in %s for inspection, not sent",
            segment.path,
            len(tail),
            quarantine,
        )
        segment.size = position

    # -- other processes' segments -----------------------------------------------------

    def adopt_orphans(self) -> int:
        """Take over segments whose writer has ended; return how many were adopted."""
        held = {segment.path for segment in self._segments}
        adopted: list[_Segment] = []
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            if path in held:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live producer holds it and drains it itself
                continue
            if os.fstat(fd).st_nlink == 0:
                os.close(fd)  # drained and removed by its owner just now
                continue
            adopted.append(_Segment(path, fd, writable=False))
        if adopted:
            logger.info(
                "adopted %d spooled segment(s) of ended producers in %s",
                len(adopted),
                self.directory,
            )
            # Older segments first; ours (created after start) stay after them.
            self._segments = adopted + self._segments
        self._rescan_foreign()
        return len(adopted)

    def _rescan_foreign(self) -> None:
        held = {segment.path for segment in self._segments}
        total = 0
        for path in self.directory.glob(f"*{_SUFFIX}"):
            if path not in held:
                with contextlib.suppress(FileNotFoundError):
                    total += path.stat().st_size
        self._foreign_bytes = total

    def close(self) -> None:
        """Release every segment; unsent lines stay on disk for the next producer."""
        if self._closed:
            return
        self._closed = True
        for segment in self._segments:
            if segment.drained:
                segment.remove()
            else:
                segment.save_offset()
                segment.release()
        self._segments.clear()


def _line_ends(data: bytes, last: int) -> list[int]:
    ends = []
    index = data.find(b"\n")
    while 0 <= index <= last:
        ends.append(index)
        index = data.find(b"\n", index + 1)
    return ends
