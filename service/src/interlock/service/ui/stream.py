"""Server-Sent Events plumbing: one stream per page, resumable, stoppable.

A page renders up to a position (``page.cursor``: a JetStream sequence, or a store
position) and its region connects to ``/<page>/stream?after=<cursor>``. Each message is
``event: <item>``, ``id: <position>``, ``data: <the item's partial>``. A browser that
reconnects sends ``Last-Event-ID``, which wins over ``after`` (:func:`resume_from`): the
stream goes on after the last message it received, so nothing is lost or repeated.

:func:`sse` wraps a page's source of messages:

- the first message says ``retry: 2000`` (reconnect after two seconds);
- ``: keep-alive`` every 15 s of silence, so proxies keep the connection;
- ``Cache-Control: no-store`` and ``X-Accel-Buffering: no``;
- it ends when the service stops (:class:`Streams`, whose event the service sets before
  telling the web server to exit: otherwise the server waits for open streams to end
  before it stops) or after ``max_age`` (the browser reconnects where it was), and
  releases its source (``aclose``) however it ends, the browser leaving included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final

from litestar import Request
from litestar.response import ServerSentEvent, ServerSentEventMessage

__all__ = ["KEEP_ALIVE", "STREAMS_STATE", "Streams", "resume_from", "sse"]

STREAMS_STATE: Final = "interlock_ui_streams"
KEEP_ALIVE: Final = 15.0
RETRY_MS: Final = 2000
MAX_AGE: Final = 3600.0
"""Seconds a stream lasts at most; the browser reconnects with ``Last-Event-ID``."""


class Streams:
    """The open streams of one application, and the signal that ends them."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.open = 0
        """Streams open now."""

    def stop(self) -> None:
        """End every open stream (call before stopping the web server)."""
        self.stopping.set()


def streams_of(request: Request[Any, Any, Any]) -> Streams:
    """The application's :class:`Streams`."""
    streams: Streams = request.app.state[STREAMS_STATE]
    return streams


def resume_from(request: Request[Any, Any, Any], after: int | None) -> int | None:
    """Where a stream starts: after ``Last-Event-ID`` if the browser sent one, else ``after``."""
    last = request.headers.get("last-event-id", "").strip()
    if last.isdigit() and len(last) < 19:  # a position we gave (JetStream's are < 2**63)
        return int(last)
    return after


def sse(
    request: Request[Any, Any, Any],
    source: AsyncIterator[ServerSentEventMessage],
    *,
    keep_alive: float = KEEP_ALIVE,
    max_age: float = MAX_AGE,
) -> ServerSentEvent:
    """A Server-Sent Events answer carrying ``source``'s messages (see the module)."""
    return ServerSentEvent(
        _guarded(streams_of(request), source, keep_alive, max_age),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _guarded(
    streams: Streams,
    source: AsyncIterator[ServerSentEventMessage],
    keep_alive: float,
    max_age: float,
) -> AsyncIterator[ServerSentEventMessage]:
    streams.open += 1
    stop: asyncio.Future[Any] = asyncio.ensure_future(streams.stopping.wait())
    pending: asyncio.Future[Any] | None = None
    deadline = asyncio.get_running_loop().time() + max_age
    try:
        yield ServerSentEventMessage(retry=RETRY_MS, comment="connected")
        while not stop.done():
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            done, _ = await asyncio.wait(
                {pending, stop}, timeout=min(keep_alive, left), return_when=asyncio.FIRST_COMPLETED
            )
            if stop in done:
                return
            if pending not in done:
                yield ServerSentEventMessage(comment="keep-alive")
                continue
            finished, pending = pending, None
            try:
                message = finished.result()
            except StopAsyncIteration:
                return
            yield message
    finally:
        streams.open -= 1
        stop.cancel()
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
