"""A webhook receiver as small internal services write them: Python's ``http.server``.

``HTTPServer`` (one request at a time) or ``ThreadingHTTPServer`` (a thread per
connection) with their defaults — a listen backlog of 5 (``request_queue_size``),
HTTP/1.0 (a new connection per request) — in a process of its own, so that its accept
loop competes for nothing with the test's event loop. Under a burst it accepts slowly:
connections beyond the backlog wait in the kernel (Linux drops their SYN, and the
client tries again after 1, 3, 7, 15 s) or are reset.

It records each request's ``Idempotency-Key`` and the most requests it was handling at
once (``peak``). Run it with ``async with BacklogReceiver(...) as receiver``; ``stop()``
returns what it saw.

    python backlog_receiver.py PORT_FILE [--delay SECONDS] [--backlog N] [--threaded]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self

__all__ = ["BacklogReceiver", "Seen"]


@dataclass
class Seen:
    """What the receiver saw, from start to stop."""

    keys: Counter[str] = field(default_factory=Counter)
    """Requests per ``Idempotency-Key``."""
    peak: int = 0
    """The most requests it was handling at once."""

    @property
    def requests(self) -> int:
        return sum(self.keys.values())


class BacklogReceiver:
    """The receiver in a child process (see the module docstring).

    Args:
        scratch: A directory for the port file.
        delay: Seconds each request takes to answer (a slow handler).
        backlog: The listen backlog (``request_queue_size``; http.server's default is 5).
        threaded: ``ThreadingHTTPServer`` rather than ``HTTPServer``.
    """

    def __init__(
        self, scratch: Path, *, delay: float = 0.0, backlog: int = 5, threaded: bool = False
    ) -> None:
        self._port_file = scratch / f"backlog-receiver-{time.monotonic_ns()}.port"
        self._arguments = [str(self._port_file), "--delay", str(delay), "--backlog", str(backlog)]
        if threaded:
            self._arguments.append("--threaded")
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)

    def start(self, timeout: float = 30) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, *self._arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while not self._port_file.exists() or not self._port_file.read_text():
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("the backlog receiver did not start")
            time.sleep(0.02)
        self.port = int(self._port_file.read_text())

    def stop(self) -> Seen:
        """Stop it; return what it saw."""
        assert self._process is not None
        out, _ = self._process.communicate(timeout=60)
        report = json.loads(out)
        return Seen(keys=Counter(report["keys"]), peak=report["peak"])


class _Handler(BaseHTTPRequestHandler):
    delay: ClassVar[float] = 0.0
    lock: ClassVar[threading.Lock] = threading.Lock()
    keys: ClassVar[Counter[str]] = Counter()
    active: ClassVar[int] = 0
    peak: ClassVar[int] = 0

    def do_POST(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.active += 1
            cls.peak = max(cls.peak, cls.active)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if cls.delay:
                time.sleep(cls.delay)
            key = self.headers.get("Idempotency-Key")
            with cls.lock:
                if key:
                    cls.keys[key] += 1
        finally:
            # Before the answer is written: once the client has it, it may send the
            # next request, which must not find this one still counted.
            with cls.lock:
                cls.active -= 1
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a burst would flood the test's output."""


def _serve(port_file: str, delay: float, backlog: int, *, threaded: bool) -> None:
    _Handler.delay = delay

    base = ThreadingHTTPServer if threaded else HTTPServer

    class Server(base):
        request_queue_size = backlog

    server = Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Path(port_file).write_text(str(server.server_address[1]))
    sys.stdin.read()  # until the test stops it
    server.shutdown()
    with _Handler.lock:
        print(json.dumps({"keys": dict(_Handler.keys), "peak": _Handler.peak}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port_file")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--backlog", type=int, default=5)
    parser.add_argument("--threaded", action="store_true")
    arguments = parser.parse_args()
    _serve(arguments.port_file, arguments.delay, arguments.backlog, threaded=arguments.threaded)
