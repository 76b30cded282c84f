"""A small HTTP/1.1 server that records every request: the far end of webhooks and Apprise.

Runs in the test's event loop (``async with Receiver() as receiver``) or, for the
benchmark, in a process of its own (``python receiver.py PORT_FILE``). Answers are
chosen per request by ``respond(request) -> (status, delay_seconds)``; requests are kept
in order, and counted by their ``Idempotency-Key`` header.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

__all__ = ["COUNT_PATH", "Receiver", "Request"]

COUNT_PATH = "/__count"
"""``GET`` it for ``{"count": N}``, the requests recorded so far (itself excluded)."""


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    arrived: float = 0.0
    """When the request was read whole (``time.time()``)."""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")


Responder = Callable[[Request], tuple[int, float]]


def _ok(request: Request) -> tuple[int, float]:
    return 200, 0.0


@dataclass
class Receiver:
    respond: Responder = _ok
    requests: list[Request] = field(default_factory=list)
    keys: Counter[str] = field(default_factory=Counter)
    port: int = 0
    set_cookie: str | None = None
    """A ``Set-Cookie`` value sent with every answer."""
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self, prefix: str = "/") -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                request = Request(method, path, headers, body, time.time())
                payload = b'{"ok": true}'
                if path == COUNT_PATH:  # asked how many arrived; not recorded
                    status, delay = 200, 0.0
                    payload = json.dumps({"count": len(self.requests)}).encode()
                else:
                    self.requests.append(request)
                    if request.key:
                        self.keys[request.key] += 1
                    status, delay = self.respond(request)
                if delay:
                    await asyncio.sleep(delay)
                cookie = f"Set-Cookie: {self.set_cookie}\r\n" if self.set_cookie else ""
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{cookie}"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def _serve_forever(port_file: str) -> None:
    """For the benchmarks: serve; when stdin closes, print the key counts and requests.

    Each request is printed as ``[path, arrival time, body]``.
    """
    async with Receiver() as receiver:
        Path(port_file).write_text(str(receiver.port))  # noqa: ASYNC240 - a few bytes, once
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        received = [[r.path, r.arrived, r.body.decode()] for r in receiver.requests]
        print(
            json.dumps(
                {
                    "requests": len(receiver.requests),
                    "keys": dict(receiver.keys),
                    "received": received,
                }
            )
        )


if __name__ == "__main__":
    asyncio.run(_serve_forever(sys.argv[1]))
