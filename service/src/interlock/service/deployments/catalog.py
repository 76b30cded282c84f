"""Creating deployments and queues with their inputs checked: the ``default`` queue.

The store takes any JSON as a target; :func:`create_deployment` refuses what no worker
could run (:func:`~interlock.service.deployments.targets.parse_target`) and schedules
that are not cron expressions, with messages that name the field.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from interlock.service.context import Services
from interlock.service.cron_trigger import parse_schedule
from interlock.service.deployments.targets import parse_target
from interlock.service.store import AlreadyExists, Deployment, InvalidRecord, NotFound

__all__ = ["DEFAULT_QUEUE", "create_deployment", "ensure_default_queue"]

DEFAULT_QUEUE = "default"
"""The queue deployments use unless they name another; the embedded worker serves it."""


async def ensure_default_queue(services: Services) -> str:
    """Create the ``default`` queue (no limit, not paused) if missing; return its name."""
    with contextlib.suppress(AlreadyExists):
        await services.store.queues.create(DEFAULT_QUEUE)
    return DEFAULT_QUEUE


def check_schedule(deployment: str, schedule: str | None) -> None:
    """Refuse a schedule that is not a five-field cron expression.

    It is evaluated in UTC, or in the zone a ``CRON_TZ=Zone`` prefix names (see
    :mod:`interlock.service.cron_trigger`).

    Raises:
        InvalidRecord: it is not.
    """
    if schedule is None:
        return
    try:
        parse_schedule(schedule)
    except ValueError as exc:
        raise InvalidRecord(
            "deployment",
            deployment,
            "schedule",
            f"is not a cron expression ('minute hour day month weekday', e.g. "
            f"'0 6 * * 1-5', optionally after CRON_TZ=Europe/Berlin): {exc}",
        ) from None


async def create_deployment(
    services: Services,
    name: str,
    *,
    target: Mapping[str, Any],
    queue: str = DEFAULT_QUEUE,
    schedule: str | None = None,
    schedule_enabled: bool = True,
    parameters: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    description: str = "",
) -> Deployment:
    """Create a deployment after checking its target and schedule.

    The ``default`` queue is created when it is named and missing; other queues must
    exist.

    Raises:
        InvalidRecord: the target or schedule is malformed, or the queue does not exist.
        AlreadyExists: a deployment has this name.
    """
    parse_target(name, target)
    check_schedule(name, schedule)
    if queue == DEFAULT_QUEUE:
        await ensure_default_queue(services)
    try:
        return await services.store.deployments.create(
            name,
            target=target,
            queue=queue,
            schedule=schedule,
            schedule_enabled=schedule_enabled,
            parameters=parameters,
            tags=tags,
            description=description,
        )
    except NotFound as exc:
        if exc.kind != "queue":
            raise
        raise InvalidRecord(
            "deployment",
            name,
            "queue",
            f"names no queue ({queue!r}); create it first (POST /api/queues, or "
            f"omit it to use {DEFAULT_QUEUE!r})",
        ) from None
