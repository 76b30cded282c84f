"""``/api/worker``: what a worker needs to run runs with the API alone (scope ``worker``).

``interlock worker --api-url URL`` with a key of scope ``worker`` holds neither the
database's credentials nor NATS: it claims, follows and records its runs here
(:class:`~interlock.service.deployments.api_ledger.ApiLedger`). Each call does on the
server what the store's ledger does for a worker inside it
(:class:`~interlock.service.deployments.ledger.StoreLedger`): the same atomic claim, the
same lease rule, the same ``interlock.run.<state>`` events.

===========================================  ===============================================
``POST /api/worker/recover``                 crash the runs left running under its name
``POST /api/worker/heartbeat``               renew its runs' lease; crash the runs of
                                             workers that stopped renewing theirs
``POST /api/worker/states``                  the states of its runs (cancelled ones stop)
``POST /api/worker/claim``                   release due runs, claim pending ones
``GET /api/worker/deployments/{name}``       a deployment's target and policy
``POST /api/worker/runs/{id}/finish``        record how a run ended
``POST /api/worker/runs/{id}/retry``         send a failed attempt back to ``scheduled``
``PUT /api/worker/runs/{id}/remote``         keep a run's remote run (id, link, state)
``POST /api/worker/runs/{id}/log``           append to a run's log (``offset``: where the
                                             bytes start; a repeat is skipped)
``GET /api/worker/connections/{name}``       a connection with its secrets, for a target
===========================================  ===============================================

A run is changed only by the worker it runs on (its ``message`` names it): another
worker's call is refused with 409, as is a change its state no longer allows (the run
was cancelled meanwhile). The logs a worker sends are kept in the server's data
directory (``<data_dir>/runs/<run id>.log``), where ``GET /api/runs/{id}/logs`` reads
them; behind several replicas, that is the disk of the replica that answered.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeAlias

import anyio
import msgspec
from litestar import Controller, Request, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody, QueryParameter

from interlock.sdk.connections import ConnectionNotFound, ResolvedConnection
from interlock.sdk.targets import RemoteRun
from interlock.service.api.auth import require_worker
from interlock.service.api.bodies import BODY_MEDIA_TYPES_OPT
from interlock.service.api.deps import ServicesDep
from interlock.service.context import Services
from interlock.service.deployments.ledger import StoreLedger
from interlock.service.store import Run, RunState
from interlock.service.store.runs import running_message

__all__ = ["LOG_MEDIA_TYPE", "WorkerController"]

LOG_MEDIA_TYPE = "application/octet-stream"
"""What a log chunk is sent as."""

WorkerName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
_MAX_RUNS = 10_000
_MAX_OFFSET = 2**62


class Recover(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A worker that (re)started."""

    worker: WorkerName


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A worker's runs, still alive; ``lease``: seconds after which silent runs crash."""

    worker: WorkerName
    runs: Annotated[list[uuid.UUID], msgspec.Meta(max_length=_MAX_RUNS)]
    lease: Annotated[float, msgspec.Meta(gt=0, le=86_400)]


class StatesOf(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Runs whose states a worker follows."""

    runs: Annotated[list[uuid.UUID], msgspec.Meta(max_length=_MAX_RUNS)]


class Claim(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a worker can take: ``queues`` (``None``: every queue), ``limit`` runs."""

    worker: WorkerName
    limit: Annotated[int, msgspec.Meta(ge=1, le=1_000)]
    queues: Annotated[list[str], msgspec.Meta(min_length=1, max_length=1_000)] | None = None


class DeploymentTarget(msgspec.Struct, frozen=True, kw_only=True):
    """A deployment as a worker runs it."""

    target: dict[str, Any]
    policy: dict[str, Any] | None


class Finish(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a run ended."""

    worker: WorkerName
    state: RunState
    message: Annotated[str, msgspec.Meta(max_length=10_000)]


class Retry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A failed attempt to try again in ``delay`` seconds."""

    worker: WorkerName
    attempt: Annotated[int, msgspec.Meta(ge=1)]
    delay: Annotated[float, msgspec.Meta(ge=0, le=86_400 * 100)]
    message: Annotated[str, msgspec.Meta(max_length=10_000)]


class Remote(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A run's remote run."""

    worker: WorkerName
    remote_id: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    remote_url: Annotated[str, msgspec.Meta(max_length=2_000)] | None = None
    remote_state: Annotated[str, msgspec.Meta(max_length=64)]
    state: RunState = "running"


class LogSize(msgspec.Struct, frozen=True, kw_only=True):
    """How many bytes the server holds of a run's log."""

    size: int


async def _own(services: Services, run_id: uuid.UUID, worker: str) -> Run:
    """The run, if it runs on ``worker``; 409 if not (another worker, or it ended)."""
    run = await services.store.runs.get(run_id)
    if run.state != "running" or run.message != running_message(worker):
        raise ClientException(
            detail=f"run {run_id} is not running on worker {worker} (it is {run.state}"
            f"{': ' + run.message if run.message else ''})",
            status_code=409,
        )
    return run


_LEDGER_STATE = "interlock_store_ledger"

LedgerDep: TypeAlias = NamedDependency[StoreLedger]
"""The application's one :class:`StoreLedger`, injected by name (``ledger``)."""


def _store_ledger(services: ServicesDep, state: State) -> StoreLedger:
    """One ledger per application (its log directory is resolved once, not per call)."""
    ledger: StoreLedger | None = state.get(_LEDGER_STATE)
    if ledger is None:
        ledger = state[_LEDGER_STATE] = StoreLedger(services)
    return ledger


def _append(path: Path, offset: int, data: bytes) -> int:
    """Write ``data``, which starts at byte ``offset``, skipping what is there already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as log:
        size = log.tell()
        if offset > size:
            return size
        log.write(data[size - offset :])
        return log.tell()


class WorkerController(Controller):
    """The worker API (see the module docstring)."""

    path = "/api/worker"
    tags = ["workers"]  # noqa: RUF012 - Litestar's declared attribute
    guards = [require_worker]  # noqa: RUF012 - Litestar's declared attribute
    dependencies = {"ledger": Provide(_store_ledger, sync_to_thread=False)}  # noqa: RUF012

    @post("/recover", summary="Crash the runs a restarted worker left running", status_code=200)
    async def recover(self, data: JSONBody[Recover], ledger: LedgerDep) -> list[Run]:
        """Mark ``crashed`` the runs still ``running`` under the worker's name."""
        return await ledger.recover(data.worker)

    @post("/heartbeat", summary="Renew a worker's runs", status_code=204)
    async def heartbeat(self, data: JSONBody[Heartbeat], ledger: LedgerDep) -> None:
        """Renew the lease of the runs; crash the runs whose lease passed (any worker's)."""
        await ledger.heartbeat(data.worker, data.runs, timedelta(seconds=data.lease))

    @post("/states", summary="The states of runs", status_code=200)
    async def states(
        self, data: JSONBody[StatesOf], services: ServicesDep
    ) -> dict[uuid.UUID, RunState]:
        """Each run's state now (unknown ids are left out)."""
        return await services.store.runs.states(data.runs)

    @post("/claim", summary="Claim due runs", status_code=200)
    async def claim(self, data: JSONBody[Claim], ledger: LedgerDep) -> list[Run]:
        """Release due scheduled runs, then claim up to ``limit`` pending ones."""
        return await ledger.claim(data.queues, worker=data.worker, limit=data.limit)

    @get("/deployments/{name:str}", summary="A deployment's target and policy")
    async def deployment(self, name: FromPath[str], ledger: LedgerDep) -> DeploymentTarget:
        """What the worker runs for a run of ``name``."""
        target, policy = await ledger.deployment(name)
        return DeploymentTarget(target=target, policy=policy)

    @post("/runs/{run_id:uuid}/finish", summary="Record how a run ended", status_code=200)
    async def finish(
        self,
        run_id: FromPath[uuid.UUID],
        data: JSONBody[Finish],
        services: ServicesDep,
        ledger: LedgerDep,
    ) -> Run:
        """Move the run to its final state (409: not this worker's, or it moved on)."""
        run = await _own(services, run_id, data.worker)
        return await ledger.end(run, data.state, data.message)

    @post("/runs/{run_id:uuid}/retry", summary="Retry a failed attempt later", status_code=200)
    async def retry(
        self,
        run_id: FromPath[uuid.UUID],
        data: JSONBody[Retry],
        services: ServicesDep,
        ledger: LedgerDep,
    ) -> None:
        """Send attempt ``attempt`` back to ``scheduled``, due in ``delay`` seconds."""
        run = await _own(services, run_id, data.worker)
        if run.attempt != data.attempt:
            raise ClientException(
                detail=f"run {run_id} runs attempt {run.attempt}, not {data.attempt}",
                status_code=409,
            )
        await ledger.retry(run, delay=data.delay, message=data.message, worker=data.worker)

    @put("/runs/{run_id:uuid}/remote", summary="Keep a run's remote run", status_code=204)
    async def remote(
        self,
        run_id: FromPath[uuid.UUID],
        data: JSONBody[Remote],
        services: ServicesDep,
        ledger: LedgerDep,
    ) -> None:
        """Store the remote run's id, link and own state word on the run."""
        run = await _own(services, run_id, data.worker)
        remote = RemoteRun(
            remote_id=data.remote_id,
            state=data.state,
            url=data.remote_url,
            remote_state=data.remote_state,
        )
        await ledger.set_remote(run, remote, worker=data.worker)

    @post(
        "/runs/{run_id:uuid}/log",
        summary="Append to a run's log",
        status_code=200,
        opt={BODY_MEDIA_TYPES_OPT: (LOG_MEDIA_TYPE,)},
    )
    async def log(
        self,
        run_id: FromPath[uuid.UUID],
        request: Request[Any, Any, Any],
        *,
        services: ServicesDep,
        ledger: LedgerDep,
        worker: Annotated[str, QueryParameter(min_length=1, max_length=200)],
        offset: Annotated[int, QueryParameter(ge=0, le=_MAX_OFFSET)] = 0,
    ) -> LogSize:
        """Append the body: raw bytes of the log, from byte ``offset`` on.

        The body is sent as ``application/octet-stream``. Bytes the server holds already
        are skipped (a repeat after a lost answer); an ``offset`` past the end is not
        written. Either way the answer is the size now: the worker sends from there.
        """
        run = await services.store.runs.get(run_id)
        if run.message != running_message(worker) and run.state == "running":
            raise ClientException(
                detail=f"run {run_id} is not running on worker {worker}", status_code=409
            )
        data = await request.body()
        size = await anyio.to_thread.run_sync(_append, ledger.log_path(run_id), offset, data)
        return LogSize(size=size)

    @get("/connections/{name:str}", summary="A connection with its secrets (for a target)")
    async def connection(self, name: FromPath[str], services: ServicesDep) -> ResolvedConnection:
        """The connection as an executor uses it: settings and secrets in clear."""
        try:
            return await services.store.connections.resolve(name)
        except ConnectionNotFound as exc:
            raise NotFoundException(detail=str(exc)) from None
