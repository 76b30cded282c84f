"""The deployment-target plugin API: what runs a deployment somewhere else than a worker.

A deployment's target says where its runs execute. ``process`` (a subprocess of an
Interlock worker) is the service's own; every other kind (``airflow``, ``prefect``,
``http``) is a plugin found through the entry-point group ``interlock.targets``, whose
entry point's name is the target's ``type`` and whose value is a :class:`TargetFactory`
(usually the class), called once per worker with an
:class:`~interlock.sdk.executors.ExecutorContext`::

    [project.entry-points."interlock.targets"]
    airflow = "interlock.adapters.airflow.target:AirflowTarget"

A worker claims a run from its queue as for a process, then calls :meth:`Target.start`
(which starts the remote run, or finds the one an earlier call started: the
:attr:`TargetRun.key` is the same on every call for one attempt), then
:meth:`Target.poll` until the remote run ends, and :meth:`Target.cancel` when the
Interlock run is cancelled. Each call names a connection (``target["connection"]``)
that the plugin resolves **at that call** through
:attr:`~interlock.sdk.executors.ExecutorContext.connections`, so a rotated credential
is used by the next call.

Errors: :class:`TargetInvalid` for a target that can never run (checked when the
deployment is created or its target set); :class:`~interlock.sdk.errors.ActionFailed`
for a call that failed (``retryable``: the system did not answer; the worker polls
again, or fails the attempt when starting). Messages never hold a secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import msgspec

from interlock.sdk.connections import ConnectionKind
from interlock.sdk.errors import InterlockError
from interlock.sdk.executors import ExecutorContext
from interlock.sdk.vocabulary import RunState

__all__ = [
    "GROUP",
    "RemoteRun",
    "Target",
    "TargetFactory",
    "TargetInvalid",
    "TargetRun",
]

GROUP = "interlock.targets"
"""The entry-point group of target kinds; each entry point's name is a target ``type``."""


class TargetInvalid(InterlockError, ValueError):
    """A target that can never run: a field is missing or malformed.

    Attributes:
        field: The target's field at fault (``dag_id``, ``connection``).
        reason: What is expected there.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"target.{field} {reason}")


class TargetRun(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt of one Interlock run, as a target plugin sees it.

    Attributes:
        run_id: The Interlock run's id.
        deployment: The deployment's name.
        attempt: 1 for the first attempt, 2 for its first retry, ...
        parameters: The run's parameters (the deployment's defaults updated).
        target: The deployment's target as stored (``type``, ``connection``, ...).
    """

    run_id: uuid.UUID
    deployment: str
    attempt: int
    parameters: dict[str, Any]
    target: dict[str, Any]

    @property
    def key(self) -> str:
        """Equal on every call for this attempt: the remote run's idempotency key."""
        return f"{self.run_id}-{self.attempt}"


class RemoteRun(msgspec.Struct, frozen=True, kw_only=True):
    """What the remote system says about its run, in Interlock's words and its own.

    Attributes:
        remote_id: The remote run's id (a DAG run id, a flow run id, a request's URL).
        url: Where a person sees it (the remote system's UI), if anywhere.
        state: Its state in Interlock's vocabulary (``pending``, ``running``,
            ``completed``, ``failed``, ``cancelled``, ``crashed``).
        remote_state: The remote system's own word (``queued``, ``RUNNING``, ``HTTP 200``).
        message: One line for people (a failure's reason), without secrets.
    """

    remote_id: str
    url: str | None = None
    state: RunState
    remote_state: str = ""
    message: str = ""


class Target(Protocol):
    """Runs deployments of one target kind on a remote system."""

    connection_kind: ConnectionKind
    """The kind of connection ``target["connection"]`` must name."""

    def check(self, target: Mapping[str, Any]) -> None:
        """Refuse a target that can never run (without calling anything).

        Raises:
            TargetInvalid: naming the field and what is expected.
        """
        ...

    async def start(self, run: TargetRun) -> RemoteRun:
        """Start the remote run of this attempt, or find the one started with its key.

        Raises:
            ActionFailed: it could not be started.
        """
        ...

    async def poll(self, run: TargetRun, remote_id: str) -> RemoteRun:
        """The remote run's state now.

        Raises:
            ActionFailed: it cannot be read (``retryable``: try again later).
        """
        ...

    async def cancel(self, run: TargetRun, remote_id: str) -> str:
        """Cancel the remote run where the system allows; one line saying what was done.

        Raises:
            ActionFailed: the system refused or did not answer.
        """
        ...

    async def close(self) -> None:
        """Release what it holds (HTTP clients); safe to call again."""
        ...


class TargetFactory(Protocol):
    """What an ``interlock.targets`` entry point loads: called once per worker."""

    def __call__(self, context: ExecutorContext) -> Target:
        """Build the target kind for one worker."""
        ...
