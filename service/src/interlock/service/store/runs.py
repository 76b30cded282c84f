"""Runs of deployments and the states they go through.

::

    scheduled ──▶ pending ──▶ running ──▶ completed | failed | crashed
        ▲ └──────────┴───────────┴──────▶ cancelled
        └─────────── retry ◀──────┘

Workers take runs with :meth:`Runs.claim`, which moves due ``pending`` runs of unpaused
queues to ``running`` while honouring each queue's concurrency limit across every
worker: on PostgreSQL the queue rows are locked (``FOR UPDATE``) for the claim and the
runs picked with ``FOR UPDATE SKIP LOCKED``; on SQLite every transaction is ``BEGIN
IMMEDIATE`` (the database's single write lock). A claimed run's ``message`` names its
worker (``running on worker NAME``) and its ``updated_at`` is the worker's heartbeat:
see :mod:`interlock.service.deployments.worker` for the lease rule. A deployment's own
``concurrency_limit`` is honoured the same way, besides its queue's (its runs are in its
queue, whose rows the claim locks).

A failed attempt that its deployment's policy retries goes back to ``scheduled``
(:meth:`Runs.retry`) with ``attempt`` + 1; a run on a remote target keeps the remote
run's id, link and own state word (:meth:`Runs.set_remote`).

A state change is one compare-and-set statement (``UPDATE ... WHERE state IN (allowed
sources)``), so two workers racing to move one run cannot both win, and a change that is
not allowed raises :class:`~interlock.service.store.errors.InvalidTransition` naming the
states it may move to. A run created with an idempotency key that exists already is the
run created first: an action retried after a crash starts its deployment once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.sdk.vocabulary import FINAL_RUN_STATES, INITIAL_RUN_STATES, RUN_TRANSITIONS
from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.errors import InvalidRecord, InvalidTransition, NotFound
from interlock.service.store.records import Run, RunState

__all__ = ["TERMINAL", "TRANSITIONS", "RunClaims", "Runs", "running_message"]

TRANSITIONS = RUN_TRANSITIONS
"""The states each state may move to (Interlock's vocabulary: :mod:`interlock.sdk.vocabulary`)."""
TERMINAL = FINAL_RUN_STATES


def running_message(worker: str) -> str:
    """The ``message`` of a run while ``worker`` runs it (how a restarted worker finds it)."""
    return f"running on worker {worker}"


class RunClaims:
    """The worker side of runs: claiming, heartbeats, and finding lost runs.

    Reached as ``store.runs`` (``Runs`` inherits it); kept apart because only workers
    use it.
    """

    _db: Database

    async def claim(
        self,
        queues: Sequence[str] | None,
        *,
        worker: str,
        limit: int,
        log_path: Callable[[uuid.UUID], str] | None = None,
    ) -> list[Run]:
        """Move up to ``limit`` due pending runs of ``queues`` to ``running`` for ``worker``.

        Due: ``scheduled_at`` has passed. Paused queues give none. A queue with a
        ``concurrency_limit`` gives at most the limit minus its runs ``running`` now (on
        any worker). Runs come oldest ``scheduled_at`` first, queue by queue in the order
        given. Two claimers never take the same run, and never exceed a limit together.

        Args:
            queues: The queues to take from (``None``: every queue, by name).
            worker: The claiming worker's name (stored in the run's ``message``).
            limit: At most this many runs in all.
            log_path: The log file of a run, stored in ``log_path`` (optional).
        """
        if limit < 1 or (queues is not None and not queues):
            return []
        now = self._db.now()
        postgres = self._db.dialect == "postgresql"
        claimed: list[Run] = []
        async with self._db.transaction() as connection:
            query = (
                sa.select(t.work_queues.c.name, t.work_queues.c.concurrency_limit)
                .where(t.work_queues.c.paused.is_(False))
                .order_by(t.work_queues.c.name)
            )
            if queues is not None:
                query = query.where(t.work_queues.c.name.in_(list(queues)))
            if postgres:
                # Claimers of one queue queue up here, so each counts the others' runs.
                query = query.with_for_update(of=t.work_queues)
            limits = {row.name: row.concurrency_limit for row in await connection.execute(query)}
            room = await _deployment_room(connection)
            for queue in list(limits) if queues is None else queues:
                if queue not in limits or len(claimed) >= limit:
                    continue
                wanted = limit - len(claimed)
                queue_limit = limits[queue]
                if queue_limit is not None:
                    running = await connection.scalar(
                        sa.select(sa.func.count())
                        .select_from(t.runs)
                        .where(t.runs.c.queue == queue, t.runs.c.state == "running")
                    )
                    wanted = min(wanted, queue_limit - int(running or 0))
                if wanted <= 0:
                    continue
                pick = (
                    sa.select(t.runs.c.id, t.runs.c.deployment)
                    .where(
                        t.runs.c.queue == queue,
                        t.runs.c.state == "pending",
                        t.runs.c.scheduled_at <= now,
                    )
                    .order_by(t.runs.c.scheduled_at, t.runs.c.created_at, t.runs.c.id)
                    .limit(wanted)
                )
                if postgres:
                    pick = pick.with_for_update(skip_locked=True)
                if room:
                    # Skip full deployments; pick more than wanted, as some may be skipped.
                    pick = pick.where(
                        t.runs.c.deployment.not_in([d for d, n in room.items() if n <= 0])
                    ).limit(wanted + sum(max(n, 0) for n in room.values()) + wanted)
                picked = 0
                for run_id, deployment in (await connection.execute(pick)).all():
                    if picked >= wanted:
                        break
                    if deployment in room:
                        if room[deployment] <= 0:
                            continue
                        room[deployment] -= 1
                    picked += 1
                    values: dict[str, Any] = {
                        "state": "running",
                        "started_at": now,
                        "updated_at": now,
                        "message": running_message(worker),
                    }
                    if log_path is not None:
                        values["log_path"] = log_path(run_id)
                    update = (
                        sa.update(t.runs)
                        .where(t.runs.c.id == run_id, t.runs.c.state == "pending")
                        .values(**values)
                        .returning(*t.runs.c)
                    )
                    row = (await connection.execute(update)).one_or_none()
                    if row is not None:
                        claimed.append(_run(row))
        return claimed

    async def release_due(self, queues: Sequence[str] | None) -> list[Run]:
        """Move ``scheduled`` runs whose time has come to ``pending`` (``None``: all queues)."""
        if queues is not None and not queues:
            return []
        update = (
            sa.update(t.runs)
            .where(t.runs.c.state == "scheduled", t.runs.c.scheduled_at <= self._db.now())
            .values(state="pending", updated_at=self._db.now())
            .returning(*t.runs.c)
        )
        if queues is not None:
            update = update.where(t.runs.c.queue.in_(list(queues)))
        async with self._db.transaction() as connection:
            return [_run(row) for row in await connection.execute(update)]

    async def states(self, run_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, RunState]:
        """The current state of each of these runs (unknown ids are left out)."""
        ids = list(run_ids)
        if not ids:
            return {}
        query = sa.select(t.runs.c.id, t.runs.c.state).where(t.runs.c.id.in_(ids))
        async with self._db.transaction() as connection:
            return {row.id: row.state for row in await connection.execute(query)}

    async def heartbeat(self, run_ids: Iterable[uuid.UUID]) -> None:
        """Renew the lease of these runs (their ``updated_at``) while they are running."""
        ids = list(run_ids)
        if not ids:
            return
        update = (
            sa.update(t.runs)
            .where(t.runs.c.id.in_(ids), t.runs.c.state == "running")
            .values(updated_at=self._db.now())
        )
        async with self._db.transaction() as connection:
            await connection.execute(update)

    async def crash_worker_runs(self, worker: str, message: str) -> list[Run]:
        """Mark ``crashed`` every run still ``running`` on ``worker`` (it restarted)."""
        return await self._crash(t.runs.c.message == running_message(worker), message)

    async def crash_expired(self, older_than: datetime, message: str) -> list[Run]:
        """Mark ``crashed`` every ``running`` run whose last heartbeat is before ``older_than``."""
        return await self._crash(t.runs.c.updated_at < older_than, message)

    async def _crash(self, condition: Any, message: str) -> list[Run]:
        now = self._db.now()
        update = (
            sa.update(t.runs)
            .where(t.runs.c.state == "running", condition)
            .values(state="crashed", ended_at=now, updated_at=now, message=message)
            .returning(*t.runs.c)
        )
        async with self._db.transaction() as connection:
            return [_run(row) for row in await connection.execute(update)]


class Runs(RunClaims):
    """Runs and their state changes."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(
        self,
        deployment: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        state: RunState = "pending",
        scheduled_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Create a run of ``deployment`` with its default parameters updated by these.

        Returns the existing run instead when ``idempotency_key`` was used before.

        Raises:
            NotFound: there is no such deployment.
            InvalidRecord: ``state`` is not where a run starts (scheduled or pending).
        """
        if state not in INITIAL_RUN_STATES:
            raise InvalidRecord("run", deployment, "state", "must be scheduled or pending")
        now = self._db.now()
        async with self._db.transaction() as connection:
            if idempotency_key is not None:
                existing = await _run_where(connection, t.runs.c.idempotency_key, idempotency_key)
                if existing is not None:
                    return existing
            query = sa.select(t.deployments).where(t.deployments.c.name == deployment)
            target = (await connection.execute(query)).one_or_none()
            if target is None:
                raise NotFound("deployment", deployment)
            run_id = uuid.uuid4()
            insert = self._db.insert(t.runs).values(
                id=run_id,
                deployment=deployment,
                queue=target.queue,
                parameters={**target.parameters, **(parameters or {})},
                state=state,
                idempotency_key=idempotency_key,
                scheduled_at=scheduled_at or now,
                created_at=now,
                updated_at=now,
            )
            await connection.execute(insert.on_conflict_do_nothing())
            # A concurrent create with the same key won the race: return its run.
            column = t.runs.c.id if idempotency_key is None else t.runs.c.idempotency_key
            run = await _run_where(connection, column, idempotency_key or run_id)
            assert run is not None
            return run

    async def get(self, run_id: uuid.UUID) -> Run:
        """The run with this id.

        Raises:
            NotFound: there is none.
        """
        async with self._db.transaction() as connection:
            run = await _run_where(connection, t.runs.c.id, run_id)
        if run is None:
            raise NotFound("run", run_id)
        return run

    async def list(
        self,
        *,
        deployment: str | None = None,
        queue: str | None = None,
        state: RunState | None = None,
        limit: int = 100,
    ) -> list[Run]:
        """Runs, newest first, filtered by deployment, queue or state."""
        query = sa.select(t.runs).order_by(t.runs.c.created_at.desc(), t.runs.c.id).limit(limit)
        if deployment is not None:
            query = query.where(t.runs.c.deployment == deployment)
        if queue is not None:
            query = query.where(t.runs.c.queue == queue)
        if state is not None:
            query = query.where(t.runs.c.state == state)
        async with self._db.transaction() as connection:
            return [_run(row) for row in await connection.execute(query)]

    async def transition(
        self,
        run_id: uuid.UUID,
        state: RunState,
        *,
        message: str | None = None,
        log_path: str | None = None,
    ) -> Run:
        """Move the run to ``state`` if its current state allows it.

        ``running`` stamps ``started_at``; a final state stamps ``ended_at``.

        Raises:
            NotFound: there is no such run.
            InvalidTransition: its current state does not lead to ``state``.
        """
        if state not in TRANSITIONS:
            raise InvalidRecord("run", run_id, "state", f"must be one of {', '.join(TRANSITIONS)}")
        sources = [source for source, targets in TRANSITIONS.items() if state in targets]
        now = self._db.now()
        values: dict[str, Any] = {"state": state, "updated_at": now}
        if state == "running":
            values["started_at"] = now
        if state in TERMINAL:
            values["ended_at"] = now
        if message is not None:
            values["message"] = message
        if log_path is not None:
            values["log_path"] = log_path
        update = (
            sa.update(t.runs)
            .where(t.runs.c.id == run_id, t.runs.c.state.in_(sources))
            .values(**values)
            .returning(*t.runs.c)
        )
        async with self._db.transaction() as connection:
            row = (await connection.execute(update)).one_or_none()
            if row is not None:
                return _run(row)
            current = await _run_where(connection, t.runs.c.id, run_id)
        if current is None:
            raise NotFound("run", run_id)
        raise InvalidTransition(run_id, current.state, state, TRANSITIONS[current.state])

    async def retry(
        self, run_id: uuid.UUID, *, attempt: int, scheduled_at: datetime, message: str
    ) -> Run:
        """Move a ``running`` run's attempt ``attempt`` back to ``scheduled`` for another.

        Its ``attempt`` becomes ``attempt + 1``; its remote run (if any) is forgotten.

        Raises:
            InvalidTransition: it is not running that attempt any more (cancelled).
        """
        now = self._db.now()
        update = (
            sa.update(t.runs)
            .where(t.runs.c.id == run_id, t.runs.c.state == "running", t.runs.c.attempt == attempt)
            .values(
                state="scheduled",
                attempt=attempt + 1,
                scheduled_at=scheduled_at,
                updated_at=now,
                message=message,
                remote_id=None,
                remote_url=None,
                remote_state=None,
            )
            .returning(*t.runs.c)
        )
        async with self._db.transaction() as connection:
            row = (await connection.execute(update)).one_or_none()
            if row is not None:
                return _run(row)
            current = await _run_where(connection, t.runs.c.id, run_id)
        if current is None:
            raise NotFound("run", run_id)
        raise InvalidTransition(run_id, current.state, "scheduled", TRANSITIONS[current.state])

    async def set_remote(
        self,
        run_id: uuid.UUID,
        *,
        remote_id: str,
        remote_url: str | None,
        remote_state: str,
        message: str | None = None,
    ) -> None:
        """Keep the remote run of a ``running`` run: its id, link and own state word."""
        values: dict[str, Any] = {
            "remote_id": remote_id[:500],
            "remote_url": remote_url,
            "remote_state": remote_state[:64],
        }
        if message is not None:
            values["message"] = message
        update = (
            sa.update(t.runs)
            .where(t.runs.c.id == run_id, t.runs.c.state == "running")
            .values(**values)
        )
        async with self._db.transaction() as connection:
            await connection.execute(update)


async def _deployment_room(connection: AsyncConnection) -> dict[str, int]:
    """Free places of each deployment that has a concurrency limit (its limit - running)."""
    deployments = t.deployments.c
    limited = {
        row.name: row.concurrency_limit
        for row in await connection.execute(
            sa.select(deployments.name, deployments.concurrency_limit).where(
                deployments.concurrency_limit.is_not(None)
            )
        )
    }
    if not limited:
        return {}
    running = await connection.execute(
        sa.select(t.runs.c.deployment, sa.func.count())
        .where(t.runs.c.state == "running", t.runs.c.deployment.in_(list(limited)))
        .group_by(t.runs.c.deployment)
    )
    counts = {row[0]: int(row[1]) for row in running}
    return {name: limit - counts.get(name, 0) for name, limit in limited.items()}


async def _run_where(connection: AsyncConnection, column: Any, value: object) -> Run | None:
    row = (await connection.execute(sa.select(t.runs).where(column == value))).one_or_none()
    return None if row is None else _run(row)


def _run(row: sa.Row[Any]) -> Run:
    return Run(
        id=row.id,
        deployment=row.deployment,
        queue=row.queue,
        parameters=row.parameters,
        state=row.state,
        idempotency_key=row.idempotency_key,
        scheduled_at=row.scheduled_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        log_path=row.log_path,
        message=row.message,
        created_at=row.created_at,
        updated_at=row.updated_at,
        attempt=row.attempt,
        remote_id=row.remote_id,
        remote_url=row.remote_url,
        remote_state=row.remote_state,
    )
