"""``/api/firings``: what rules fired, and how their actions are going.

Times in queries carry a UTC offset (``2026-01-31T09:00:00Z``); one without, or one that
falls outside years 1 to 9999 once in UTC, is refused with 400.

The list is paged with a cursor: a full page answers with ``Link: <...>; rel="next"``
and ``X-Next-Cursor``; pass that value as ``cursor`` (with the same filters) for the
next page. The cursor names the last firing shown (its time and id), so firings added
meanwhile neither repeat nor shift the pages.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get
from litestar.exceptions import ClientException
from litestar.params import FromPath, QueryParameter

from interlock.rules.engine.firing import Firing
from interlock.sdk.vocabulary import FiringStatus
from interlock.service.api import ids
from interlock.service.api.auth import require_read
from interlock.service.api.deps import ServicesDep
from interlock.service.store import Attempt, OutboxAction

__all__ = ["FiringController", "FiringDetail", "decode_cursor", "encode_cursor", "utc_param"]

_MAX_LIMIT = 1000


class FiringDetail(msgspec.Struct, frozen=True, kw_only=True):
    """A firing and the state of each of its actions."""

    firing: Firing
    actions: list[OutboxAction]
    attempts: list[Attempt] = msgspec.field(default_factory=list)
    """Each attempt of its actions (by action, in the order they ran): when it started,
    how it ended, its error and how long it took."""


class FiringController(Controller):
    """Firings, newest first."""

    path = "/api/firings"
    tags = ["firings"]  # noqa: RUF012 - Litestar's declared attribute

    @get("/", guards=[require_read], summary="List firings")
    async def list_firings(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        *,
        rule: Annotated[str | None, QueryParameter(description="Only this rule's.")] = None,
        key: Annotated[str | None, QueryParameter(description="Only this for_each key.")] = None,
        status: Annotated[
            FiringStatus | None,
            QueryParameter(description="Only firings (fired) or resolutions (resolved)."),
        ] = None,
        since: Annotated[
            datetime | None, QueryParameter(description="At or after (ISO 8601, offset).")
        ] = None,
        until: Annotated[datetime | None, QueryParameter(description="Before this time.")] = None,
        cursor: Annotated[
            str | None,
            QueryParameter(description="Continue after this (X-Next-Cursor of the last page)."),
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=_MAX_LIMIT, description="At most this many.")
        ] = 100,
    ) -> Response[list[Firing]]:
        """Firings, newest first, filtered by rule, key, status and time (``since <= at < until``).

        A full page carries ``X-Next-Cursor`` and ``Link: <...>; rel="next"``: ask again
        with ``cursor`` set to it for the next page.
        """
        firings = await services.store.firings.list(
            rule=rule,
            key=key,
            status=status,
            since=utc_param(since, "since"),
            until=utc_param(until, "until"),
            after=decode_cursor(cursor) if cursor else None,
            limit=limit,
        )
        headers: dict[str, str] = {}
        if len(firings) == limit:
            following = encode_cursor(firings[-1])
            query = {k: v for k, v in request.query_params.items() if k != "cursor"}
            link = f"{request.url.path}?{urlencode({**query, 'cursor': following})}"
            headers = {"X-Next-Cursor": following, "Link": f'<{link}>; rel="next"'}
        return Response(firings, headers=headers)

    @get("/{firing_id:str}", guards=[require_read], summary="Show a firing")
    async def get_firing(self, firing_id: FromPath[str], services: ServicesDep) -> FiringDetail:
        """The firing, the state of each action it queued, and each attempt; 404 if none.

        ``firing_id`` is the whole id or a unique prefix of it (at least 4 hex digits).
        """
        found = await ids.firing_id(services, firing_id)
        firing = await services.store.firings.get(found)
        actions = await services.store.outbox.list(firing_id=found, limit=_MAX_LIMIT)
        attempts = await services.store.attempts.of_firing(found)
        return FiringDetail(firing=firing, actions=actions, attempts=attempts)


def encode_cursor(firing: Firing) -> str:
    """The cursor that continues after ``firing`` (its time and id, opaque)."""
    text = f"{firing.at.astimezone(UTC).isoformat()}|{firing.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """``(at, id)`` of a cursor; 400 if it is not one this API made."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, firing = text.partition("|")
        when = datetime.fromisoformat(at)
        if when.utcoffset() is None:
            raise ValueError(at)
        return when.astimezone(UTC), uuid.UUID(firing)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ClientException(
            detail="cursor is not a cursor of this API: pass X-Next-Cursor of the previous "
            "page as it was given"
        ) from None


def utc_param(value: datetime | None, parameter: str) -> datetime | None:
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
