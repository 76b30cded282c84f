"""Finding the executor for each action kind: the ``interlock.actions`` entry points.

Each entry point is named after an action kind and loads a factory called with the
:class:`~interlock.service.context.Services`. One that fails to import or to build does
not stop the service: the failure is logged with its traceback, and actions of that kind
fail at once (not retried) with "no executor for action kind 'x' (entry point failed to
load: ...)".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
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
        executors: Executors by kind.
        broken: Why the entry point of a kind failed to load, by kind.
    """

    def __init__(
        self, executors: Mapping[str, Executor], broken: Mapping[str, str] | None = None
    ) -> None:
        self.executors = dict(executors)
        self.broken = dict(broken or {})

    @classmethod
    def load(cls, services: Services, *, group: str = GROUP) -> Registry:
        """Build every executor the entry points of ``group`` name."""
        executors: dict[str, Executor] = {}
        broken: dict[str, str] = {}
        for point in entry_points(group=group):
            if point.name in executors:
                logger.warning(
                    "action kind %r has two executors; keeping the first, ignoring %s",
                    point.name,
                    point.value,
                )
                continue
            try:
                factory = point.load()
                executors[point.name] = factory(services)
            except Exception as exc:  # one plugin must not stop the service
                broken[point.name] = f"{type(exc).__name__}: {exc}"
                logger.exception(
                    "the executor of action kind %r (%s) failed to load; actions of that "
                    "kind will fail",
                    point.name,
                    point.value,
                )
        return cls(executors, broken)

    def get(self, kind: str) -> Executor:
        """The executor of ``kind``.

        Raises:
            ActionFailed: there is none (not retryable); the message says why.
        """
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
