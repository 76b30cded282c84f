"""The events runs publish: ``interlock.run.<state>``, and the ``runs`` metric.

Each event has ``resource.id`` = the deployment's name (label ``queue``) and a payload
with ``run_id``, ``deployment``, ``queue``, ``parameters``, ``state``, ``message``,
``duration`` (seconds from start to end, for finished runs that started; else ``null``),
``attempt``, ``remote_id`` and ``remote_url`` (a run on a remote target, once started)
and ``reason`` (what started it, when known). The event id is derived from the run id
and the state, so publishing it again (a retried action, a restart) stores it once.

Publishing never fails a state change: an event the publisher refuses is logged (the
publisher itself spools events while NATS is away).
"""

from __future__ import annotations

import logging
import uuid

from interlock.sdk.errors import InterlockError
from interlock.sdk.vocabulary import run_event_name
from interlock.service.context import Services
from interlock.service.store import Run

__all__ = ["announce"]

logger = logging.getLogger(__name__)


async def announce(services: Services, run: Run, *, reason: str = "", count: bool = True) -> None:
    """Publish ``interlock.run.<run.state>`` for ``run``; count it in ``metrics.runs``.

    ``count=False`` publishes again without counting (a run found by its idempotency
    key: its event may not have gone out, but it was counted when it was created).
    """
    if count:
        services.metrics.runs.labels(state=run.state).inc()
    duration = None
    if run.started_at is not None and run.ended_at is not None:
        duration = (run.ended_at - run.started_at).total_seconds()
    payload = {
        "run_id": str(run.id),
        "deployment": run.deployment,
        "queue": run.queue,
        "parameters": run.parameters,
        "state": run.state,
        "message": run.message or "",
        "duration": duration,
        "attempt": run.attempt,
    }
    if run.remote_id is not None:
        payload["remote_id"] = run.remote_id
        payload["remote_url"] = run.remote_url
    if reason:
        payload["reason"] = reason
    event = services.publisher.event(
        run_event_name(run.state),
        run.deployment,
        labels={"queue": run.queue},
        payload=payload,
        occurred=run.updated_at,
        # A retried run goes through its states again: each attempt's events are its own.
        id=uuid.uuid5(run.id, run.state if run.attempt == 1 else f"{run.state}#{run.attempt}"),
    )
    try:
        await services.publisher.publish(event)
    except (InterlockError, RuntimeError) as exc:
        logger.error("run %s: cannot publish %s: %s", run.id, event.event, exc)
