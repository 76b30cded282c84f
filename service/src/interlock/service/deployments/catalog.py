"""Creating deployments and queues with their inputs checked: the ``default`` queue.

The store takes any JSON as a target; :func:`create_deployment` and :func:`set_target`
refuse what no worker could run — an unknown target type, a malformed field, a
``connection`` that does not exist or is of another kind
(:mod:`~interlock.service.deployments.target_kinds`) — and schedules that are not cron
expressions and policies out of range (:mod:`.policy`), with messages that name the
field. Changing a target changes nothing in the rules that start the deployment: they
name it (``run_deployment("name")``), never its target.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from interlock.service.context import Services
from interlock.service.cron_trigger import parse_schedule
from interlock.service.deployments.policy import parse_policy
from interlock.service.deployments.target_kinds import check_connection
from interlock.service.store import AlreadyExists, Deployment, InvalidRecord, NotFound

__all__ = [
    "DEFAULT_QUEUE",
    "create_deployment",
    "ensure_default_queue",
    "set_policy",
    "set_target",
]

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
    policy: Mapping[str, Any] | None = None,
    concurrency_limit: int | None = None,
) -> Deployment:
    """Create a deployment after checking its target, schedule and policy.

    The ``default`` queue is created when it is named and missing; other queues must
    exist.

    Raises:
        InvalidRecord: the target or schedule is malformed, or the queue does not exist.
        AlreadyExists: a deployment has this name.
    """
    await check_connection(name, target, services.store.connections)
    checked = parse_policy(name, policy)
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
            policy=checked.as_json(),
            concurrency_limit=concurrency_limit,
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


async def set_target(services: Services, name: str, target: Mapping[str, Any]) -> Deployment:
    """Point a deployment at another target (its next runs use it) after checking it.

    Raises:
        NotFound: there is no such deployment.
        InvalidRecord: the target's type is unknown, a field is wrong, or its
            connection does not exist or is of another kind.
    """
    await services.store.deployments.get(name)
    await check_connection(name, target, services.store.connections)
    return await services.store.deployments.set_target(name, target)


async def set_policy(
    services: Services,
    name: str,
    policy: Mapping[str, Any],
    concurrency_limit: int | None,
) -> Deployment:
    """Replace a deployment's run policy and concurrency limit after checking them.

    Raises:
        NotFound: there is no such deployment.
        InvalidRecord: a field is unknown or out of range.
    """
    checked = parse_policy(name, policy)
    return await services.store.deployments.set_policy(name, checked.as_json(), concurrency_limit)
