"""The ``emit`` executor: publish a further event with the service's publisher.

The event's id is ``uuid5(idempotency key, "emit")``: every attempt publishes the same
id, so a retry after a lost acknowledgement is a JetStream duplicate, stored once.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from interlock.sdk.errors import EventValidationError
from interlock.sdk.executors import ActionFailed, ActionRequest, ActionResult

if TYPE_CHECKING:
    from interlock.service.actions.registry import ServiceContext

__all__ = ["EmitExecutor", "emitted_event_id"]


def emitted_event_id(idempotency_key: uuid.UUID) -> uuid.UUID:
    """The id of the event an ``emit`` action publishes."""
    return uuid.uuid5(idempotency_key, "emit")


class EmitExecutor:
    """Publishes events for ``emit`` actions."""

    def __init__(self, context: ServiceContext) -> None:
        self.services = context.services

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Publish the event once (a JetStream duplicate if published before)."""
        action = request.action
        publisher = self.services.publisher
        try:
            event = publisher.event(
                str(action.get("event", "")),
                str(action.get("resource_id", "")),
                labels={str(k): str(v) for k, v in (action.get("labels") or {}).items()},
                payload=dict(action.get("payload") or {}),
                id=emitted_event_id(request.idempotency_key),
            )
            result = await publisher.publish(event)
        except (EventValidationError, ValueError, TypeError) as exc:
            raise ActionFailed(f"emit: the event is invalid: {exc}", retryable=False) from None
        how = "stored" if result.stored else "spooled (NATS unreachable; sent when it is back)"
        return ActionResult(
            detail=f"emitted {event.event} for {event.resource_id}: {how}",
            data={"event_id": str(event.id)},
        )

    async def close(self) -> None:
        """Nothing to release."""
