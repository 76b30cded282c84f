"""``/``: is the plane healthy, what fired, what is failing, what waits, what is due next."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from interlock.service.api.deps import ServicesDep
from interlock.service.api.event_log import EventLog
from interlock.service.api.events_query import event_log_of
from interlock.service.context import Services
from interlock.service.pipeline.consumer import CONSUMER_NAME
from interlock.service.store import StoreError
from interlock.service.ui.catalog import RuleCatalog, catalog_of
from interlock.service.ui.pages.rows import ActionRow, ApprovalRow, FiringRow
from interlock.service.ui.render import countdown_text, page
from interlock.service.ui.security import ui_read

__all__ = ["Deadline", "Health", "Overview", "OverviewController", "build_overview"]

_RECENT = 10
_COUNTED = 1000
_PING_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Health:
    """Whether the parts answer."""

    nats: str
    """``ok``, or why not."""
    database: str
    pipeline: str
    """``ok``, or why the pipeline's consumer cannot be read."""
    lag: int | None
    """Events stored but not yet delivered to the pipeline."""
    broken_rules: int
    ok: bool


@dataclass(frozen=True, slots=True)
class Deadline:
    """A window due soon."""

    rule: str
    key: str
    deadline: datetime
    countdown: str
    state: str
    arrived: int
    expected: int


@dataclass(frozen=True, slots=True)
class Overview:
    """The overview page."""

    health: Health
    fired_24h: int
    resolved_24h: int
    counted_all: bool
    """False when there were more firings than counted (``fired_24h`` is a floor)."""
    failing: tuple[ActionRow, ...]
    """Actions failed or suspended, newest first (a few)."""
    failed_count: int
    suspended_count: int
    open_breakers: int
    approvals: tuple[ApprovalRow, ...]
    next_deadlines: tuple[Deadline, ...]
    recent: tuple[FiringRow, ...]


async def _health(services: Services, log: EventLog) -> Health:
    nats = "ok" if services.publisher.connected else "disconnected"
    try:
        await asyncio.wait_for(services.store.ping(), _PING_TIMEOUT)
        database = "ok"
    except TimeoutError:
        database = f"no answer within {_PING_TIMEOUT:g} s"
    except StoreError as exc:
        database = str(exc)
    lag: int | None = None
    consumer = CONSUMER_NAME
    replica = services.replica() if services.replica is not None else None
    if replica is not None and replica.get("engine") == "owner":
        consumer = f"{CONSUMER_NAME}-{replica.get('engine_epoch')}"  # the epoch's own
    try:
        if replica is not None and consumer == CONSUMER_NAME:
            pipeline = "ok"  # a standby: the engine runs on the replica owning its lease
        else:
            lag = await asyncio.wait_for(log.consumer_lag(consumer), _PING_TIMEOUT)
            pipeline = "ok" if lag is not None else "its consumer does not exist"
    except Exception as exc:  # noqa: BLE001 - shown on the page, not raised
        pipeline = f"cannot read its consumer: {exc}"
    broken = len(services.rules.broken())
    ok = nats == "ok" and database == "ok" and pipeline == "ok"
    return Health(
        nats=nats, database=database, pipeline=pipeline, lag=lag, broken_rules=broken, ok=ok
    )


async def build_overview(services: Services, log: EventLog, catalog: RuleCatalog) -> Overview:
    """The overview as of now."""
    now = services.clock.now()
    store = services.store
    health = await _health(services, log)
    day = await store.firings.list(since=now - timedelta(hours=24), limit=_COUNTED)
    entries = await catalog.entries()
    failed = await store.outbox.list(state="failed", limit=_COUNTED)
    suspended = await store.outbox.list(state="suspended", limit=_COUNTED)
    failing = sorted(failed + suspended, key=lambda action: action.updated_at, reverse=True)
    breakers = await store.outbox.breakers(suspended=True)
    approvals = await store.approvals.list(pending=True, limit=_RECENT)
    windows = sorted(
        (w for w in services.rules.windows() if w.state == "pending"), key=lambda w: w.due
    )[:_RECENT]
    return Overview(
        health=health,
        fired_24h=sum(1 for f in day if f.status == "fired"),
        resolved_24h=sum(1 for f in day if f.status == "resolved"),
        counted_all=len(day) < _COUNTED,
        failing=tuple(ActionRow.of(action) for action in failing[:_RECENT]),
        failed_count=len(failed),
        suspended_count=len(suspended),
        open_breakers=len(breakers),
        approvals=tuple(ApprovalRow.of(approval) for approval in approvals),
        next_deadlines=tuple(
            Deadline(
                rule=w.rule,
                key=w.key,
                deadline=w.deadline,
                countdown=countdown_text(w.deadline, now),
                state="met" if w.arrived >= w.expected else "pending",
                arrived=w.arrived,
                expected=w.expected,
            )
            for w in windows
        ),
        recent=tuple(
            FiringRow.of(f, absence=f.rule in entries and entries[f.rule].absence)
            for f in day[:_RECENT]
        ),
    )


class OverviewController(Controller):
    """The overview."""

    include_in_schema = False

    @get("/", guards=[ui_read], name="ui-overview")
    async def overview(self, request: Request[Any, Any, Any], services: ServicesDep) -> Template:
        """Health, firings of the last day, failing actions, approvals, next deadlines."""
        context = await build_overview(services, event_log_of(request), catalog_of(request))
        return await page(
            request, context, template="ui/overview.html", section="overview", title="Overview"
        )
