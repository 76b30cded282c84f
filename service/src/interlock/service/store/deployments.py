"""Work queues and deployments: what can run, and the queues runs wait in.

A deployment names a target (``{"type": "process", "command": [...]}`` and the like, kept
as JSON), the queue its runs go through, an optional cron schedule that can be switched
off and on, default parameters and tags. A queue can be paused (its runs wait) and may
limit how many of its runs are running at once.

Names follow :mod:`~interlock.service.store.names`; a concurrency limit is 1 to
:data:`MAX_CONCURRENCY_LIMIT` and a schedule at most :data:`MAX_SCHEDULE_LENGTH`
characters, so nothing given here can overflow a column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.sdk.vocabulary import FINAL_RUN_STATES
from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.errors import AlreadyExists, InUse, InvalidRecord, NotFound
from interlock.service.store.names import check_name
from interlock.service.store.records import Deployment, WorkQueue

__all__ = ["MAX_CONCURRENCY_LIMIT", "MAX_SCHEDULE_LENGTH", "Deployments", "Queues"]

MAX_CONCURRENCY_LIMIT: Final = 10_000
"""Largest concurrency limit of a queue (runs at once over all workers)."""
MAX_SCHEDULE_LENGTH: Final = 200
"""Longest schedule (a cron expression), in characters."""


class Queues:
    """Work queues."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(
        self, name: str, *, concurrency_limit: int | None = None, paused: bool = False
    ) -> WorkQueue:
        """Create a queue.

        Raises:
            AlreadyExists: a queue has this name.
            InvalidRecord: the name breaks the rule of names, or the limit is out of range.
        """
        check_name("queue", name)
        _check_limit(name, concurrency_limit)
        now = self._db.now()
        insert = self._db.insert(t.work_queues).values(
            name=name,
            paused=paused,
            concurrency_limit=concurrency_limit,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as connection:
            added = await connection.execute(
                insert.on_conflict_do_nothing().returning(t.work_queues.c.name)
            )
            if added.first() is None:
                raise AlreadyExists("queue", name)
            return await _queue(connection, name)

    async def get(self, name: str) -> WorkQueue:
        """The queue called ``name``.

        Raises:
            NotFound: there is none.
        """
        async with self._db.transaction() as connection:
            return await _queue(connection, name)

    async def list(self) -> list[WorkQueue]:
        """Every queue, by name."""
        query = sa.select(t.work_queues).order_by(t.work_queues.c.name)
        async with self._db.transaction() as connection:
            return [_queue_record(row) for row in await connection.execute(query)]

    async def set_paused(self, name: str, paused: bool) -> WorkQueue:
        """Pause or resume a queue.

        Raises:
            NotFound: there is none.
        """
        return await self._update(name, paused=paused)

    async def set_concurrency_limit(self, name: str, limit: int | None) -> WorkQueue:
        """Limit how many of the queue's runs run at once (``None``: no limit).

        Raises:
            NotFound: there is no such queue.
            InvalidRecord: the limit is out of range (1 to ``MAX_CONCURRENCY_LIMIT``).
        """
        _check_limit(name, limit)
        return await self._update(name, concurrency_limit=limit)

    async def _update(self, name: str, **values: Any) -> WorkQueue:
        update = (
            sa.update(t.work_queues)
            .where(t.work_queues.c.name == name)
            .values(updated_at=self._db.now(), **values)
        )
        async with self._db.transaction() as connection:
            await connection.execute(update)
            return await _queue(connection, name)


class Deployments:
    """Deployments."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(
        self,
        name: str,
        *,
        target: Mapping[str, Any],
        queue: str,
        schedule: str | None = None,
        schedule_enabled: bool = True,
        parameters: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        description: str = "",
        policy: Mapping[str, Any] | None = None,
        concurrency_limit: int | None = None,
    ) -> Deployment:
        """Create a deployment whose runs go through ``queue``.

        Raises:
            AlreadyExists: a deployment has this name.
            NotFound: there is no such queue.
            InvalidRecord: the name breaks the rule of names, the target says no
                ``type``, or the schedule is longer than ``MAX_SCHEDULE_LENGTH``.
        """
        check_name("deployment", name)
        if schedule is not None and len(schedule) > MAX_SCHEDULE_LENGTH:
            raise InvalidRecord(
                "deployment",
                name,
                "schedule",
                f"is longer than {MAX_SCHEDULE_LENGTH} characters: a cron expression "
                "has five short fields ('0 6 * * 1-5')",
            )
        _check_target(name, target)
        _check_limit(name, concurrency_limit, "deployment")
        now = self._db.now()
        insert = self._db.insert(t.deployments).values(
            name=name,
            target=dict(target),
            queue=queue,
            schedule=schedule,
            schedule_enabled=schedule_enabled,
            parameters=dict(parameters or {}),
            tags=list(tags),
            description=description,
            policy=dict(policy or {}),
            concurrency_limit=concurrency_limit,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as connection:
            await _queue(connection, queue)
            added = await connection.execute(
                insert.on_conflict_do_nothing().returning(t.deployments.c.name)
            )
            if added.first() is None:
                raise AlreadyExists("deployment", name)
            return await _deployment(connection, name)

    async def get(self, name: str) -> Deployment:
        """The deployment called ``name``.

        Raises:
            NotFound: there is none.
        """
        async with self._db.transaction() as connection:
            return await _deployment(connection, name)

    async def list(self, *, queue: str | None = None) -> list[Deployment]:
        """Every deployment (of one queue), by name."""
        query = sa.select(t.deployments).order_by(t.deployments.c.name)
        if queue is not None:
            query = query.where(t.deployments.c.queue == queue)
        async with self._db.transaction() as connection:
            return [_deployment_record(row) for row in await connection.execute(query)]

    async def delete(self, name: str) -> int:
        """Delete the deployment and its finished runs; return how many runs went with it.

        Its runs' log files stay on disk. A deployment declared in ``deployments_file``
        is created again at the service's next start.

        Raises:
            NotFound: there is no such deployment.
            InUse: some of its runs are not finished (cancel them first).
        """
        runs = t.runs.c
        waiting = (
            sa.select(runs.state, sa.func.count())
            .where(runs.deployment == name, runs.state.not_in(sorted(FINAL_RUN_STATES)))
            .group_by(runs.state)
            .order_by(runs.state)
        )
        async with self._db.transaction() as connection:
            await _deployment(connection, name)
            unfinished = [(row[0], row[1]) for row in await connection.execute(waiting)]
            if unfinished:
                counts = ", ".join(f"{count} {state}" for state, count in unfinished)
                raise InUse(
                    "deployment",
                    name,
                    f"has runs not finished ({counts}): cancel them first "
                    f"(interlock runs list --deployment {name}; interlock runs cancel ID)",
                )
            removed = await connection.execute(sa.delete(t.runs).where(runs.deployment == name))
            await connection.execute(sa.delete(t.deployments).where(t.deployments.c.name == name))
            return int(removed.rowcount or 0)

    async def set_schedule_enabled(self, name: str, enabled: bool) -> Deployment:
        """Switch the deployment's schedule on or off (its runs on events go on).

        Raises:
            NotFound: there is no such deployment.
        """
        update = (
            sa.update(t.deployments)
            .where(t.deployments.c.name == name)
            .values(schedule_enabled=enabled, updated_at=self._db.now())
        )
        async with self._db.transaction() as connection:
            await connection.execute(update)
            return await _deployment(connection, name)

    async def set_target(self, name: str, target: Mapping[str, Any]) -> Deployment:
        """Point the deployment at another target; its runs already started keep theirs.

        Raises:
            NotFound: there is no such deployment.
            InvalidRecord: the target says no ``type``.
        """
        _check_target(name, target)
        return await self._update(name, target=dict(target))

    async def set_policy(
        self, name: str, policy: Mapping[str, Any], concurrency_limit: int | None
    ) -> Deployment:
        """Replace the deployment's run policy and concurrency limit (``None``: no limit).

        Raises:
            NotFound: there is no such deployment.
            InvalidRecord: the limit is out of range.
        """
        _check_limit(name, concurrency_limit, "deployment")
        return await self._update(name, policy=dict(policy), concurrency_limit=concurrency_limit)

    async def _update(self, name: str, **values: Any) -> Deployment:
        update = (
            sa.update(t.deployments)
            .where(t.deployments.c.name == name)
            .values(updated_at=self._db.now(), **values)
        )
        async with self._db.transaction() as connection:
            await connection.execute(update)
            return await _deployment(connection, name)


def _check_target(name: str, target: Mapping[str, Any]) -> None:
    if not isinstance(target.get("type"), str):
        raise InvalidRecord(
            "deployment", name, "target", "needs a 'type' ('process', 'airflow', 'prefect', ...)"
        )


def _check_limit(name: str, limit: int | None, kind: str = "queue") -> None:
    if limit is not None and not 1 <= limit <= MAX_CONCURRENCY_LIMIT:
        raise InvalidRecord(
            kind,
            name,
            "concurrency_limit",
            f"must be 1 to {MAX_CONCURRENCY_LIMIT:,} runs at once, or none (no limit)",
        )


async def _queue(connection: AsyncConnection, name: str) -> WorkQueue:
    query = sa.select(t.work_queues).where(t.work_queues.c.name == name)
    row = (await connection.execute(query)).one_or_none()
    if row is None:
        raise NotFound("queue", name)
    return _queue_record(row)


async def _deployment(connection: AsyncConnection, name: str) -> Deployment:
    query = sa.select(t.deployments).where(t.deployments.c.name == name)
    row = (await connection.execute(query)).one_or_none()
    if row is None:
        raise NotFound("deployment", name)
    return _deployment_record(row)


def _queue_record(row: sa.Row[Any]) -> WorkQueue:
    return WorkQueue(
        name=row.name,
        paused=row.paused,
        concurrency_limit=row.concurrency_limit,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _deployment_record(row: sa.Row[Any]) -> Deployment:
    return Deployment(
        name=row.name,
        target=row.target,
        queue=row.queue,
        schedule=row.schedule,
        schedule_enabled=row.schedule_enabled,
        parameters=row.parameters,
        tags=row.tags,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        policy=row.policy or {},
        concurrency_limit=row.concurrency_limit,
    )
