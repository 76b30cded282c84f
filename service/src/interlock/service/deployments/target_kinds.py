"""Finding target kinds: ``process`` here, every other ``type`` an ``interlock.targets`` plugin.

:func:`check_target` refuses a target no worker could run — an unknown ``type`` (the
message lists the known ones), a malformed field (the plugin's
:class:`~interlock.sdk.targets.TargetInvalid`), and, given the store, a ``connection``
that does not exist or is of another kind — with one line naming the field. The
deployment API and ``set-target`` call it; a worker builds each kind once
(:class:`TargetKinds`) with an :class:`~interlock.sdk.executors.ExecutorContext` whose
connections are the store's, resolved at every call.

The service never imports a technology's module: ``airflow`` and ``prefect`` come from
the adapters' entry points, ``http`` from the service's own (see ``docs/plugins.md``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from interlock.sdk.connections import ConnectionLookup, ConnectionNotFound
from interlock.sdk.errors import InterlockError
from interlock.sdk.executors import ExecutorContext
from interlock.sdk.targets import GROUP, Target, TargetFactory, TargetInvalid
from interlock.service.deployments.targets import parse_target
from interlock.service.store import InvalidRecord
from interlock.service.store.names import NAME_HELP, NAME_PATTERN

__all__ = ["PROCESS", "TargetKinds", "check_connection", "check_target", "known_types"]

logger = logging.getLogger(__name__)

PROCESS = "process"
"""The service's own target type: a subprocess of a worker."""
_FACTORIES: dict[str, TargetFactory] = {}
_NAME = re.compile(NAME_PATTERN)


def _points() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=GROUP)}


def known_types() -> list[str]:
    """Every target type: ``process`` and the installed plugins', sorted."""
    return sorted({PROCESS, *_points()})


def _factory(deployment: str, kind: str) -> TargetFactory:
    found = _FACTORIES.get(kind)
    if found is not None:
        return found
    point = _points().get(kind)
    if point is None:
        raise InvalidRecord(
            "deployment",
            deployment,
            "target.type",
            f"is not a known target type {kind!r} (known: {', '.join(known_types())})",
        )
    try:
        factory: TargetFactory = point.load()
    except Exception as exc:
        logger.exception("target type %r: entry point %s failed to load", kind, point.value)
        raise InvalidRecord(
            "deployment",
            deployment,
            "target.type",
            f"{kind!r} cannot be loaded ({type(exc).__name__}: {exc}); is its extra installed?",
        ) from None
    _FACTORIES[kind] = factory
    return factory


def check_target(deployment: str, target: Mapping[str, Any]) -> Target | None:
    """Refuse a malformed target; the plugin that runs it (``None`` for ``process``).

    Raises:
        InvalidRecord: the type is unknown or a field is wrong (named in the message).
    """
    if not isinstance(target, Mapping):
        raise InvalidRecord("deployment", deployment, "target", "must be an object")
    kind = target.get("type")
    if kind == PROCESS:
        parse_target(deployment, target)
        return None
    if not isinstance(kind, str) or not kind:
        raise InvalidRecord(
            "deployment",
            deployment,
            "target.type",
            f"is required: one of {', '.join(known_types())}",
        )
    plugin = _factory(deployment, kind)(ExecutorContext())
    try:
        plugin.check(target)
    except TargetInvalid as exc:
        raise InvalidRecord("deployment", deployment, f"target.{exc.field}", exc.reason) from None
    return plugin


async def check_connection(
    deployment: str, target: Mapping[str, Any], connections: ConnectionLookup
) -> None:
    """Refuse a target whose ``connection`` does not exist or is of another kind.

    Raises:
        InvalidRecord: naming the connection and what is wrong; a store that fails
            is not this target's fault and is raised as it is.
    """
    plugin = check_target(deployment, target)
    if plugin is None:
        return
    name = str(target.get("connection"))
    if not _NAME.fullmatch(name):
        raise InvalidRecord(
            "deployment", deployment, "target.connection", f"must be a connection name: {NAME_HELP}"
        )
    try:
        (await connections.resolve(name)).require(plugin.connection_kind)
    except ConnectionNotFound as exc:
        raise InvalidRecord(
            "deployment",
            deployment,
            "target.connection",
            f"must name an existing {plugin.connection_kind} connection: {exc}",
        ) from None
    except InterlockError:
        raise


class TargetKinds:
    """The target plugins of one worker, each built once on first use.

    Args:
        context: What plugins are built with (the store's connections, the
            environment, the time one call may take).
    """

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context
        self._built: dict[str, Target] = {}

    def get(self, deployment: str, target: Mapping[str, Any]) -> Target:
        """The plugin of ``target``'s type, checked against ``target``.

        Raises:
            InvalidRecord: the type is unknown or the target malformed.
        """
        kind = str(target.get("type"))
        check_target(deployment, target)
        built = self._built.get(kind)
        if built is None:
            built = self._built[kind] = _factory(deployment, kind)(self.context)
        return built

    async def close(self) -> None:
        """Close every plugin built."""
        for plugin in self._built.values():
            try:
                await plugin.close()
            except Exception:
                logger.exception("closing a target plugin failed")
        self._built.clear()
