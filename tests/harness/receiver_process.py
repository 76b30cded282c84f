"""The asyncio HTTP receiver (``tests/integration/service/actions/receiver.py``) in a
process of its own, for benchmarks: it does not share the measured process's core.

It speaks HTTP/1.1 with keep-alive, as webhook endpoints do. ``count()`` asks it how
many requests arrived; ``stop()`` returns what it recorded: the count per
``Idempotency-Key`` and every request as ``(path, arrival time, body)``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["ReceiverProcess", "Recorded"]

SCRIPT = Path(__file__).resolve().parents[1] / "integration/service/actions/receiver.py"


@dataclass
class Recorded:
    """What the receiver saw, from start to stop."""

    keys: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, float, str]] = field(default_factory=list)
    """``(path, arrival time.time(), body)`` in arrival order."""


class ReceiverProcess:
    """Start with :meth:`start`; the receiver's URL is :attr:`url`."""

    def __init__(self, scratch: Path) -> None:
        self._port_file = scratch / "receiver.port"
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(self._port_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while not self._port_file.exists() or not self._port_file.read_text():
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.05)
        self.port = int(self._port_file.read_text())

    def count(self) -> int:
        """Requests recorded so far."""
        count: int = httpx.get(f"{self.url}/__count", timeout=10).json()["count"]
        return count

    def wait_for(self, count: int, timeout: float = 120) -> None:
        """Wait until ``count`` requests arrived."""
        deadline = time.monotonic() + timeout
        while (seen := self.count()) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{seen} of {count} requests arrived in {timeout:g} s")
            time.sleep(0.05)

    def stop(self) -> Recorded:
        """Stop it; return what it recorded."""
        assert self._process is not None
        out, _ = self._process.communicate(timeout=60)
        report = json.loads(out)
        return Recorded(keys=report["keys"], requests=[tuple(item) for item in report["received"]])
