"""``/api/firings``: what rules fired, and how their actions are going."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import FromPath, QueryParameter

from interlock.rules.engine.firing import Firing
from interlock.service.api.auth import require_read
from interlock.service.api.deps import ServicesDep
from interlock.service.store import OutboxAction

__all__ = ["FiringController", "FiringDetail"]

_MAX_LIMIT = 1000


class FiringDetail(msgspec.Struct, frozen=True, kw_only=True):
    """A firing and the state of each of its actions."""

    firing: Firing
    actions: list[OutboxAction]


class FiringController(Controller):
    """Firings, newest first."""

    path = "/api/firings"
    tags = ["firings"]  # noqa: RUF012 - Litestar's declared attribute

    @get("/", guards=[require_read], summary="List firings")
    async def list_firings(
        self,
        services: ServicesDep,
        *,
        rule: Annotated[str | None, QueryParameter(description="Only this rule's.")] = None,
        key: Annotated[str | None, QueryParameter(description="Only this for_each key.")] = None,
        since: Annotated[
            datetime | None, QueryParameter(description="At or after (ISO 8601, offset).")
        ] = None,
        until: Annotated[datetime | None, QueryParameter(description="Before this time.")] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=_MAX_LIMIT, description="At most this many.")
        ] = 100,
    ) -> list[Firing]:
        """Firings, newest first, filtered by rule, key and time (``since <= at < until``)."""
        return await services.store.firings.list(
            rule=rule, key=key, since=since, until=until, limit=limit
        )

    @get("/{firing_id:uuid}", guards=[require_read], summary="Show a firing")
    async def get_firing(
        self, firing_id: FromPath[uuid.UUID], services: ServicesDep
    ) -> FiringDetail:
        """The firing and the state of each action it queued; 404 if none."""
        firing = await services.store.firings.get(firing_id)
        actions = await services.store.outbox.list(firing_id=firing_id, limit=_MAX_LIMIT)
        return FiringDetail(firing=firing, actions=actions)
