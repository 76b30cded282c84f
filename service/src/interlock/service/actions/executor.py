"""The contract between the dispatcher and the executors that carry actions out.

An executor runs one kind of action (``notify``, ``webhook``, ``run_deployment``, ...).
Executors come from the entry-point group ``interlock.actions``: the entry point's name
is the action kind, its value a class (or factory) called with the :class:`Services`
that returns an :class:`Executor`. Adapters add theirs the same way (an Airflow DAG run,
a Prefect deployment)::

    [project.entry-points."interlock.actions"]
    airflow_trigger_dag = "interlock.adapters.airflow.actions:TriggerDagExecutor"

The dispatcher gives every execution an :class:`ActionRequest` whose
``idempotency_key`` is the same on every attempt of the same action of the same firing:
an executor passes it on wherever the target understands one (an HTTP header, a run's
idempotency key), so a retry after a crash does not act twice.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["ActionFailed", "ActionRequest", "ActionResult", "Executor", "ExecutorFactory"]


class ActionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One execution of one action of one firing.

    Attributes:
        idempotency_key: ``uuid5(firing id, action index)``: equal on every attempt.
        firing_id: The firing that queued the action.
        rule: The rule the firing belongs to.
        kind: The action's tag (``notify``, ``webhook``, ...).
        action: The action as stored in the outbox, its templates already rendered
            over the firing (see :mod:`interlock.rules.templates`).
        attempt: 1 for the first execution, then 2, 3, ...
    """

    idempotency_key: uuid.UUID
    firing_id: uuid.UUID
    rule: str
    kind: str
    action: dict[str, Any]
    attempt: int


class ActionResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an execution did, for the ``interlock.action.succeeded`` event and the log."""

    detail: str = ""
    """One line for people: ``HTTP 200 from https://hooks.example.com``, ``run 3f2a…``."""
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    """Machine-readable outcome (a run id, a status code); secrets never go here."""


class ActionFailed(Exception):
    """An execution failed; ``retryable=False`` gives the action up at once.

    The message is shown to people and stored: it must name what failed and never
    contain a secret (an Apprise URL, a token, a password).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Executor(Protocol):
    """Carries out actions of one kind."""

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Execute ``request`` once.

        Raises:
            ActionFailed: it did not happen; the dispatcher retries or gives up.
        """
        ...

    async def close(self) -> None:
        """Release what the executor holds (HTTP clients); called once at shutdown."""
        ...


class ExecutorFactory(Protocol):
    """What an ``interlock.actions`` entry point loads: called once per service."""

    def __call__(self, services: Services) -> Executor:
        """Build the executor for one running service."""
        ...
