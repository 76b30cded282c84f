"""The events the dispatcher publishes about actions: ``interlock.action.*``.

Each has ``resource.id`` = the rule's name, so rules can react to their own actions'
outcomes (``interlock.rules.loops`` refuses the ones that would loop), and a payload
with the firing id, the action's index and kind, the attempt and the idempotency key:

- ``interlock.action.succeeded``: plus ``detail`` and ``data`` from the executor;
- ``interlock.action.failed``: one per failed attempt, plus ``error``, ``final``
  (``false``: it will be retried at ``retry_at``; ``true``: given up, or suspended) and
  ``suspended``;
- ``interlock.action.suspended``: the circuit breaker opened; plus ``failures`` (failed
  attempts in a row) and ``error`` (the last).

Event ids are derived from the idempotency key and the attempt, so publishing an event
again (after a crash) stores it once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from interlock.sdk.event import Event
from interlock.sdk.publisher import Publisher
from interlock.sdk.vocabulary import ActionOutcome, action_event_name
from interlock.service.store import ActionBreaker, OutboxAction

__all__ = ["action_event", "suspended_event"]


def _base(row: OutboxAction, attempt: int) -> dict[str, Any]:
    return {
        "firing_id": str(row.firing_id),
        "index": row.index,
        "kind": row.kind,
        "attempt": attempt,
        "idempotency_key": str(row.idempotency_key),
    }


def action_event(
    publisher: Publisher,
    outcome: ActionOutcome,
    row: OutboxAction,
    *,
    attempt: int,
    occurred: datetime,
    **payload: Any,
) -> Event:
    """``interlock.action.<outcome>`` for one attempt of ``row``."""
    return publisher.event(
        action_event_name(outcome),
        row.rule,
        payload={**_base(row, attempt), **payload},
        occurred=occurred,
        id=uuid.uuid5(row.idempotency_key, f"{outcome}-{attempt}"),
    )


def suspended_event(
    publisher: Publisher, breaker: ActionBreaker, row: OutboxAction, *, attempt: int
) -> Event:
    """``interlock.action.suspended``: ``breaker`` opened on a failure of ``row``."""
    occurred = breaker.suspended_at or breaker.updated_at
    return publisher.event(
        action_event_name("suspended"),
        breaker.rule,
        payload={
            **_base(row, attempt),
            "failures": breaker.failures,
            "error": breaker.last_error or "",
        },
        occurred=occurred,
        id=uuid.uuid5(row.idempotency_key, f"suspended-{attempt}"),
    )
