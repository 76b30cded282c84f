"""``GET /api/events``: recorded events, read from JetStream by time, name and resource.

The events are read from the stream ``INTERLOCK_EVENTS`` itself (they are not copied into
the database), through :class:`~interlock.service.api.event_log.EventLog`; its module
says what a query costs. In short: a name pattern is applied by NATS, resource, label
and source here; one request reads at most ``max_scan`` messages (10,000) and hands
back a cursor (``next``) to go on from where it stopped.

- ``since`` / ``until``: times the events were *stored* (with a UTC offset);
- ``after``: the cursor, a stream sequence (``next`` of the previous answer): continue
  after it, oldest first;
- ``order=newest``: the newest ``limit`` events first (``since`` bounds how far back);
- ``GET /api/events/{sequence}``: one event by its position in the stream.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, QueryParameter

from interlock.service.api.auth import require_read
from interlock.service.api.event_log import (
    MAX_SCAN,
    MAX_SEQUENCE,
    EventFilter,
    EventLog,
    LoggedEvent,
)
from interlock.service.api.events import EventController
from interlock.service.api.firings import utc_param

__all__ = [
    "EVENT_LOG_STATE",
    "EventQueryController",
    "EventsController",
    "EventsFound",
    "event_log_of",
]

EVENT_LOG_STATE = "interlock_event_log"
"""Where the application keeps its :class:`EventLog` (``app.state``)."""
_MAX_LIMIT = 1000


class EventsFound(msgspec.Struct, frozen=True, kw_only=True):
    """A page of recorded events."""

    events: list[LoggedEvent]
    """Each with its stream ``sequence``, ``stored_at``, the ``event`` (``null`` for a
    message that is not a valid event, with ``problem`` and ``raw``)."""
    next: int | None
    """Pass as ``after`` for the next page (``null``: nothing more in the range)."""
    scanned: int
    """Messages read to answer (those the resource, label or source filters left out too)."""
    last_sequence: int
    """The stream's last sequence when read: ``after`` for a feed from now on."""


def event_log_of(request: Request[Any, Any, Any]) -> EventLog:
    """The application's :class:`EventLog`."""
    log: EventLog = request.app.state[EVENT_LOG_STATE]
    return log


class EventQueryController(Controller):
    """Reading recorded events (served with publishing, as :class:`EventsController`)."""

    tags = ["events"]  # noqa: RUF012 - Litestar's declared attribute

    @get("/api/events", guards=[require_read], summary="Query recorded events")
    async def query(
        self,
        request: Request[Any, Any, Any],
        *,
        name: Annotated[
            str, QueryParameter(description="Event-name pattern: s3.object.*, airflow.>")
        ] = ">",
        resource: Annotated[
            str, QueryParameter(description="Glob on resource.id: warehouse.*", max_length=500)
        ] = "",
        label: Annotated[
            str, QueryParameter(description="key=value (value may be a glob)", max_length=500)
        ] = "",
        source: Annotated[str, QueryParameter(description="Glob on source", max_length=200)] = "",
        since: Annotated[
            datetime | None, QueryParameter(description="Stored at or after (offset).")
        ] = None,
        until: Annotated[datetime | None, QueryParameter(description="Stored before.")] = None,
        after: Annotated[
            int | None,
            QueryParameter(
                ge=0, le=MAX_SEQUENCE - 1, description="Cursor: continue after this sequence."
            ),
        ] = None,
        order: Annotated[
            Literal["oldest", "newest"],
            QueryParameter(description="oldest first (default), or the newest first."),
        ] = "oldest",
        limit: Annotated[int, QueryParameter(ge=1, le=_MAX_LIMIT)] = 100,
        max_scan: Annotated[
            int, QueryParameter(ge=1, le=MAX_SCAN, description="Messages read at most.")
        ] = MAX_SCAN,
    ) -> EventsFound:
        """Events as JetStream stored them, filtered; oldest first from ``since``/``after``.

        With ``order=newest``, the newest ``limit`` (not older than ``since``). A query
        reads at most ``max_scan`` messages: when it stops there, ``next`` continues.
        """
        wanted = EventFilter(name=name or ">", resource=resource, label=label, source=source)
        if (problem := wanted.problem()) is not None:
            raise ClientException(detail=problem)
        log = event_log_of(request)
        if order == "newest":
            page = await log.latest(
                wanted, since=utc_param(since, "since"), limit=limit, max_scan=max_scan
            )
        else:
            page = await log.read(
                wanted,
                since=utc_param(since, "since"),
                until=utc_param(until, "until"),
                after=after,
                limit=limit,
                max_scan=max_scan,
            )
        return EventsFound(
            events=page.events,
            next=page.next_after,
            scanned=page.scanned,
            last_sequence=page.last_sequence,
        )

    @get("/api/events/{sequence:int}", guards=[require_read], summary="Show a recorded event")
    async def show(self, request: Request[Any, Any, Any], sequence: FromPath[int]) -> LoggedEvent:
        """The message at this stream sequence; 404 if there is none (expired, deleted)."""
        logged = await event_log_of(request).get(sequence)
        if logged is None:
            raise NotFoundException(detail=f"no event at sequence {sequence} (expired?)")
        return logged


class EventsController(EventController, EventQueryController):
    """``/api/events``: publishing (``POST``) and reading (``GET``) in one controller.

    Litestar gives each path one automatic ``OPTIONS`` handler per controller, so two
    controllers cannot share ``/api/events``.
    """
