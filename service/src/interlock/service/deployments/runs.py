"""Starting and cancelling runs: :func:`start_run` and :func:`cancel_run`.

::

    run = await start_run(services, "backfill-sales", parameters={"date": "2026-03-02"},
                          idempotency_key=f"schedule:backfill-sales:{fire_time}")
    await cancel_run(services, run.id)

A run is created ``pending`` in its deployment's queue (``scheduled`` when
``scheduled_at`` is in the future; a worker makes it ``pending`` when the time comes),
with the deployment's default parameters updated by the given ones. A key used before
returns the run created first, so an action retried after a crash or a schedule fired
twice starts the deployment once. Every state change publishes
``interlock.run.<state>`` (:mod:`.events`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from interlock.sdk.vocabulary import INITIAL_RUN_STATES
from interlock.service.context import Services
from interlock.service.deployments.events import announce
from interlock.service.store import Run, RunState

__all__ = ["cancel_run", "start_run"]


async def start_run(
    services: Services,
    deployment: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    scheduled_at: datetime | None = None,
    reason: str = "",
) -> Run:
    """Create a run of ``deployment`` (or return the one created with this key).

    Args:
        services: The running service.
        deployment: The deployment's name.
        parameters: Updates to its default parameters.
        idempotency_key: The same key returns the same run.
        scheduled_at: Not before this instant (default: now).
        reason: What started it (``schedule``, ``rule sales-sla``, ``api``), put in
            the run's events.

    Raises:
        NotFound: no such deployment.
        StoreError: the database failed.
    """
    now = services.clock.now()
    state: RunState = "scheduled" if scheduled_at is not None and scheduled_at > now else "pending"
    run = await services.store.runs.create(
        deployment,
        parameters=parameters,
        state=state,
        scheduled_at=scheduled_at,
        idempotency_key=idempotency_key,
    )
    if run.state in INITIAL_RUN_STATES:
        # Also for a run found by its key (its event may be lost in a crash): the event
        # id is the same, so it is stored once; it is counted once, when created.
        created_now = run.created_at >= now
        await announce(services, run, reason=reason, count=created_now)
    return run


async def cancel_run(services: Services, run_id: uuid.UUID, *, message: str = "cancelled") -> Run:
    """Cancel a run that has not finished.

    A ``scheduled`` or ``pending`` run never starts; a ``running`` one is terminated by
    its worker, which polls its runs' states (SIGTERM, then SIGKILL after the grace
    period).

    Raises:
        NotFound: no such run.
        InvalidTransition: it has finished already.
    """
    run = await services.store.runs.transition(run_id, "cancelled", message=message)
    await announce(services, run)
    return run
