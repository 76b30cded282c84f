"""``/runs``: deployments, work queues, workers and runs; a run's page with its log, live.

Each run shows its states as a timeline (created, started, ended, with how long each
step took). Queues show whether they are paused and how many of their runs run now
against their limit; workers are those running a run now (a run's ``message`` names
its worker while it runs). Forms (scope ``write``): run a deployment, pause or resume
a queue, cancel a run; each answers with a redirect back.

A run's log streams (``/runs/<id>/stream``): every second the new bytes of its log file
since the last message (``id``: the byte offset, so a reconnection goes on from there),
until the run has ended and its log was read to its end; then ``run-done``, on which
the page closes the stream.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Final

import anyio
from litestar import Controller, Request, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage, Template

from interlock.sdk.vocabulary import FINAL_RUN_STATES, RUN_STATES, RunState
from interlock.service.api.deps import ServicesDep
from interlock.service.context import Services
from interlock.service.deployments.runs import cancel_run, start_run
from interlock.service.store import Run
from interlock.service.ui.render import fragment, page
from interlock.service.ui.security import ui_read, ui_write
from interlock.service.ui.stream import resume_from, sse

__all__ = ["RunDetailPage", "RunRow", "RunsController", "RunsPage", "build_run", "build_runs"]

_LIST = 100
_TAIL_BYTES: Final = 64 * 1024
_CHUNK: Final = 64 * 1024
_POLL = 1.0
_DONE_GRACE = 10.0
"""Seconds a finished run's stream stays open for the page to close it."""
_WORKER_PREFIX = "running on worker "


@dataclass(frozen=True, slots=True)
class Step:
    """A point of a run's timeline."""

    label: str
    at: datetime
    took: float | None
    """Seconds since the step before."""


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run in a list."""

    id: uuid.UUID
    deployment: str
    queue: str
    state: str
    final: bool
    timeline: tuple[Step, ...]
    message: str
    attempt: int = 1
    remote_id: str | None = None
    """The remote run (a DAG run, a flow run) of a deployment on a remote target."""
    remote_url: str | None = None
    """Its page in the remote system's UI (http or https only, else ``None``)."""
    remote_state: str | None = None

    @classmethod
    def of(cls, run: Run) -> RunRow:
        """The row of ``run``."""
        steps = [Step(label="created", at=run.created_at, took=None)]
        if run.scheduled_at > run.created_at:
            steps.append(Step(label="due", at=run.scheduled_at, took=None))
        if run.started_at is not None:
            steps.append(Step(label="started", at=run.started_at, took=None))
        if run.ended_at is not None:
            steps.append(Step(label=run.state, at=run.ended_at, took=None))
        timed = [steps[0]] + [
            Step(label=s.label, at=s.at, took=(s.at - before.at).total_seconds())
            for before, s in pairwise(steps)
        ]
        return cls(
            id=run.id,
            deployment=run.deployment,
            queue=run.queue,
            state=run.state,
            final=run.state in FINAL_RUN_STATES,
            timeline=tuple(timed),
            message=run.message or "",
            attempt=run.attempt,
            remote_id=run.remote_id,
            remote_url=run.remote_url
            if (run.remote_url or "").startswith(("http://", "https://"))
            else None,
            remote_state=run.remote_state,
        )


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    """A deployment."""

    name: str
    target: str
    queue: str
    schedule: str
    schedule_enabled: bool
    description: str


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A work queue."""

    name: str
    paused: bool
    running: int
    waiting: int
    limit: int | None


@dataclass(frozen=True, slots=True)
class RunsPage:
    """The runs page."""

    deployments: tuple[DeploymentRow, ...]
    queues: tuple[QueueRow, ...]
    workers: tuple[tuple[str, int], ...]
    """(worker, runs it runs now)."""
    runs: tuple[RunRow, ...]
    state: str
    states: tuple[RunState, ...] = RUN_STATES
    """Every state a run can be in (the filter's choices)."""


@dataclass(frozen=True, slots=True)
class RunDetailPage:
    """A run's page."""

    row: RunRow
    parameters: dict[str, Any]
    log: str
    log_size: int
    log_note: str | None
    stream_url: str | None


async def build_runs(services: Services, state: str = "") -> RunsPage:
    """Deployments, queues, workers and the latest runs."""
    store = services.store
    deployments = await store.deployments.list()
    queues = await store.queues.list()
    running = await store.runs.list(state="running", limit=10_000)
    pending = await store.runs.list(state="pending", limit=10_000)
    runs = await store.runs.list(state=state or None, limit=_LIST)  # type: ignore[arg-type]
    per_queue = Counter(run.queue for run in running)
    waiting = Counter(run.queue for run in pending)
    workers = Counter(
        run.message.removeprefix(_WORKER_PREFIX)
        for run in running
        if run.message and run.message.startswith(_WORKER_PREFIX)
    )
    return RunsPage(
        deployments=tuple(
            DeploymentRow(
                name=d.name,
                target=str(d.target.get("type", "?")),
                queue=d.queue,
                schedule=d.schedule or "",
                schedule_enabled=d.schedule_enabled,
                description=d.description,
            )
            for d in deployments
        ),
        queues=tuple(
            QueueRow(
                name=q.name,
                paused=q.paused,
                running=per_queue[q.name],
                waiting=waiting[q.name],
                limit=q.concurrency_limit,
            )
            for q in queues
        ),
        workers=tuple(sorted(workers.items())),
        runs=tuple(RunRow.of(run) for run in runs),
        state=state,
    )


def _read(path: Path, offset: int, limit: int) -> tuple[bytes, int]:
    with path.open("rb") as log:
        size = log.seek(0, 2)
        log.seek(min(offset, size))
        return log.read(limit), size


async def _log(run: Run, offset: int, limit: int) -> tuple[bytes, int, str | None]:
    if run.log_path is None:
        return b"", 0, "No log yet: no worker has started it."
    try:
        data, size = await anyio.to_thread.run_sync(_read, Path(run.log_path), offset, limit)
    except FileNotFoundError:
        return b"", 0, "Its log is not on this machine: its worker wrote it elsewhere."
    return data, size, None


async def build_run(services: Services, run_id: uuid.UUID) -> RunDetailPage:
    """A run and the end of its log."""
    run = await services.store.runs.get(run_id)
    size = 0
    if run.log_path is not None:
        _, size, _ = await _log(run, 0, 0)
    start = max(0, size - _TAIL_BYTES)
    data, size, note = await _log(run, start, _TAIL_BYTES)
    text = data.decode(errors="replace")
    if start > 0:
        text = "…" + text.split("\n", 1)[-1]
    final = run.state in FINAL_RUN_STATES
    return RunDetailPage(
        row=RunRow.of(run),
        parameters=run.parameters,
        log=text,
        log_size=size,
        log_note=note,
        stream_url=None if final else f"/runs/{run.id}/stream?after={size}",
    )


class RunsController(Controller):
    """Deployments, queues, runs; a run's page and log."""

    include_in_schema = False

    @get("/runs", guards=[ui_read], name="ui-runs")
    async def runs(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        run_state: Annotated[str, QueryParameter(name="state", max_length=20)] = "",
    ) -> Template:
        """Deployments, queues, workers, and the latest runs."""
        return await page(
            request,
            await build_runs(services, run_state),
            template="ui/runs.html",
            section="runs",
            title="Runs",
        )

    @get("/runs/{run_id:uuid}", guards=[ui_read], name="ui-run")
    async def run(
        self, request: Request[Any, Any, Any], services: ServicesDep, run_id: FromPath[uuid.UUID]
    ) -> Template:
        """A run: its timeline, parameters and log (live while it runs)."""
        context = await build_run(services, run_id)
        return await page(
            request,
            context,
            template="ui/run.html",
            section="runs",
            title=f"Run of {context.row.deployment}",
        )

    @get("/runs/{run_id:uuid}/stream", guards=[ui_read], name="ui-run-stream")
    async def stream(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        run_id: FromPath[uuid.UUID],
        after: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> ServerSentEvent:
        """The log's new bytes as the run writes them; its state when it changes."""
        start = resume_from(request, after) or 0
        return sse(request, _tail(request, services, run_id, start))

    @post("/runs/{run_id:uuid}/cancel", guards=[ui_write], name="ui-run-cancel", status_code=303)
    async def cancel(self, services: ServicesDep, run_id: FromPath[uuid.UUID]) -> Redirect:
        """Cancel the run (a running one is terminated)."""
        await cancel_run(services, run_id, message="cancelled in the web UI")
        return Redirect(f"/runs/{run_id}", status_code=303)

    @post(
        "/deployments/{name:str}/run", guards=[ui_write], name="ui-deployment-run", status_code=303
    )
    async def start(self, services: ServicesDep, name: FromPath[str]) -> Redirect:
        """Start a run of the deployment with its default parameters."""
        run = await start_run(services, name, reason="web UI")
        return Redirect(f"/runs/{run.id}", status_code=303)

    @post("/queues/{name:str}/pause", guards=[ui_write], name="ui-queue-pause", status_code=303)
    async def pause_queue(self, services: ServicesDep, name: FromPath[str]) -> Redirect:
        """Pause the queue: its runs wait."""
        await services.store.queues.set_paused(name, True)
        return Redirect("/runs", status_code=303)

    @post("/queues/{name:str}/resume", guards=[ui_write], name="ui-queue-resume", status_code=303)
    async def resume_queue(self, services: ServicesDep, name: FromPath[str]) -> Redirect:
        """Resume the queue."""
        await services.store.queues.set_paused(name, False)
        return Redirect("/runs", status_code=303)


async def _tail(
    request: Request[Any, Any, Any], services: Services, run_id: uuid.UUID, offset: int
) -> AsyncIterator[ServerSentEventMessage]:
    state = ""
    while True:
        run = await services.store.runs.get(run_id)
        if run.state != state:
            state = run.state
            text = fragment(request, "ui/runs/_state.html", row=RunRow.of(run))
            yield ServerSentEventMessage(event="run-state", id=offset, data=text)
        data, size, _ = await _log(run, offset, _CHUNK)
        if data:
            offset += len(data)
            text = fragment(request, "ui/runs/_log.html", text=data.decode(errors="replace"))
            yield ServerSentEventMessage(event="run-log", id=offset, data=text)
            continue
        if run.state in FINAL_RUN_STATES and offset >= size:
            # Tell the page it is over (it closes the stream: sse-close), rather than end
            # the response, which a browser takes for a lost connection and retries.
            yield ServerSentEventMessage(event="run-done", id=offset, data="")
            await asyncio.sleep(_DONE_GRACE)
            return
        await asyncio.sleep(_POLL)
