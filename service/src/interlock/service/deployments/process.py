"""One run's subprocess: start it with its log, stop it, and say how it ended.

The process starts in a new session (its own process group), so stopping it reaches
the children it started too: SIGTERM to the group, then SIGKILL after a grace period.
Its stdout and stderr both go to the run's log file, appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import IO

from interlock.service.deployments.targets import ProcessTarget
from interlock.service.store import RunState

__all__ = ["RunProcess", "append_log", "last_line", "outcome"]

_TAIL_BYTES = 4096
_LINE_LIMIT = 300


def _open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def append_log(path: Path, text: str) -> None:
    """Append a line to a run's log (the worker's own notes: a start failure)."""
    with _open_log(path) as log:
        log.write(text.encode() + b"\n")


class RunProcess:
    """The subprocess of one run.

    Args:
        process: The started process.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, target: ProcessTarget, env: dict[str, str], log_path: Path) -> RunProcess:
        """Start ``target`` with its output appended to ``log_path``.

        Raises:
            OSError: it could not be started (no such program, no such directory).
        """
        log = _open_log(log_path)
        try:
            process = await asyncio.create_subprocess_exec(
                *target.argv(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                cwd=target.cwd,
                env=env,
                start_new_session=True,
            )
        finally:
            log.close()  # the child holds its own descriptor
        return cls(process)

    @property
    def pid(self) -> int:
        """The process id (also its process group id)."""
        return self.process.pid

    async def wait(self) -> int:
        """Wait for it to end; its return code (negative: killed by that signal)."""
        return await self.process.wait()

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to its process group (nothing if it is gone)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    async def terminate(self, grace: float) -> None:
        """SIGTERM its group; SIGKILL it if it has not ended after ``grace`` seconds."""
        if self.process.returncode is not None:
            return
        self.signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.process.wait()), grace)
        except TimeoutError:
            self.signal_group(signal.SIGKILL)
            await self.process.wait()
        else:
            # The leader ended; children it left behind in the group end too.
            self.signal_group(signal.SIGKILL)


def last_line(log_path: Path) -> str:
    """The last non-empty line of a log (at most 300 characters), or ``""``."""
    try:
        with log_path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - _TAIL_BYTES))
            tail = log.read().decode(errors="replace")
    except OSError:
        return ""
    for raw in reversed(tail.splitlines()):
        line = raw.strip()
        if line:
            return line if len(line) <= _LINE_LIMIT else line[: _LINE_LIMIT - 1] + "…"
    return ""


def outcome(returncode: int, log_path: Path) -> tuple[RunState, str]:
    """The final state and message of a run whose process ended with ``returncode``."""
    tail = last_line(log_path)
    suffix = f": {tail}" if tail else ""
    if returncode == 0:
        return "completed", "exit code 0"
    if returncode > 0:
        return "failed", f"exit code {returncode}{suffix}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return "crashed", f"killed by {name}{suffix}"
