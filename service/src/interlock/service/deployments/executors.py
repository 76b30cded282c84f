"""Executors of the deployment actions: runs, queues and schedules.

The actions: ``run_deployment``, ``pause_queue`` / ``resume_queue``,
``pause_schedule`` / ``resume_schedule``.

``run_deployment`` starts a run with the action's idempotency key, so a retried action
(a dispatcher restart, a timeout after the run was created) starts its deployment once.
A name that does not exist fails the action at once (``retryable=False``); a database
failure is retried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlock.sdk.executors import ActionFailed, ActionRequest, ActionResult
from interlock.service.deployments.runs import start_run
from interlock.service.store import NotFound, StoreError

if TYPE_CHECKING:
    from interlock.service.actions.registry import ServiceContext

__all__ = [
    "PauseQueueExecutor",
    "PauseScheduleExecutor",
    "ResumeQueueExecutor",
    "ResumeScheduleExecutor",
    "RunDeploymentExecutor",
]


def _field(request: ActionRequest, name: str) -> str:
    value = request.action.get(name)
    if not isinstance(value, str) or not value:
        raise ActionFailed(f"{request.kind}: the action has no {name!r}", retryable=False)
    return value


class _Executor:
    def __init__(self, context: ServiceContext) -> None:
        self.services = context.services

    async def close(self) -> None:
        """Nothing to release."""


class RunDeploymentExecutor(_Executor):
    """Starts runs of deployments."""

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Start a run of the action's deployment with its parameters."""
        deployment = _field(request, "deployment")
        parameters: Any = request.action.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ActionFailed(
                f"run_deployment {deployment!r}: parameters must be an object", retryable=False
            )
        try:
            run = await start_run(
                self.services,
                deployment,
                parameters=parameters,
                idempotency_key=str(request.idempotency_key),
                reason=f"rule {request.rule}",
            )
        except NotFound:
            raise ActionFailed(
                f"run_deployment: no deployment {deployment!r}", retryable=False
            ) from None
        except StoreError as exc:
            raise ActionFailed(f"run_deployment {deployment!r}: {exc}") from None
        return ActionResult(
            detail=f"run {run.id} of {deployment} ({run.state})",
            data={"run_id": str(run.id), "deployment": deployment, "state": run.state},
        )


class _QueuePaused(_Executor):
    paused: bool

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Pause or resume the action's queue."""
        queue = _field(request, "queue")
        verb = "pause" if self.paused else "resume"
        try:
            await self.services.store.queues.set_paused(queue, self.paused)
        except NotFound:
            raise ActionFailed(f"{verb}_queue: no queue {queue!r}", retryable=False) from None
        except StoreError as exc:
            raise ActionFailed(f"{verb}_queue {queue!r}: {exc}") from None
        return ActionResult(detail=f"queue {queue} {verb}d", data={"queue": queue})


class PauseQueueExecutor(_QueuePaused):
    """Pauses work queues (their runs wait)."""

    paused = True


class ResumeQueueExecutor(_QueuePaused):
    """Resumes work queues."""

    paused = False


class _ScheduleEnabled(_Executor):
    enabled: bool

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Switch the action's deployment's schedule off or on."""
        deployment = _field(request, "deployment")
        verb = "resume" if self.enabled else "pause"
        try:
            await self.services.store.deployments.set_schedule_enabled(deployment, self.enabled)
        except NotFound:
            raise ActionFailed(
                f"{verb}_schedule: no deployment {deployment!r}", retryable=False
            ) from None
        except StoreError as exc:
            raise ActionFailed(f"{verb}_schedule {deployment!r}: {exc}") from None
        return ActionResult(
            detail=f"schedule of {deployment} {verb}d", data={"deployment": deployment}
        )


class PauseScheduleExecutor(_ScheduleEnabled):
    """Switches deployments' cron schedules off."""

    enabled = False


class ResumeScheduleExecutor(_ScheduleEnabled):
    """Switches deployments' cron schedules back on."""

    enabled = True
