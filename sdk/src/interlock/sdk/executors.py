"""The executor plugin API: what carries out one kind of action, and what it is given.

An interface package, as opentelemetry-api or apscheduler's ``abc.py`` are: the service
calls executors through it, and plugins implement it, so a plugin depends on
``interlock-sdk`` only, never on the service.

An executor runs one kind of action (``notify``, ``webhook``, ``airflow_trigger_dag``,
...). Executors come from the entry-point group ``interlock.actions``: the entry point's
name is the action kind, its value an :class:`ExecutorFactory` (usually the executor's
class), called once per service with an :class:`ExecutorContext`::

    [project.entry-points."interlock.actions"]
    airflow_trigger_dag = "interlock.adapters.airflow.actions:TriggerDagExecutor"

The dispatcher gives every execution an :class:`ActionRequest` whose
``idempotency_key`` is the same on every attempt of the same action of the same firing:
an executor passes it on wherever the target understands one (an HTTP header, a run's
idempotency key), so a retry after a crash does not act twice.

What every executor promises (``tests/contract/test_executors.py`` checks each installed
one):

- it is built from the context alone, and reads its settings from it: the environment
  it may read is :attr:`ExecutorContext.environ`, never ``os.environ``; a connection an
  action names (``connection="prod-airflow"``) is resolved through
  :attr:`ExecutorContext.connections` each time it runs, never kept;
- :meth:`Executor.execute` raises :class:`~interlock.sdk.errors.ActionFailed` for a
  failure, whose message never holds a secret (a password, a token, an Apprise URL);
- two attempts with the same idempotency key act once;
- :meth:`Executor.close` may be called more than once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import msgspec

from interlock.sdk.connections import ConnectionLookup, no_connections
from interlock.sdk.errors import ActionFailed

__all__ = [
    "GROUP",
    "ActionFailed",
    "ActionRequest",
    "ActionResult",
    "Executor",
    "ExecutorContext",
    "ExecutorFactory",
]

GROUP = "interlock.actions"
"""The entry-point group of executors; each entry point's name is an action kind."""


class ExecutorContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a factory is given to build an executor: all it may read of its host.

    Attributes:
        action_timeout: Seconds one execution may take (the dispatcher cancels it
            after that); a sensible time limit for the executor's own calls.
        environ: The environment variables the executor may read (its default
            connection, credentials): a copy the host took once at start.
        connections: Resolves the connections actions name, as they are at the time
            (see :mod:`interlock.sdk.connections`); a host without connections knows
            none.
    """

    action_timeout: float = 30.0
    environ: Mapping[str, str] = msgspec.field(default_factory=dict)
    connections: ConnectionLookup = msgspec.field(default_factory=no_connections)


class ActionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One execution of one action of one firing.

    Attributes:
        idempotency_key: ``uuid5(firing id, action index)``: equal on every attempt.
        firing_id: The firing that queued the action.
        rule: The rule the firing belongs to.
        kind: The action's kind (``notify``, ``webhook``, ...).
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


class Executor(Protocol):
    """Carries out actions of one kind."""

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Execute ``request`` once.

        Raises:
            ActionFailed: it did not happen; the dispatcher retries or gives up.
        """
        ...

    async def close(self) -> None:
        """Release what the executor holds (HTTP clients); safe to call again."""
        ...


class ExecutorFactory(Protocol):
    """What an ``interlock.actions`` entry point loads: called once per service."""

    def __call__(self, context: ExecutorContext) -> Executor:
        """Build the executor for one running service."""
        ...
