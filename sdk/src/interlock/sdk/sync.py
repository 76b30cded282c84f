"""Publishing from code that is not async: scripts, cron jobs, Airflow callbacks.

:class:`SyncPublisher` runs a :class:`~interlock.sdk.Publisher` on an event loop in a
background thread and waits for each call at most the configured ``timeout`` (plus a
small margin); :func:`emit` uses one shared instance, created on first use from
``INTERLOCK_*`` variables and closed (spool flushed for up to ``timeout``) at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from interlock.sdk.config import PublisherConfig
from interlock.sdk.errors import BusError
from interlock.sdk.event import Event
from interlock.sdk.publisher import Publisher, PublishResult

__all__ = ["SyncPublisher", "emit"]

T = TypeVar("T")

_MARGIN = 1.0
"""Seconds allowed beyond ``timeout`` for the loop thread itself (spool write, handoff)."""


class SyncPublisher:
    """A blocking facade over :class:`~interlock.sdk.Publisher`; thread-safe."""

    def __init__(self, config: PublisherConfig | None = None) -> None:
        self.config = config or PublisherConfig()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="interlock-publisher", daemon=True
        )
        self._thread.start()
        self._publisher = Publisher(self.config)
        self._closed = False
        self._pid = os.getpid()
        self._run(self._publisher.connect(), self.config.timeout + _MARGIN, what="connect")

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float, *, what: str) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except FutureTimeout as exc:
            # Not cancelled: a publish that is late still ends stored or spooled.
            raise BusError(
                list(self.config.nats.servers),
                f"{what} did not finish within {timeout:g}s; it goes on in the background",
            ) from exc

    def event(self, name: str, resource_id: str, **fields: Any) -> Event:
        """Build an event stamped with this publisher's source (see ``Publisher.event``)."""
        return self._publisher.event(name, resource_id, **fields)

    def publish(self, event: Event) -> PublishResult:
        """Publish one event; returns once it is stored or spooled."""
        return self.publish_many((event,))

    def publish_many(self, events: Iterable[Event]) -> PublishResult:
        """Publish events in order; returns once each is stored or spooled."""
        if self._closed:
            raise RuntimeError("this SyncPublisher is closed")
        batch = list(events)
        return self._run(
            self._publisher.publish_many(batch), self.config.timeout + _MARGIN, what="publish"
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the spool is sent; return whether it is empty."""
        wait = self.config.timeout if timeout is None else timeout
        return self._run(self._publisher.flush(wait), wait + _MARGIN, what="flush")

    @property
    def usable(self) -> bool:
        """Whether this instance can publish from this process (not closed, not forked)."""
        return not self._closed and self._pid == os.getpid()

    @property
    def publisher(self) -> Publisher:
        """The asynchronous publisher underneath (its loop runs in another thread)."""
        return self._publisher

    def close(self, timeout: float | None = None) -> None:
        """Flush for up to ``timeout``, disconnect, and stop the loop thread."""
        if self._closed:
            return
        self._closed = True
        wait = self.config.timeout if timeout is None else timeout
        try:
            self._run(self._publisher.close(wait), wait * 2 + _MARGIN, what="close")
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_MARGIN)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> SyncPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


_shared: SyncPublisher | None = None
_shared_lock = threading.Lock()
_atexit_registered = threading.Event()


def _shared_publisher(config: PublisherConfig | None) -> SyncPublisher:
    global _shared  # noqa: PLW0603 - one process-wide publisher, created lazily
    with _shared_lock:
        if _shared is not None and not _shared.usable:
            # Forked (Airflow runs tasks in forked processes): the loop thread stayed in
            # the parent. Start afresh here; the parent's instance is the parent's.
            _shared = None
        if _shared is not None and config is not None and _shared.config != config:
            _shared.close()
            _shared = None
        if _shared is None:
            _shared = SyncPublisher(config or PublisherConfig.from_env())
            if not _atexit_registered.is_set():
                atexit.register(_close_shared)
                _atexit_registered.set()
        return _shared


def _close_shared() -> None:
    global _shared  # noqa: PLW0603
    with _shared_lock:
        if _shared is not None and _shared.usable:
            _shared.close()
        _shared = None


def emit(
    event: str | Event,
    resource_id: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    related: Sequence[Mapping[str, str]] = (),
    payload: Mapping[str, Any] | None = None,
    occurred: datetime | None = None,
    id: uuid.UUID | None = None,
    config: PublisherConfig | None = None,
) -> Event:
    """Publish one event from synchronous code and return it.

    Blocks at most the configured timeout (2 s by default): if NATS does not take the
    event by then, it is spooled on disk and sent later, by this process or the next.
    Without ``config``, settings come from ``INTERLOCK_*`` environment variables (see
    :mod:`interlock.sdk.config`)::

        emit("db.table.updated", "warehouse.sales", payload={"rows": 1200})
    """
    publisher = _shared_publisher(config)
    if isinstance(event, str):
        if not resource_id:
            raise TypeError("emit(name, resource_id, ...) needs a resource id")
        event = publisher.event(
            event,
            resource_id,
            labels=labels,
            related=related,
            payload=payload,
            occurred=occurred,
            id=id,
        )
    publisher.publish(event)
    return event
