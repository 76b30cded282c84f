"""``/api/deployments``, ``/api/runs``, ``/api/queues``: what runs, its runs, their queues.

Reading needs scope ``read``. Creating a deployment needs ``admin``: a ``process``
target runs any command on the worker hosts (with the embedded worker, on the service's
own host, which holds the database and the secret key), so it is as powerful as the
admin scope itself. Running, cancelling, pausing and resuming what exists, and creating
queues, need ``write``. A run's log is served as text from the file its worker wrote: it is there
when the worker runs on this machine (the embedded worker, or ``interlock worker`` with
the same data directory); otherwise the answer says so (404).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, MediaType, Response, delete, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, QueryParameter

from interlock.sdk.vocabulary import INITIAL_RUN_STATES
from interlock.service.api import ids
from interlock.service.api.auth import require_admin, require_read, require_write
from interlock.service.api.deps import ServicesDep
from interlock.service.api.fields import (
    MAX_TAGS,
    ConcurrencyLimit,
    Description,
    IdempotencyKey,
    Name,
    Schedule,
    Tag,
)
from interlock.service.deployments.catalog import (
    DEFAULT_QUEUE,
    create_deployment,
    set_policy,
    set_target,
)
from interlock.service.deployments.runs import cancel_run, start_run
from interlock.service.store import Deployment, Run, RunState, WorkQueue

__all__ = [
    "DeploymentController",
    "DeploymentDeleted",
    "NewDeployment",
    "NewPolicy",
    "NewQueue",
    "NewTarget",
    "QueueController",
    "RunController",
    "RunRequest",
]

_MAX_LIST = 1000
_MAX_OFFSET = 2**62  # a byte offset into a log file: far past any real log, and seekable


class NewDeployment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A deployment to create."""

    name: Name
    target: dict[str, Any]
    """``{"type": "process", "command": [...]}`` or ``{"type": "process", "entrypoint":
    "package.module:function"}``, optionally with ``cwd`` and ``env``; or a remote
    target naming a connection: ``{"type": "airflow", "connection": ..., "dag_id": ...,
    "conf": {...}}``, ``{"type": "prefect", "connection": ..., "deployment":
    "flow/name", "parameters": {...}}``, ``{"type": "http", "connection": ..., "path":
    ...}`` (docs/deployment-targets.md)."""
    queue: Name = DEFAULT_QUEUE
    schedule: Schedule | None = None
    """A five-field cron expression (UTC), or none."""
    schedule_enabled: bool = True
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    tags: Annotated[list[Tag], msgspec.Meta(max_length=MAX_TAGS)] = msgspec.field(
        default_factory=list
    )
    description: Description = ""
    policy: dict[str, Any] = msgspec.field(default_factory=dict)
    """Run policy: ``retries``, ``retry_delay`` (s), ``backoff`` (factor), ``timeout`` (s)."""
    concurrency_limit: ConcurrencyLimit | None = None
    """Its runs running at once over every worker, besides its queue's limit."""


class NewTarget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A deployment's new target; the rules that start it are unchanged."""

    target: dict[str, Any]
    """As in :class:`NewDeployment`."""


class NewPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A deployment's run policy and concurrency limit (replacing both)."""

    policy: dict[str, Any] = msgspec.field(default_factory=dict)
    """``retries``, ``retry_delay`` (s), ``backoff`` (factor), ``timeout`` (s)."""
    concurrency_limit: ConcurrencyLimit | None = None
    """Its runs running at once over every worker (none: no limit of its own)."""


class DeploymentDeleted(msgspec.Struct, frozen=True, kw_only=True):
    """What deleting a deployment did."""

    deployment: str
    runs_deleted: int
    """Its finished runs, deleted with it (their log files stay)."""


class RunRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A run to start by hand."""

    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    """Updates to the deployment's default parameters."""
    idempotency_key: IdempotencyKey | None = None
    """The same key returns the run it started first."""


class NewQueue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A work queue to create."""

    name: Name
    concurrency_limit: ConcurrencyLimit | None = None
    """Runs of the queue running at once, over all workers (none: no limit)."""
    paused: bool = False


class DeploymentController(Controller):
    """Deployments: create, list, show, run, and switch their schedules."""

    path = "/api/deployments"
    tags = ["deployments"]  # noqa: RUF012 - Litestar's declared attribute

    @post("/", guards=[require_admin], summary="Create a deployment")
    async def create(self, data: JSONBody[NewDeployment], services: ServicesDep) -> Deployment:
        """Create a deployment (scope ``admin``: its target runs commands on workers).

        400 names what is wrong with its target or schedule.
        """
        return await create_deployment(
            services,
            data.name,
            target=data.target,
            queue=data.queue,
            schedule=data.schedule,
            schedule_enabled=data.schedule_enabled,
            parameters=data.parameters,
            tags=data.tags,
            description=data.description,
            policy=data.policy,
            concurrency_limit=data.concurrency_limit,
        )

    @put("/{name:str}/target", guards=[require_admin], summary="Set a deployment's target")
    async def set_target(
        self, name: FromPath[str], data: JSONBody[NewTarget], services: ServicesDep
    ) -> Deployment:
        """Point the deployment at another target (scope ``admin``, as creating it).

        Its next runs use it; rules starting it are unchanged. 400 names what is wrong
        (an unknown type, a missing field, a connection that does not exist).
        """
        return await set_target(services, name, data.target)

    @put("/{name:str}/policy", guards=[require_write], summary="Set a deployment's run policy")
    async def set_policy(
        self, name: FromPath[str], data: JSONBody[NewPolicy], services: ServicesDep
    ) -> Deployment:
        """Replace its retries, timeout and concurrency limit; 400 names a bad field."""
        return await set_policy(services, name, data.policy, data.concurrency_limit)

    @get("/", guards=[require_read], summary="List deployments")
    async def list_deployments(
        self,
        services: ServicesDep,
        queue: Annotated[str | None, QueryParameter(description="Only this queue's.")] = None,
    ) -> list[Deployment]:
        """Every deployment (of one queue), by name."""
        return await services.store.deployments.list(queue=queue)

    @get("/{name:str}", guards=[require_read], summary="Show a deployment")
    async def show(self, name: FromPath[str], services: ServicesDep) -> Deployment:
        """One deployment; 404 if none."""
        return await services.store.deployments.get(name)

    @delete(
        "/{name:str}",
        guards=[require_admin],
        summary="Delete a deployment",
        status_code=200,
    )
    async def delete_deployment(
        self, name: FromPath[str], services: ServicesDep
    ) -> DeploymentDeleted:
        """Delete a deployment, its schedule and its finished runs (scope ``admin``).

        404 if there is none; 409 while some of its runs are not finished (cancel them
        first). A deployment declared in the service's ``deployments_file`` comes back at
        its next start: remove it there too.
        """
        runs = await services.store.deployments.delete(name)
        return DeploymentDeleted(deployment=name, runs_deleted=runs)

    @post("/{name:str}/run", guards=[require_write], summary="Start a run")
    async def run(
        self, name: FromPath[str], services: ServicesDep, data: JSONBody[RunRequest | None] = None
    ) -> Run:
        """Start a run with these parameters (merged over the defaults); 201 with the run."""
        request = data or RunRequest()
        return await start_run(
            services,
            name,
            parameters=request.parameters,
            idempotency_key=request.idempotency_key,
            reason="api",
        )

    @post(
        "/{name:str}/schedule/{verb:str}",
        guards=[require_write],
        summary="Pause or resume a deployment's schedule",
        status_code=200,
    )
    async def schedule(
        self, name: FromPath[str], verb: FromPath[str], services: ServicesDep
    ) -> Deployment:
        """``pause`` switches the cron schedule off, ``resume`` back on."""
        return await services.store.deployments.set_schedule_enabled(name, _resume(verb))


class RunController(Controller):
    """Runs: list, show, read logs, cancel."""

    path = "/api/runs"
    tags = ["runs"]  # noqa: RUF012 - Litestar's declared attribute

    @get("/", guards=[require_read], summary="List runs")
    async def list_runs(
        self,
        services: ServicesDep,
        deployment: Annotated[str | None, QueryParameter(description="Only its runs.")] = None,
        queue: Annotated[str | None, QueryParameter(description="Only this queue's.")] = None,
        run_state: Annotated[
            RunState | None, QueryParameter(name="state", description="Only in this state.")
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=_MAX_LIST, description="At most this many.")
        ] = 100,
    ) -> list[Run]:
        """Runs, newest first, filtered by deployment, queue or state."""
        return await services.store.runs.list(
            deployment=deployment, queue=queue, state=run_state, limit=limit
        )

    @get("/{run_id:str}", guards=[require_read], summary="Show a run")
    async def show(self, run_id: FromPath[str], services: ServicesDep) -> Run:
        """One run, by its id or a unique prefix of it (at least 4 hex digits); 404 if none."""
        return await services.store.runs.get(await ids.run_id(services, run_id))

    @get(
        "/{run_id:str}/logs",
        guards=[require_read],
        summary="A run's output",
        media_type=MediaType.TEXT,
    )
    async def logs(
        self,
        run_id: FromPath[str],
        services: ServicesDep,
        tail: Annotated[
            int | None, QueryParameter(ge=1, le=100_000, description="Only the last N lines.")
        ] = None,
        offset: Annotated[
            int,
            QueryParameter(
                ge=0, le=_MAX_OFFSET, description="Only from this byte on (for --follow)."
            ),
        ] = 0,
        as_json: Annotated[
            bool,
            QueryParameter(
                name="json", description='Answer {"text": ..., "size": ...} as JSON instead.'
            ),
        ] = False,
    ) -> Response[Any]:
        """The run's log (stdout and stderr) as text; empty until a worker starts it.

        Whole, its last ``tail`` lines, or from byte ``offset`` on (what ``--follow``
        asks for). Header ``X-Log-Size`` is the log's size in bytes; with ``?json=true``
        the answer is ``{"text": ..., "size": ...}``.
        """
        run = await services.store.runs.get(await ids.run_id(services, run_id))
        data, size = b"", 0
        if run.log_path is not None:
            data, size = await _log(run, offset)
        text = data.decode(errors="replace")
        if tail is not None:
            text = "".join(text.splitlines(keepends=True)[-tail:])
        if as_json:
            return Response({"text": text, "size": size}, media_type=MediaType.JSON)
        return Response(text, media_type=MediaType.TEXT, headers={"X-Log-Size": str(size)})

    @post("/{run_id:str}/cancel", guards=[require_write], summary="Cancel a run", status_code=200)
    async def cancel(self, run_id: FromPath[str], services: ServicesDep) -> Run:
        """Cancel a run that has not finished (409 if it has); a running one is terminated."""
        found = await ids.run_id(services, run_id)
        return await cancel_run(services, found, message="cancelled through the API")


async def _log(run: Run, offset: int) -> tuple[bytes, int]:
    assert run.log_path is not None
    try:
        return await anyio.to_thread.run_sync(_read_log, Path(run.log_path), offset)
    except FileNotFoundError:
        if run.state in INITIAL_RUN_STATES:
            return b"", 0
        raise NotFoundException(
            detail=f"the log of run {run.id} ({Path(run.log_path).name}) is not on "
            "this machine: its worker wrote it elsewhere"
        ) from None


class QueueController(Controller):
    """Work queues: list, create, pause, resume."""

    path = "/api/queues"
    tags = ["queues"]  # noqa: RUF012 - Litestar's declared attribute

    @get("/", guards=[require_read], summary="List queues")
    async def list_queues(self, services: ServicesDep) -> list[WorkQueue]:
        """Every queue, by name."""
        return await services.store.queues.list()

    @post("/", guards=[require_write], summary="Create a queue")
    async def create(self, data: JSONBody[NewQueue], services: ServicesDep) -> WorkQueue:
        """Create a queue; 409 if it exists, 400 for a bad name or a limit out of range."""
        return await services.store.queues.create(
            data.name, concurrency_limit=data.concurrency_limit, paused=data.paused
        )

    @post(
        "/{name:str}/{verb:str}",
        guards=[require_write],
        summary="Pause or resume a queue",
        status_code=200,
    )
    async def pause_or_resume(
        self, name: FromPath[str], verb: FromPath[str], services: ServicesDep
    ) -> WorkQueue:
        """``pause`` holds the queue's runs; ``resume`` lets workers take them again."""
        return await services.store.queues.set_paused(name, not _resume(verb))


def _resume(verb: str) -> bool:
    verbs: dict[str, bool] = {"pause": False, "resume": True}
    if verb not in verbs:
        raise NotFoundException(detail=f"no action {verb!r}: use pause or resume")
    return verbs[verb]


def _read_log(path: Path, offset: int) -> tuple[bytes, int]:
    """The log from byte ``offset`` on, and its whole size."""
    with path.open("rb") as log:
        size = log.seek(0, 2)
        log.seek(min(offset, size))
        return log.read(), size
