"""A local HTTP endpoint that records every request: the other end of webhooks and Apprise.

Apprise's ``json://127.0.0.1:PORT/path`` posts ``{"title", "message", "type", ...}``; a
webhook action posts its body with an ``Idempotency-Key`` header. Tests read
:attr:`HttpReceiver.requests` and wait with :meth:`HttpReceiver.wait_for`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HttpReceiver", "Received", "http_receiver"]


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


class HttpReceiver:
    """Records requests; answers each with ``status`` (200 unless changed)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.arrivals: list[datetime] = []
        """When each request arrived (UTC), in the order of ``requests``."""
        self.status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.arrivals.append(datetime.now(timezone.utc))
                    receiver.requests.append(
                        Received(self.command, self.path, dict(self.headers.items()), body)
                    )
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            do_POST = do_PUT = do_GET = _record

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # bursts of concurrent actions; 5 resets connections

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def received(self, path: str | None = None) -> list[Received]:
        """Requests so far (to ``path`` only, if given)."""
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 30) -> list[Received]:
        """Wait until ``count`` requests (to ``path``) arrived; return them all."""
        deadline = time.monotonic() + timeout
        while len(found := self.received(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} requests arrived in {timeout} s")
            time.sleep(0.02)
        return found


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    """A running :class:`HttpReceiver`, stopped afterwards."""
    receiver = HttpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
