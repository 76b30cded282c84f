"""``/firings``: what fired, filtered and paged; a firing's page: why, what it did, each try.

The list pages with the API's cursor (the last firing shown), so a page stays right
while firings are added. A firing's page shows why it fired (its window, expected and
arrived, the events that caused it), each action as rendered with its state, each
attempt (:mod:`interlock.service.store.attempts`), its approval, and for a missed SLA
what waits downstream (:func:`interlock.service.ui.lineage.downstream`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from interlock.service.api.deps import ServicesDep
from interlock.service.api.firings import decode_cursor, encode_cursor
from interlock.service.context import Services
from interlock.service.ui.catalog import RuleCatalog, catalog_of
from interlock.service.ui.lineage import Downstream, downstream
from interlock.service.ui.pages.rows import ApprovalRow, FiringRow
from interlock.service.ui.render import page
from interlock.service.ui.security import ui_read

__all__ = [
    "PERIODS",
    "ActionDetail",
    "AttemptRow",
    "FiringDetailPage",
    "FiringFilters",
    "FiringsController",
    "FiringsPage",
    "build_firing_detail",
    "build_firings",
]

PERIODS: Final = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
_PAGE = 50


@dataclass(frozen=True, slots=True)
class FiringFilters:
    """The list's filters."""

    rule: str = ""
    key: str = ""
    status: str = ""
    period: str = ""
    """``1h``, ``24h``, ``7d``, or empty for all."""
    cursor: str = ""

    def query(self, **extra: str) -> str:
        """As a query string (empty ones left out)."""
        values = {"rule": self.rule, "key": self.key, "status": self.status}
        values |= {"period": self.period, "cursor": self.cursor, **extra}
        return urlencode({k: v for k, v in values.items() if v})


@dataclass(frozen=True, slots=True)
class FiringsPage:
    """The firings page."""

    filters: FiringFilters
    rows: tuple[FiringRow, ...]
    next_url: str | None
    first_url: str | None
    rules: tuple[str, ...]
    periods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One attempt of an action."""

    attempt: int
    outcome: str
    """``succeeded``, ``failed, retried`` or ``failed``."""
    kind: str
    """For the state's colour: ``succeeded``, ``retry`` or ``failed``."""
    error: str | None
    started_at: datetime
    duration: float | None


@dataclass(frozen=True, slots=True)
class ActionDetail:
    """An action of the firing, as rendered, with its attempts."""

    index: int
    kind: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    rendered: dict[str, Any]
    tries: tuple[AttemptRow, ...]


@dataclass(frozen=True, slots=True)
class FiringDetailPage:
    """A firing's page."""

    row: FiringRow
    window_start: datetime | None
    window_end: datetime | None
    expected: int | None
    arrived: int | None
    event_ids: tuple[uuid.UUID, ...]
    actions: tuple[ActionDetail, ...]
    approvals: tuple[ApprovalRow, ...]
    downstream: Downstream | None


async def build_firings(
    services: Services, catalog: RuleCatalog, filters: FiringFilters
) -> FiringsPage:
    """A page of firings, newest first."""
    now = services.clock.now()
    since = now - PERIODS[filters.period] if filters.period in PERIODS else None
    firings = await services.store.firings.list(
        rule=filters.rule or None,
        key=filters.key or None,
        status=filters.status or None,
        since=since,
        after=decode_cursor(filters.cursor) if filters.cursor else None,
        limit=_PAGE,
    )
    entries = await catalog.entries()
    following = encode_cursor(firings[-1]) if len(firings) == _PAGE else None
    first = FiringFilters(
        rule=filters.rule, key=filters.key, status=filters.status, period=filters.period
    )
    return FiringsPage(
        filters=filters,
        rows=tuple(
            FiringRow.of(f, absence=f.rule in entries and entries[f.rule].absence) for f in firings
        ),
        next_url=f"/firings?{filters.query(cursor=following)}" if following else None,
        first_url=f"/firings?{first.query()}" if filters.cursor else None,
        rules=tuple(sorted(entries)),
        periods=tuple(PERIODS),
    )


def _attempt(outcome: str) -> str:
    return {"succeeded": "succeeded", "retry": "failed, retried"}.get(outcome, "failed")


async def build_firing_detail(
    services: Services, catalog: RuleCatalog, firing_id: uuid.UUID
) -> FiringDetailPage:
    """The firing's page.

    Raises:
        NotFound: no such firing.
    """
    store = services.store
    firing = await store.firings.get(firing_id)
    actions = await store.outbox.list(firing_id=firing_id, limit=1000)
    attempts = await store.attempts.of_firing(firing_id)
    approvals = await store.approvals.list(pending=False, firing_id=firing_id)
    entries = await catalog.entries()
    entry = entries.get(firing.rule)
    absence = entry is not None and entry.absence
    below = None
    if entry is not None and absence and firing.status == "fired":
        below = downstream(entry.rule, firing.key, {n: e.rule for n, e in entries.items()})
    return FiringDetailPage(
        row=FiringRow.of(firing, absence=absence),
        window_start=firing.window_start,
        window_end=firing.window_end,
        expected=firing.expected,
        arrived=firing.arrived,
        event_ids=tuple(firing.event_ids),
        actions=tuple(
            ActionDetail(
                index=action.index,
                kind=action.kind,
                state=action.state,
                attempts=action.attempts,
                last_error=action.last_error,
                next_attempt_at=action.next_attempt_at if action.state == "pending" else None,
                rendered=action.action,
                tries=tuple(
                    AttemptRow(
                        attempt=a.attempt,
                        outcome=_attempt(a.outcome),
                        kind=a.outcome,
                        error=a.error,
                        started_at=a.started_at,
                        duration=a.duration,
                    )
                    for a in attempts
                    if a.index == action.index
                ),
            )
            for action in actions
        ),
        approvals=tuple(ApprovalRow.of(approval) for approval in approvals),
        downstream=below,
    )


class FiringsController(Controller):
    """The firings list and a firing's page."""

    path = "/firings"
    include_in_schema = False

    @get("/", guards=[ui_read], name="ui-firings")
    async def firings(
        self,
        *,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        rule: Annotated[str, QueryParameter(max_length=200)] = "",
        key: Annotated[str, QueryParameter(max_length=500)] = "",
        status: Annotated[str, QueryParameter(max_length=20)] = "",
        period: Annotated[str, QueryParameter(max_length=8)] = "",
        cursor: Annotated[str, QueryParameter(max_length=200)] = "",
    ) -> Template:
        """Firings, newest first, filtered by rule, key, status and time."""
        filters = FiringFilters(rule=rule, key=key, status=status, period=period, cursor=cursor)
        context = await build_firings(services, catalog_of(request), filters)
        return await page(
            request,
            context,
            template="ui/firings.html",
            fragment="ui/firings/_list.html",
            section="firings",
            title="Firings",
        )

    @get("/{firing_id:uuid}", guards=[ui_read], name="ui-firing")
    async def firing(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        firing_id: FromPath[uuid.UUID],
    ) -> Template:
        """Why it fired, each action and attempt, its approval, what is downstream."""
        context = await build_firing_detail(services, catalog_of(request), firing_id)
        return await page(
            request,
            context,
            template="ui/firing.html",
            section="firings",
            title=f"Firing of {context.row.rule}",
        )
