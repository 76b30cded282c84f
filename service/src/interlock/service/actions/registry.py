"""Finding the executor for each action kind: the ``interlock.actions`` entry points.

Each entry point is named after an action kind and loads an
:class:`~interlock.sdk.executors.ExecutorFactory`, called with the context this service
gives executors: a :class:`ServiceContext` (the action timeout and the environment, taken
once when the registry is loaded). Plugins read only what
:class:`~interlock.sdk.executors.ExecutorContext` holds; the service's own executors
(``notify``, ``webhook``, ``run_deployment``, ...) also use :attr:`ServiceContext.services`.
An executor is built the first time an
action of its kind runs: a service whose rules use neither Airflow nor Prefect never
imports their clients, and starting the service costs a scan of the entry points, not
an import of every plugin. The plugin's module is imported in a worker thread, so the
event loop keeps serving meanwhile.

One that fails to import or to build does not stop the service: the failure is logged
with its traceback, and actions of that kind fail at once (not retried) with "no
executor for action kind 'x' (entry point failed to load: ...)".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from interlock.sdk.executors import GROUP, ActionFailed, Executor, ExecutorContext

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["GROUP", "Registry", "ServiceContext"]

logger = logging.getLogger(__name__)


class ServiceContext(ExecutorContext, frozen=True, kw_only=True):
    """The context this service builds executors with.

    Attributes:
        services: The running service, for its own executors (the store, the
            publisher, rule control); plugins never need it.
    """

    services: Services

    @classmethod
    def of(cls, services: Services, environ: Mapping[str, str] | None = None) -> ServiceContext:
        """The context of ``services``; ``environ``: the process's environment by default.

        Executors resolve connections through the store's (cached, forgotten on change).
        """
        return cls(
            action_timeout=services.settings.actions.timeout.total_seconds(),
            environ=dict(os.environ if environ is None else environ),
            connections=services.store.connections,
            services=services,
        )


class Registry:
    """The executors of one service, by action kind.

    Args:
        executors: Executors already built, by kind.
        broken: Why the entry point of a kind failed to load, by kind.
        points: Entry points not built yet, by kind (built by :meth:`executor`).
        services: The service whose :class:`ServiceContext` the entry points'
            factories are called with.
    """

    def __init__(
        self,
        executors: Mapping[str, Executor],
        broken: Mapping[str, str] | None = None,
        *,
        points: Mapping[str, EntryPoint] | None = None,
        services: Services | None = None,
    ) -> None:
        self.executors = dict(executors)
        self.broken = dict(broken or {})
        self._points = dict(points or {})
        self._context = None if services is None else ServiceContext.of(services)
        self._building = asyncio.Lock()

    @classmethod
    def load(cls, services: Services, *, group: str = GROUP) -> Registry:
        """Find the entry points of ``group``; each is built on its kind's first use."""
        points: dict[str, EntryPoint] = {}
        for point in entry_points(group=group):
            if point.name in points:
                logger.warning(
                    "action kind %r has two executors; keeping the first, ignoring %s",
                    point.name,
                    point.value,
                )
                continue
            points[point.name] = point
        return cls({}, points=points, services=services)

    @property
    def kinds(self) -> frozenset[str]:
        """Every action kind with an executor, built or not (broken ones excluded)."""
        return frozenset(self.executors) | frozenset(self._points)

    async def executor(self, kind: str) -> Executor:
        """The executor of ``kind``, built on first use.

        Raises:
            ActionFailed: there is none (not retryable); the message says why.
        """
        built = self.executors.get(kind)
        if built is not None:
            return built
        async with self._building:  # one build per kind, however many actions wait for it
            point = self._points.pop(kind, None)
            if point is not None:
                await self._build(kind, point)
        return self._found(kind)

    async def prepare(self, kinds: Iterable[str]) -> None:
        """Build the executors of ``kinds`` now (unknown and broken kinds are skipped)."""
        for kind in sorted(set(kinds) & set(self._points)):
            with contextlib.suppress(ActionFailed):  # a failed build is logged by _build
                await self.executor(kind)

    async def _build(self, kind: str, point: EntryPoint) -> None:
        try:
            if self._context is None:
                raise RuntimeError("the registry was made without a service to build from")
            factory = await asyncio.to_thread(point.load)
            self.executors[kind] = factory(self._context)
        except Exception as exc:  # one plugin must not stop the service
            self.broken[kind] = f"{type(exc).__name__}: {exc}"
            logger.exception(
                "the executor of action kind %r (%s) failed to load; actions of that kind "
                "will fail",
                kind,
                point.value,
            )

    def _found(self, kind: str) -> Executor:
        executor = self.executors.get(kind)
        if executor is not None:
            return executor
        if kind in self.broken:
            raise ActionFailed(
                f"no executor for action kind {kind!r} (entry point failed to load: "
                f"{self.broken[kind]})",
                retryable=False,
            )
        raise ActionFailed(
            f"no executor for action kind {kind!r} (no {GROUP} entry point of that name is "
            "installed)",
            retryable=False,
        )

    async def close(self) -> None:
        """Close every executor (errors logged, never raised)."""
        for kind, executor in self.executors.items():
            try:
                await executor.close()
            except Exception:  # shutting down: log and go on
                logger.exception("closing the executor of action kind %r failed", kind)
