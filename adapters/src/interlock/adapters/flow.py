"""Plain Python flows: two lines make any function or block an Interlock producer.

::

    from interlock.adapters.flow import flow, flow_run

    @flow("nightly-export")
    def export(day: str) -> int: ...

    with flow_run("load-fx", parameters={"day": day}) as run:
        run.payload["rows"] = load()

Each run emits ``flow.run.started``, then ``flow.run.succeeded`` or ``flow.run.failed``
with ``resource.id`` = the flow name and a payload of ``run_id``, ``parameters`` (a
JSON-safe summary: long or exotic values are shortened to their ``repr``),
``duration_s``, and on failure ``error`` (type, message, the last traceback lines). It
works for sync and async functions and blocks. Publishing never breaks or holds up the
flow beyond the SDK's timeout: when NATS is down events are spooled, and any publishing
error is logged, not raised. Event ids are UUID5s of (run id, state), so a retried emit
is stored once.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from interlock.adapters.base import deterministic_id
from interlock.sdk.event import Event, utc_now
from interlock.sdk.sync import SyncPublisher, emit

__all__ = ["FlowRun", "flow", "flow_run"]

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # typing.ParamSpec is 3.10+; P appears in annotations only
    from typing import ParamSpec

    P = ParamSpec("P")
R = TypeVar("R")

_MAX_VALUE = 200


def _summary(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 1] + "…"
    text = repr(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


class FlowRun:
    """One run of a flow: emits its events; ``payload`` adds fields to the final event."""

    def __init__(
        self,
        name: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        publisher: SyncPublisher | None = None,
    ) -> None:
        self.name = name
        self.run_id = run_id or str(uuid.uuid4())
        self.parameters = {key: _summary(value) for key, value in (parameters or {}).items()}
        self.labels = dict(labels or {})
        self.publisher = publisher
        self.payload: dict[str, Any] = {}
        self._started = 0.0

    def _event(self, state: str, extra: Mapping[str, Any]) -> Event:
        return Event(
            id=deterministic_id("flow", self.run_id, state),
            occurred=utc_now(),
            event=f"flow.run.{state}",
            resource={**self.labels, "id": self.name},
            payload={"run_id": self.run_id, "parameters": self.parameters, **extra},
            source=self.publisher.config.source if self.publisher else "",
        )

    def _emit(self, event: Event) -> None:
        try:
            if self.publisher is not None:
                self.publisher.publish(event)
            else:
                emit(event)
        except Exception:
            logger.exception("could not publish %s for flow %s", event.event, self.name)

    def _finish(self, exc: BaseException | None) -> Event:
        duration = round(time.monotonic() - self._started, 6)
        extra: dict[str, Any] = {**self.payload, "duration_s": duration}
        if exc is None:
            return self._event("succeeded", extra)
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        extra["error"] = {
            "type": type(exc).__qualname__,
            "message": str(exc),
            "traceback": "".join(lines[-6:])[-2000:],
        }
        return self._event("failed", extra)

    def __enter__(self) -> FlowRun:
        self._started = time.monotonic()
        self._emit(self._event("started", {}))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._emit(self._finish(exc))

    async def __aenter__(self) -> FlowRun:
        self._started = time.monotonic()
        await asyncio.to_thread(self._emit, self._event("started", {}))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self._emit, self._finish(exc))


def flow_run(
    name: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    labels: Mapping[str, str] | None = None,
    publisher: SyncPublisher | None = None,
) -> FlowRun:
    """A context manager (``with`` or ``async with``) that reports a block as a flow run."""
    return FlowRun(name, parameters=parameters, run_id=run_id, labels=labels, publisher=publisher)


@overload
def flow(name: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def flow(
    name: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    publisher: SyncPublisher | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def flow(
    name: str | Callable[..., Any] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    publisher: SyncPublisher | None = None,
) -> Any:
    """Report each call of the decorated function (sync or async) as a flow run.

    ``@flow`` names the flow after the function; ``@flow("name")`` names it.
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        flow_name = name if isinstance(name, str) else function.__qualname__
        signature = inspect.signature(function)

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowRun:
            try:
                bound = signature.bind_partial(*args, **kwargs)
                bound.apply_defaults()
                parameters: dict[str, Any] = dict(bound.arguments)
            except TypeError:
                parameters = {}
            return FlowRun(flow_name, parameters=parameters, labels=labels, publisher=publisher)

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with start(args, kwargs):
                    return await function(*args, **kwargs)

            return run_async

        @functools.wraps(function)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            with start(args, kwargs):
                return function(*args, **kwargs)

        return run_sync

    if callable(name):
        return decorate(name)
    return decorate
