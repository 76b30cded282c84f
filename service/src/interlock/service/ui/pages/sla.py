"""``/sla``: every absence rule x key, nearest deadline first.

Each row is a window the engine watches (``services.rules.windows()``), in one of four
states: ``pending`` (its deadline is ahead, fewer events arrived than expected; with a
countdown), ``met`` (enough arrived), ``missed`` (judged and not resolved) and
``resolved late`` (its last miss was resolved, by an event that came after the
deadline: the key's newest firing is a resolution, in this window; or, for a key whose
rule watches no window any more, the resolution of the last day). Filters: state, rule,
tag, owner. A page shows :data:`PAGE_SIZE` rows.

The stream (``/sla/stream``) looks at the windows every :data:`TICK` seconds: a row whose
state, counts or window changed is sent alone (``sla-update``, swapped out of band by
its id); when rows come or go, the whole body of the table is. The page's ``cursor`` is a
digest of its rows: a stream that finds another (the board changed between render and
connection, or while the browser was away) sends the body first.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage, Template

from interlock.rules.engine.firing import Firing
from interlock.rules.engine.trigger_state import WindowView
from interlock.service.api.deps import ServicesDep
from interlock.service.context import Services
from interlock.service.ui.catalog import CatalogEntry, RuleCatalog, catalog_of
from interlock.service.ui.pages.rows import dom_id
from interlock.service.ui.render import countdown_text, fragment, page
from interlock.service.ui.security import ui_read
from interlock.service.ui.stream import sse

__all__ = ["PAGE_SIZE", "SlaBoard", "SlaController", "SlaFilters", "SlaRow", "build_sla_board"]

PAGE_SIZE: Final = 200
TICK: Final = 1.0
STATES: Final = ("pending", "met", "missed", "resolved")
_LOOKBACK = timedelta(hours=24)
"""How far back a key's newest firing is looked for: a miss resolved late in the last day
is listed even when its rule watches no window for the key any more."""


@dataclass(frozen=True, slots=True)
class SlaFilters:
    """The board's filters."""

    state: str = ""
    rule: str = ""
    tag: str = ""
    owner: str = ""
    page: int = 1

    def query(self, **extra: Any) -> str:
        """As a query string (empty ones left out)."""
        values = {"state": self.state, "rule": self.rule, "tag": self.tag, "owner": self.owner}
        values |= {"page": str(self.page) if self.page > 1 else "", **extra}
        return urlencode({k: v for k, v in values.items() if v})


@dataclass(frozen=True, slots=True)
class SlaRow:
    """One window: a rule x key."""

    dom_id: str
    rule: str
    key: str
    state: str
    """``pending``, ``met``, ``missed`` or ``resolved``."""
    state_word: str
    arrived: int
    expected: int
    start: datetime
    deadline: datetime
    countdown: str
    owner: str
    tags: tuple[str, ...]
    resolved_at: datetime | None

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        """What a change of shows (the countdown moves by itself)."""
        return (self.state, self.arrived, self.expected, self.start, self.deadline)


@dataclass(frozen=True, slots=True)
class SlaBoard:
    """The SLA board."""

    filters: SlaFilters
    rows: tuple[SlaRow, ...]
    total: int
    """Rows passing the filters (all pages)."""
    counts: tuple[tuple[str, int], ...]
    """(state, rows in it) over the whole board, before filtering by state."""
    cursor: str
    """Digest of the rows shown: where the stream starts."""
    stream_url: str
    previous_url: str | None
    next_url: str | None
    tags: tuple[str, ...]
    owners: tuple[str, ...]
    rules: tuple[str, ...]


_Found = tuple[datetime, str, str, str, str, tuple[int, int], datetime, datetime | None]
"""(deadline, rule, key, state, state word, (arrived, expected), start, resolved at)."""


def _state(window: WindowView, newest: Firing | None) -> tuple[str, str, datetime | None]:
    if window.state == "missed":
        return "missed", "missed", None
    if newest is not None and newest.status == "resolved" and newest.at >= window.start:
        return "resolved", "resolved late", newest.at
    if window.arrived >= window.expected:
        return "met", "met", None
    return "pending", "pending", None


def digest(rows: tuple[SlaRow, ...]) -> str:
    """A short digest of what ``rows`` show (ids, order and fingerprints)."""
    text = "|".join(f"{row.dom_id}:{row.fingerprint}" for row in rows)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _row(
    entry: CatalogEntry,
    key: str,
    *,
    state: str,
    word: str,
    counts: tuple[int, int],
    span: tuple[datetime, datetime],
    now: datetime,
    resolved_at: datetime | None = None,
) -> SlaRow:
    rule = entry.rule
    start, deadline = span
    return SlaRow(
        dom_id=dom_id("sla", entry.record.name, key, start.isoformat()),
        rule=entry.record.name,
        key=key,
        state=state,
        state_word=word,
        arrived=counts[0],
        expected=counts[1],
        start=start,
        deadline=deadline,
        countdown=countdown_text(deadline, now),
        owner=rule.owner or "",
        tags=tuple(rule.tags),
        resolved_at=resolved_at,
    )


async def build_sla_board(
    services: Services, catalog: RuleCatalog, filters: SlaFilters, *, page_size: int = PAGE_SIZE
) -> SlaBoard:
    """The board as of now: the windows watched, and the misses resolved in the last day."""
    now = services.clock.now()
    entries = await catalog.entries()
    absence = {
        name: entry
        for name, entry in entries.items()
        if entry.absence
        and (not filters.rule or name == filters.rule)
        and (not filters.tag or filters.tag in entry.rule.tags)
        and (not filters.owner or entry.rule.owner == filters.owner)
    }
    windows = [w for w in services.rules.windows(filters.rule or None) if w.rule in absence]
    newest = await services.store.firings.latest_per_key(sorted(absence), since=now - _LOOKBACK)
    # Every window is judged and counted, but rows are built only for the page shown.
    found: list[_Found] = []
    for w in windows:
        state, word, resolved_at = _state(w, newest.get((w.rule, w.key)))
        found.append(
            (w.deadline, w.rule, w.key, state, word, (w.arrived, w.expected), w.start, resolved_at)
        )
    watched = {(w.rule, w.key) for w in windows}
    for (rule, key), firing in newest.items():
        if firing.status == "resolved" and (rule, key) not in watched:
            counts = (firing.arrived or 0, firing.expected or 0)
            start, end = firing.window_start or firing.at, firing.window_end or firing.at
            found.append((end, rule, key, "resolved", "resolved late", counts, start, firing.at))
    found.sort(key=lambda item: (item[0], item[1], item[2]))
    counts_by_state = dict.fromkeys(STATES, 0)
    for item in found:
        counts_by_state[item[3]] += 1
    if filters.state:
        found = [item for item in found if item[3] == filters.state]
    number = max(1, filters.page)
    first = (number - 1) * page_size
    shown = tuple(
        _row(
            absence[rule],
            key,
            state=state,
            word=word,
            counts=counts,
            span=(start, deadline),
            now=now,
            resolved_at=resolved_at,
        )
        for deadline, rule, key, state, word, counts, start, resolved_at in found[
            first : first + page_size
        ]
    )
    rows = found
    every_absence = [entry for entry in entries.values() if entry.absence]
    return SlaBoard(
        filters=filters,
        rows=shown,
        total=len(rows),
        counts=tuple(counts_by_state.items()),
        cursor=digest(shown),
        stream_url=f"/sla/stream?{filters.query(after=digest(shown))}",
        previous_url=f"/sla?{filters.query(page=str(number - 1))}" if number > 1 else None,
        next_url=f"/sla?{filters.query(page=str(number + 1))}"
        if first + page_size < len(rows)
        else None,
        tags=tuple(sorted({tag for entry in every_absence for tag in entry.rule.tags})),
        owners=tuple(sorted({e.rule.owner for e in every_absence if e.rule.owner})),
        rules=tuple(sorted(entry.record.name for entry in every_absence)),
    )


class SlaController(Controller):
    """The SLA board and its stream."""

    path = "/sla"
    include_in_schema = False

    @get("/", guards=[ui_read], name="ui-sla")
    async def board(
        self,
        *,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        sla_state: Annotated[str, QueryParameter(name="state", max_length=20)] = "",
        rule: Annotated[str, QueryParameter(max_length=200)] = "",
        tag: Annotated[str, QueryParameter(max_length=200)] = "",
        owner: Annotated[str, QueryParameter(max_length=200)] = "",
        page_no: Annotated[int, QueryParameter(name="page", ge=1, le=100_000)] = 1,
    ) -> Template:
        """Every absence rule x key: pending, met, missed, resolved late."""
        filters = SlaFilters(state=sla_state, rule=rule, tag=tag, owner=owner, page=page_no)
        context = await build_sla_board(services, catalog_of(request), filters)
        return await page(
            request,
            context,
            template="ui/sla.html",
            fragment="ui/sla/_board.html",
            section="sla",
            title="SLA board",
        )

    @get("/stream", guards=[ui_read], name="ui-sla-stream")
    async def stream(
        self,
        *,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        sla_state: Annotated[str, QueryParameter(name="state", max_length=20)] = "",
        rule: Annotated[str, QueryParameter(max_length=200)] = "",
        tag: Annotated[str, QueryParameter(max_length=200)] = "",
        owner: Annotated[str, QueryParameter(max_length=200)] = "",
        page_no: Annotated[int, QueryParameter(name="page", ge=1, le=100_000)] = 1,
        after: Annotated[str, QueryParameter(max_length=64)] = "",
    ) -> ServerSentEvent:
        """Changed rows (or the whole body) as the windows change."""
        filters = SlaFilters(state=sla_state, rule=rule, tag=tag, owner=owner, page=page_no)
        start = request.headers.get("last-event-id", "").strip() or after
        return sse(request, _updates(request, services, filters, start))


async def _updates(
    request: Request[Any, Any, Any], services: Services, filters: SlaFilters, after: str
) -> AsyncIterator[ServerSentEventMessage]:
    catalog = catalog_of(request)
    shown: tuple[SlaRow, ...] | None = None
    seen = after
    while True:
        board = await build_sla_board(services, catalog, filters)
        if board.cursor != seen:
            ids = [row.dom_id for row in board.rows]
            if shown is not None and ids == [row.dom_id for row in shown]:
                before = {row.dom_id: row.fingerprint for row in shown}
                changed = [row for row in board.rows if row.fingerprint != before[row.dom_id]]
                text = fragment(
                    request, "ui/sla/_update.html", page=board, rows=changed, body=False
                )
            else:
                text = fragment(
                    request, "ui/sla/_update.html", page=board, rows=board.rows, body=True
                )
            seen = board.cursor
            yield ServerSentEventMessage(event="sla-update", id=seen, data=text)
        shown = board.rows
        await asyncio.sleep(TICK)
