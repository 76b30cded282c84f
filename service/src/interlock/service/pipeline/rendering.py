"""From a firing to the actions it queues, their templates rendered over the firing.

Templates render when the firing is stored, not when the action runs: the outbox holds
exactly what will be executed (auditable, and the same on every retry), and the events
behind the firing are at hand only now. The context is the one documented in
:mod:`interlock.rules.templates`.

A template that fails to render (a payload field the event does not have, a division by
zero, a limit of the sandbox's budget) does not stop the pipeline or lose the action: the
entry is queued with ``render_error`` set, and the dispatcher fails it with that message,
visible in the outbox and as an ``interlock.action.failed`` event. The fields of one
action share one budget (:class:`~interlock.rules.templates.RenderScope`).

``event``/``events`` hold the causing events the pipeline still remembers: it keeps the
most recent events in memory (:class:`RecentEvents`), so an event older than that (a
threshold's first event, long ago, or one fed before a restart) is missing from
``events``; ``event_ids`` always lists every one.
"""

from __future__ import annotations

import functools
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from interlock.rules.engine.firing import Firing
from interlock.rules.rule import Rule
from interlock.rules.templates import RenderScope, TemplateError, render_value
from interlock.rules.triggers import AbsenceTrigger, CalendarWindow
from interlock.sdk.event import Event
from interlock.service.store import OutboxEntry, outbox_entries

__all__ = ["RecentEvents", "firing_context", "rendered_entries"]

_NOT_TEMPLATED = frozenset({"action", "kind", "channel", "deployment", "queue", "rule"})
"""Action fields that name things: taken as written, never rendered."""
_JSON_FIELDS = frozenset({"payload", "parameters", "conf"})
"""Action fields whose value is JSON sent on (emit, run_deployment, the adapters' runs):
a lone ``{{ expression }}`` in them keeps its type (see :mod:`interlock.rules.templates`)."""
_JSON_FIELDS_OF = {"webhook": frozenset({"body"})}
"""The same, for one kind only (a notification's ``body`` is text)."""


class RecentEvents:
    """The last ``capacity`` events by id, for template contexts."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._events: OrderedDict[uuid.UUID, Event] = OrderedDict()

    def add_all(self, events: Iterable[Event]) -> None:
        """Remember ``events``, forgetting the oldest beyond the capacity."""
        store = self._events
        for event in events:
            store[event.id] = event
        while len(store) > self.capacity:
            store.popitem(last=False)

    def get(self, event_id: uuid.UUID) -> Event | None:
        """The event with this id, if still remembered."""
        return self._events.get(event_id)


def _event_data(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(event)
    data["resource_id"] = event.resource_id
    data["occurred"] = event.occurred
    return data


_TICK = timedelta(microseconds=1)


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _window(firing: Firing, rule: Rule) -> dict[str, Any] | None:
    """The firing's window in its calendar's zone (UTC for windows of no calendar).

    ``start`` and ``deadline`` are local (aware) times: ``{{ window.deadline.date() }}``
    is the local date of the deadline; ``date`` is the business date, the local day the
    window closes (for a deadline at midnight, the day before); ``start_utc`` and
    ``deadline_utc`` are the same instants in UTC; ``tz`` names the zone.
    """
    if firing.window_end is None or firing.window_start is None:
        return None
    tz = "UTC"
    trigger = rule.when
    if isinstance(trigger, AbsenceTrigger) and isinstance(trigger.window, CalendarWindow):
        tz = trigger.window.tz
    zone = _zone(tz)
    deadline = firing.window_end.astimezone(zone)
    return {
        "start": firing.window_start.astimezone(zone),
        "deadline": deadline,
        "date": (deadline - _TICK).date(),
        "tz": tz,
        "start_utc": firing.window_start,
        "deadline_utc": firing.window_end,
    }


def firing_context(firing: Firing, rule: Rule, events: Sequence[Event]) -> dict[str, Any]:
    """The template context of ``firing`` (see :mod:`interlock.rules.templates`)."""
    found = [_event_data(event) for event in events]
    context: dict[str, Any] = {
        "rule": {
            "name": rule.name,
            "description": rule.description,
            "tags": list(rule.tags),
            "owner": rule.owner,
        },
        "firing": {
            "id": str(firing.id),
            "status": firing.status,
            "late": firing.late,
            "summary": firing.summary,
            "fired_at": firing.at,
        },
        "key": firing.key,
        "window": _window(firing, rule),
        "event": found[-1] if found else None,
        "events": found,
        "expected": None,
        "arrived": firing.arrived,
    }
    if isinstance(rule.when, AbsenceTrigger):
        context["expected"] = {"count": rule.when.count, "names": list(rule.when.expect.names)}
    return context


def rendered_entries(
    firing: Firing, rule: Rule, recent: RecentEvents | None = None
) -> list[OutboxEntry]:
    """The outbox entries of ``firing``: the rule's actions for its status, rendered."""
    actions = rule.then if firing.status == "fired" else rule.on_resolved
    if not actions:
        return []
    events = (
        [e for e in (recent.get(i) for i in firing.event_ids) if e is not None] if recent else []
    )
    context = firing_context(firing, rule, events)
    entries = []
    for entry in outbox_entries(firing, actions):
        action = dict(entry.action)
        name = ""
        try:
            json_fields = _JSON_FIELDS | _JSON_FIELDS_OF.get(entry.kind, frozenset())
            with RenderScope():
                for name, value in entry.action.items():
                    if name not in _NOT_TEMPLATED:
                        action[name] = render_value(value, context, native=name in json_fields)
        except TemplateError as exc:
            action = dict(entry.action)
            action["render_error"] = f"action {entry.index} ({entry.kind}) field {name!r}: {exc}"
        entries.append(msgspec.structs.replace(entry, action=action))
    return entries
