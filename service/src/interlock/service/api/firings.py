"""``/api/firings``: what rules fired, and how their actions are going.

Times in queries carry a UTC offset (``2026-01-31T09:00:00Z``); one without, or one that
falls outside years 1 to 9999 once in UTC, is refused with 400.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.exceptions import ClientException
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
            rule=rule, key=key, since=_utc(since, "since"), until=_utc(until, "until"), limit=limit
        )

    @get("/{firing_id:uuid}", guards=[require_read], summary="Show a firing")
    async def get_firing(
        self, firing_id: FromPath[uuid.UUID], services: ServicesDep
    ) -> FiringDetail:
        """The firing and the state of each action it queued; 404 if none."""
        firing = await services.store.firings.get(firing_id)
        actions = await services.store.outbox.list(firing_id=firing_id, limit=_MAX_LIMIT)
        return FiringDetail(firing=firing, actions=actions)


def _utc(value: datetime | None, parameter: str) -> datetime | None:
    """``value`` in UTC; 400 if it has no offset or leaves the calendar once in UTC."""
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ClientException(
            detail=f"{parameter} must carry a UTC offset, e.g. 2026-01-31T09:00:00Z "
            "or 2026-01-31T10:00:00+01:00"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ClientException(
            detail=f"{parameter} is out of range: once in UTC it must fall in years 1 to 9999"
        ) from None
