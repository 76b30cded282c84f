"""Finding the executor for each action kind: the ``interlock.actions`` entry points.

Each entry point is named after an action kind and loads a factory called with the
:class:`~interlock.service.context.Services`. An executor is built the first time an
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
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from interlock.service.actions.executor import ActionFailed, Executor

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["GROUP", "Registry"]

GROUP = "interlock.actions"
logger = logging.getLogger(__name__)


class Registry:
    """The executors of one service, by action kind.

    Args:
        executors: Executors already built, by kind.
        broken: Why the entry point of a kind failed to load, by kind.
        points: Entry points not built yet, by kind (built by :meth:`executor`).
        services: What the entry points' factories are called with.
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
        self._services = services
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
            factory = await asyncio.to_thread(point.load)
            self.executors[kind] = factory(self._services)
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
