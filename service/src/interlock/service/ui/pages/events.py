"""``/events``: the live feed of events, filtered, pausable; an event's own page.

The feed opens on the newest events of the last 15 minutes (at most :data:`MAX_ROWS`),
read from JetStream (:class:`~interlock.service.api.event_log.EventLog`), and renders up
to the stream's last sequence, its ``cursor``. Its stream (``/events/stream``) delivers
what is stored after it, each message the rows of one batch of events (newest first),
``id`` the last sequence read. The page keeps the newest :data:`MAX_ROWS` rows.
Pausing is a link: the paused page is the same feed without its stream; resuming loads
the newest rows again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage, Template

from interlock.sdk.event import Event
from interlock.service.api.deps import ServicesDep
from interlock.service.api.event_log import MAX_SEQUENCE, EventFilter, EventLog, LoggedEvent
from interlock.service.api.events_query import event_log_of
from interlock.service.context import Services
from interlock.service.ui.catalog import RuleCatalog, catalog_of
from interlock.service.ui.lineage import rules_matching
from interlock.service.ui.pages.rows import FiringRow
from interlock.service.ui.render import fragment, page
from interlock.service.ui.security import ui_read
from interlock.service.ui.stream import resume_from, sse

__all__ = [
    "MAX_ROWS",
    "EventDetail",
    "EventFeed",
    "EventFilters",
    "EventRow",
    "EventsController",
    "build_event_detail",
    "build_event_feed",
]

MAX_ROWS: Final = 100
"""Rows the feed shows at most; a live batch larger than this shows its newest."""
WINDOW: Final = timedelta(minutes=15)
"""How far back the feed opens."""
_FIND_SCAN: Final = 50_000


@dataclass(frozen=True, slots=True)
class EventFilters:
    """The feed's filters, as the query string has them."""

    name: str = ""
    resource: str = ""
    label: str = ""
    source: str = ""
    paused: bool = False

    def event_filter(self) -> EventFilter:
        """The log's filter."""
        return EventFilter(
            name=self.name.strip() or ">",
            resource=self.resource.strip(),
            label=self.label.strip(),
            source=self.source.strip(),
        )

    def query(self, **extra: Any) -> str:
        """The filters (and ``extra``) as a query string, empty ones left out."""
        values = {"name": self.name, "resource": self.resource, "label": self.label}
        values |= {"source": self.source, **extra}
        return urlencode({k: v for k, v in values.items() if v not in ("", None, False)})


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event in the feed."""

    sequence: int
    dom_id: str
    name: str
    resource: str
    labels: str
    """The resource's other keys, ``key=value`` joined."""
    source: str
    occurred: datetime | None
    stored_at: datetime
    valid: bool

    @classmethod
    def of(cls, logged: LoggedEvent) -> EventRow:
        """The row of a recorded event."""
        event = logged.event
        labels = ""
        if event is not None:
            labels = ", ".join(f"{k}={v}" for k, v in sorted(event.resource.items()) if k != "id")
        return cls(
            sequence=logged.sequence,
            dom_id=f"event-{logged.sequence}",
            name=logged.name,
            resource=event.resource.get("id", "") if event is not None else "",
            labels=labels,
            source=event.source if event is not None else "",
            occurred=event.occurred if event is not None else None,
            stored_at=logged.stored_at,
            valid=event is not None,
        )


@dataclass(frozen=True, slots=True)
class EventFeed:
    """The events page."""

    filters: EventFilters
    rows: tuple[EventRow, ...]
    cursor: int
    """The stream's last sequence when rendered: the live part starts after it."""
    since: datetime
    problem: str | None
    """Why the filters cannot be used (then nothing is shown)."""
    stream_url: str
    pause_url: str
    resume_url: str
    max_rows: int
    scanned: int


@dataclass(frozen=True, slots=True)
class EventDetail:
    """An event's page."""

    row: EventRow
    document: str
    """The event as JSON (or the message's text, if it is not an event)."""
    problem: str | None
    related: tuple[tuple[str, str], ...]
    """(role, resource id) of its related resources."""
    rules: tuple[str, ...]
    """Rules with a condition it satisfies (by their definitions now)."""
    firings: tuple[FiringRow, ...]
    """Firings that cite it."""


async def build_event_feed(
    log: EventLog, filters: EventFilters, now: datetime, *, max_rows: int = MAX_ROWS
) -> EventFeed:
    """The newest events of the last 15 minutes passing ``filters``, and the cursor."""
    wanted = filters.event_filter()
    problem = wanted.problem()
    since = now - WINDOW
    rows: tuple[EventRow, ...] = ()
    cursor, scanned = 0, 0
    if problem is None:
        found = await log.latest(wanted, since=since, limit=max_rows)
        rows = tuple(EventRow.of(logged) for logged in found.events)
        cursor, scanned = found.last_sequence, found.scanned
    return EventFeed(
        filters=filters,
        rows=rows,
        cursor=cursor,
        since=since,
        problem=problem,
        stream_url=f"/events/stream?{filters.query(after=str(cursor))}",
        pause_url=f"/events?{filters.query(paused='1')}",
        resume_url=f"/events?{filters.query()}",
        max_rows=max_rows,
        scanned=scanned,
    )


async def build_event_detail(
    services: Services, log: EventLog, catalog: RuleCatalog, sequence: int
) -> EventDetail:
    """The event at ``sequence``, what it satisfies and what cites it.

    Raises:
        NotFoundException: no message there (expired or deleted).
    """
    logged = await log.get(sequence)
    if logged is None:
        raise NotFoundException(
            detail=f"no event at position {sequence}: it expired from the stream, or never was"
        )
    event = logged.event
    if event is None:
        return EventDetail(
            row=EventRow.of(logged),
            document=logged.raw or "",
            problem=logged.problem,
            related=(),
            rules=(),
            firings=(),
        )
    entries = await catalog.entries()
    citing = await services.store.firings.citing(event.id, since=_earliest(event))
    return EventDetail(
        row=EventRow.of(logged),
        document=_document(event),
        problem=None,
        related=tuple((r.get("role", ""), r.get("id", "")) for r in event.related),
        rules=tuple(rules_matching((entry.rule for entry in entries.values()), event)),
        firings=tuple(
            FiringRow.of(f, absence=f.rule in entries and entries[f.rule].absence) for f in citing
        ),
    )


def _earliest(event: Event) -> datetime:
    """The earliest time a firing citing ``event`` can carry (a firing follows its events)."""
    return event.occurred - timedelta(seconds=1)


def _document(event: Event) -> str:
    import msgspec  # noqa: PLC0415

    return msgspec.json.format(msgspec.json.encode(event), indent=2).decode()


class EventsController(Controller):
    """The feed, its stream, and an event's page."""

    path = "/events"
    include_in_schema = False

    @get("/", guards=[ui_read], name="ui-events")
    async def feed(
        self,
        *,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        name: Annotated[str, QueryParameter(max_length=300)] = "",
        resource: Annotated[str, QueryParameter(max_length=500)] = "",
        label: Annotated[str, QueryParameter(max_length=500)] = "",
        source: Annotated[str, QueryParameter(max_length=200)] = "",
        paused: Annotated[bool, QueryParameter()] = False,
    ) -> Template:
        """The feed: the last 15 minutes, then live."""
        filters = EventFilters(
            name=name, resource=resource, label=label, source=source, paused=paused
        )
        context = await build_event_feed(event_log_of(request), filters, services.clock.now())
        return await page(
            request,
            context,
            template="ui/events.html",
            fragment="ui/events/_feed.html",
            section="events",
            title="Events",
        )

    @get("/stream", guards=[ui_read], name="ui-events-stream")
    async def stream(
        self,
        *,
        request: Request[Any, Any, Any],
        name: Annotated[str, QueryParameter(max_length=300)] = "",
        resource: Annotated[str, QueryParameter(max_length=500)] = "",
        label: Annotated[str, QueryParameter(max_length=500)] = "",
        source: Annotated[str, QueryParameter(max_length=200)] = "",
        after: Annotated[int, QueryParameter(ge=0, le=MAX_SEQUENCE - 1)] = 0,
    ) -> ServerSentEvent:
        """Rows of the events stored after ``after`` (or ``Last-Event-ID``), as they come."""
        filters = EventFilters(name=name, resource=resource, label=label, source=source)
        start = resume_from(request, after) or 0
        return sse(request, _rows(request, event_log_of(request), filters, start))

    @get("/{sequence:int}", guards=[ui_read], name="ui-event")
    async def event(
        self, request: Request[Any, Any, Any], services: ServicesDep, sequence: FromPath[int]
    ) -> Template:
        """One event: its JSON, related resources, the rules it satisfies, its firings."""
        context = await build_event_detail(
            services, event_log_of(request), catalog_of(request), sequence
        )
        return await page(
            request,
            context,
            template="ui/event.html",
            section="events",
            title=f"Event {context.row.name}",
        )

    @get("/by-id/{event_id:uuid}", guards=[ui_read], name="ui-event-by-id")
    async def by_id(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[uuid.UUID],
        near: Annotated[datetime | None, QueryParameter()] = None,
    ) -> Redirect:
        """Find an event by its id around a time (a firing's); its page, else 404.

        Reads the stream from a minute before ``near`` (at most 50,000 messages).
        """
        log = event_log_of(request)
        since = near - timedelta(minutes=1) if near is not None else None
        after: int | None = None
        scanned = 0
        while scanned < _FIND_SCAN:
            found = await log.read(EventFilter(), since=since, after=after, limit=1000)
            scanned += found.scanned
            for logged in found.events:
                if logged.event is not None and logged.event.id == event_id:
                    return Redirect(f"/events/{logged.sequence}", status_code=303)
            if found.next_after is None:
                break
            after = found.next_after
        raise NotFoundException(
            detail=f"event {event_id} is not in the stream near that time (expired, or "
            "published much later than it occurred)"
        )


async def _rows(
    request: Request[Any, Any, Any], log: EventLog, filters: EventFilters, after: int
) -> AsyncIterator[ServerSentEventMessage]:
    async for position, batch in log.follow(filters.event_filter(), after=after):
        if not batch:
            continue
        rows = [EventRow.of(logged) for logged in reversed(batch[-MAX_ROWS:])]
        skipped = len(batch) - len(rows)
        text = fragment(request, "ui/events/_rows.html", rows=rows, skipped=skipped)
        yield ServerSentEventMessage(event="event-row", id=position, data=text)
