"""``/rules``: every rule's state at a glance; a rule's page: plan, versions, keys, firings.

Pausing, resuming and resuming suspended actions are forms (``POST``, scope ``write``)
that answer with a redirect back to the rule's page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from interlock.rules.describe import describe_rule
from interlock.service.actions.breaker import resume_action
from interlock.service.api.deps import ServicesDep
from interlock.service.api.plan import diff, rule_document
from interlock.service.context import Services
from interlock.service.store import NotFound
from interlock.service.ui.catalog import CatalogEntry, RuleCatalog, catalog_of
from interlock.service.ui.pages.rows import FiringRow, dom_id
from interlock.service.ui.render import Stamp, countdown_text, page
from interlock.service.ui.security import ui_read, ui_write

__all__ = [
    "KeyState",
    "RuleDetailPage",
    "RuleFilters",
    "RuleRow",
    "RulesController",
    "RulesPage",
    "build_rule_detail",
    "build_rules",
]

STATES: Final = ("active", "paused", "disabled", "broken")
_FIRINGS = 20


@dataclass(frozen=True, slots=True)
class RuleFilters:
    """The list's filters."""

    state: str = ""
    tag: str = ""
    owner: str = ""
    q: str = ""
    """Part of the name or description."""


@dataclass(frozen=True, slots=True)
class RuleRow:
    """A rule in the list."""

    name: str
    dom_id: str
    state: str
    """``active``, ``paused``, ``disabled`` or ``broken``."""
    kind: str
    owner: str
    tags: tuple[str, ...]
    description: str
    last_fired: Stamp | None
    next_deadline: Stamp | None
    next_countdown: str
    broken: str | None


@dataclass(frozen=True, slots=True)
class RulesPage:
    """The rules page."""

    filters: RuleFilters
    rows: tuple[RuleRow, ...]
    total: int
    states: tuple[str, ...]
    tags: tuple[str, ...]
    owners: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeyState:
    """One key's window of an absence rule."""

    key: str
    state: str
    start: datetime
    deadline: datetime
    countdown: str
    arrived: int
    expected: int


@dataclass(frozen=True, slots=True)
class VersionRow:
    """An applied version and what it changed."""

    version: int
    created_at: datetime
    changes: tuple[tuple[str, str, str], ...]
    """(path, before, after) of each field changed from the version before."""


@dataclass(frozen=True, slots=True)
class BreakerRow:
    """The circuit breaker of one of the rule's actions."""

    index: int
    failures: int
    suspended: bool
    last_error: str | None


@dataclass(frozen=True, slots=True)
class RuleDetailPage:
    """A rule's page."""

    row: RuleRow
    plan: str
    versions: tuple[VersionRow, ...]
    windows: tuple[KeyState, ...]
    keeps_windows: bool
    """Whether its kind keeps windows the engine lists (absences)."""
    firings: tuple[FiringRow, ...]
    breakers: tuple[BreakerRow, ...]
    paused: bool
    suspended_actions: int


def _state(entry: CatalogEntry, broken: str | None) -> str:
    if broken is not None:
        return "broken"
    if entry.record.paused:
        return "paused"
    return "active" if entry.rule.enabled else "disabled"


def _row(
    entry: CatalogEntry,
    broken: str | None,
    last: datetime | None,
    upcoming: datetime | None,
    now: datetime,
) -> RuleRow:
    return RuleRow(
        name=entry.record.name,
        dom_id=dom_id("rule", entry.record.name),
        state=_state(entry, broken),
        kind=entry.kind,
        owner=entry.rule.owner or "",
        tags=tuple(entry.rule.tags),
        description=entry.rule.description,
        last_fired=Stamp.of(last),
        next_deadline=Stamp.of(upcoming),
        next_countdown=countdown_text(upcoming, now) if upcoming else "",
        broken=broken,
    )


def _deadlines(services: Services, name: str | None = None) -> dict[str, datetime]:
    """Each rule's nearest deadline still ahead among the windows it watches."""
    nearest: dict[str, datetime] = {}
    for window in services.rules.windows(name):
        if window.state == "pending":
            held = nearest.get(window.rule)
            if held is None or window.deadline < held:
                nearest[window.rule] = window.deadline
    return nearest


def _keep(row: RuleRow, filters: RuleFilters) -> bool:
    if filters.state and row.state != filters.state:
        return False
    if filters.tag and filters.tag not in row.tags:
        return False
    if filters.owner and row.owner != filters.owner:
        return False
    text = filters.q.strip().lower()
    return not text or text in row.name.lower() or text in row.description.lower()


async def build_rules(services: Services, catalog: RuleCatalog, filters: RuleFilters) -> RulesPage:
    """Every stored rule that passes ``filters``, by name."""
    now = services.clock.now()
    entries = await catalog.entries()
    last = await services.store.firings.last_per_rule()
    broken = services.rules.broken()  # every quarantined rule, the unreadable ones too
    nearest = _deadlines(services)
    rows = [
        _row(entry, broken.get(name), last.get(name), nearest.get(name), now)
        for name, entry in entries.items()
    ]
    for unreadable in await catalog.unreadable():
        rows.append(
            RuleRow(
                name=unreadable.name,
                dom_id=dom_id("rule", unreadable.name),
                state="broken",
                kind="?",
                owner="",
                tags=(),
                description="",
                last_fired=Stamp.of(last.get(unreadable.name)),
                next_deadline=None,
                next_countdown="",
                broken=f"its stored definition cannot be read: {unreadable.problem}",
            )
        )
    rows.sort(key=lambda row: row.name)
    return RulesPage(
        filters=filters,
        rows=tuple(row for row in rows if _keep(row, filters)),
        total=len(rows),
        states=STATES,
        tags=tuple(sorted({tag for row in rows for tag in row.tags})),
        owners=tuple(sorted({row.owner for row in rows if row.owner})),
    )


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    return str(value)


async def build_rule_detail(services: Services, catalog: RuleCatalog, name: str) -> RuleDetailPage:
    """The rule's page.

    Raises:
        NotFoundException: no such rule (or its definition cannot be read).
    """
    entries = await catalog.entries()
    entry = entries.get(name)
    if entry is None:
        raise NotFoundException(detail=f"no rule {name!r} (or its definition cannot be read)")
    now = services.clock.now()
    status = services.rules.status(name)
    firings = await services.store.firings.list(rule=name, limit=_FIRINGS)
    last = firings[0].at if firings else None
    upcoming = _deadlines(services, name).get(name)
    try:
        versions = await services.store.rules.versions(name)
    except NotFound:
        versions = []
    version_rows = []
    previous: dict[str, Any] | None = None
    for version in versions:
        document = rule_document(version.rule)
        changes = diff(previous, document) if previous is not None else []
        version_rows.append(
            VersionRow(
                version=version.version,
                created_at=version.created_at,
                changes=tuple((c.path, _shown(c.before), _shown(c.after)) for c in changes),
            )
        )
        previous = document
    windows = sorted(services.rules.windows(name), key=lambda w: (w.deadline, w.key))
    breakers = [b for b in await services.store.outbox.breakers() if b.rule == name]
    suspended = await services.store.outbox.list(state="suspended", rule=name, limit=1000)
    return RuleDetailPage(
        row=_row(entry, status.broken, last, upcoming, now),
        plan=describe_rule(entry.rule, now),
        versions=tuple(reversed(version_rows)),
        windows=tuple(
            KeyState(
                key=w.key,
                state="missed"
                if w.state == "missed"
                else ("met" if w.arrived >= w.expected else "pending"),
                start=w.start,
                deadline=w.deadline,
                countdown=countdown_text(w.deadline, now),
                arrived=w.arrived,
                expected=w.expected,
            )
            for w in windows
        ),
        keeps_windows=entry.absence,
        firings=tuple(FiringRow.of(f, absence=entry.absence) for f in firings),
        breakers=tuple(
            BreakerRow(
                index=b.index, failures=b.failures, suspended=b.suspended, last_error=b.last_error
            )
            for b in breakers
        ),
        paused=entry.record.paused,
        suspended_actions=len(suspended),
    )


def _back(name: str) -> Redirect:
    return Redirect(f"/rules/{quote(name, safe='')}", status_code=303)


class RulesController(Controller):
    """The rules list, a rule's page, and what may be done to a rule."""

    path = "/rules"
    include_in_schema = False

    @get("/", guards=[ui_read], name="ui-rules")
    async def rules(
        self,
        *,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        rule_state: Annotated[str, QueryParameter(name="state", max_length=20)] = "",
        tag: Annotated[str, QueryParameter(max_length=200)] = "",
        owner: Annotated[str, QueryParameter(max_length=200)] = "",
        q: Annotated[str, QueryParameter(max_length=200)] = "",
    ) -> Template:
        """Every rule: state, kind, owner, tags, last fired, next deadline."""
        filters = RuleFilters(state=rule_state, tag=tag, owner=owner, q=q)
        context = await build_rules(services, catalog_of(request), filters)
        return await page(
            request,
            context,
            template="ui/rules.html",
            fragment="ui/rules/_table.html",
            section="rules",
            title="Rules",
        )

    @get("/{name:str}", guards=[ui_read], name="ui-rule")
    async def rule(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: FromPath[str]
    ) -> Template:
        """A rule: its plan, versions with diffs, windows per key, firings, controls."""
        context = await build_rule_detail(services, catalog_of(request), name)
        return await page(
            request, context, template="ui/rule.html", section="rules", title=f"Rule {name}"
        )

    @post("/{name:str}/pause", guards=[ui_write], name="ui-rule-pause", status_code=303)
    async def pause(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: FromPath[str]
    ) -> Redirect:
        """Pause the rule; back to its page."""
        await services.rules.set_paused(name, True)
        catalog_of(request).forget()
        return _back(name)

    @post("/{name:str}/resume", guards=[ui_write], name="ui-rule-resume", status_code=303)
    async def resume(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: FromPath[str]
    ) -> Redirect:
        """Resume the rule; back to its page."""
        await services.rules.set_paused(name, False)
        catalog_of(request).forget()
        return _back(name)

    @post(
        "/{name:str}/actions/resume",
        guards=[ui_write],
        name="ui-rule-actions-resume",
        status_code=303,
    )
    async def resume_actions(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: FromPath[str]
    ) -> Redirect:
        """Close the rule's circuit breakers: its suspended actions are pending again."""
        await services.store.rules.get(name)
        await resume_action(services, name, None)
        return _back(name)
