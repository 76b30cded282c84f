"""The event loop the service runs on: uvloop where it is installed, asyncio's otherwise.

uvloop (libuv underneath) does the same work as asyncio's own loop with less Python
per callback, socket read and timer; the service's hot paths (nats-py's protocol
parser, uvicorn's connections, the dispatcher's HTTP calls) spend much of their time
there. It is a dependency on Linux and macOS; elsewhere :func:`run` falls back to asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The constructor of uvloop's loop, or ``None`` (asyncio's default) without uvloop."""
    try:
        import uvloop  # noqa: PLC0415 - optional where it does not build
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new loop from :func:`loop_factory`."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
