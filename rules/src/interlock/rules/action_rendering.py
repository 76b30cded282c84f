"""A firing's actions rendered: the template context of a firing, and each action's fields.

One code path for everyone who renders an action: the service when it stores a firing
(:mod:`interlock.service.pipeline.rendering` queues the result in the outbox), scenarios
(:mod:`interlock.rules.testing`, where a template that fails fails the test) and
backtests. What a scenario renders is therefore what production would send.

The context is the one documented in :mod:`interlock.rules.templates`. Fields that name
things (``channel``, ``connection``, ``deployment``, ``queue``, ``rule``...) are taken
as written; in JSON-valued fields (``payload``, ``parameters``, ``conf``, a webhook's
``body``) a lone ``{{ expression }}`` keeps its type. The fields of one action share one budget
(:class:`~interlock.rules.templates.RenderScope`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from interlock.rules.engine.firing import Firing
from interlock.rules.rule import Rule
from interlock.rules.templates import RenderScope, TemplateError, render_value
from interlock.rules.triggers import AbsenceTrigger, CalendarWindow
from interlock.sdk.event import Event

__all__ = [
    "ActionRenderError",
    "RenderedAction",
    "action_fields",
    "firing_context",
    "render_action",
    "render_actions",
]

NOT_TEMPLATED = frozenset(
    {"action", "kind", "channel", "connection", "deployment", "queue", "rule"}
)
"""Action fields that name things: taken as written, never rendered."""
JSON_FIELDS = frozenset({"payload", "parameters", "conf"})
"""Action fields whose value is JSON sent on (emit, run_deployment, the adapters' runs):
a lone ``{{ expression }}`` in them keeps its type (see :mod:`interlock.rules.templates`)."""
JSON_FIELDS_OF = {"webhook": frozenset({"body"})}
"""The same, for one kind only (a notification's ``body`` is text)."""

_TICK = timedelta(microseconds=1)


class ActionRenderError(TemplateError):
    """One field of one action failed to render; the message names the action and field."""

    def __init__(self, index: int, kind: str, field: str, reason: str) -> None:
        self.index = index
        self.kind = kind
        self.field = field
        self.reason = reason
        super().__init__(f"action {index} ({kind}) field {field!r}: {reason}")


class RenderedAction(msgspec.Struct, frozen=True, kw_only=True):
    """One action of a firing: its kind, its fields rendered (or as written), any error."""

    index: int
    kind: str
    action: dict[str, Any]
    error: ActionRenderError | None = None


def action_fields(action: msgspec.Struct) -> tuple[str, dict[str, Any]]:
    """An action's executor kind and its fields as the outbox keeps them.

    The kind is the action's tag, or for :class:`~interlock.rules.actions.Call` the
    executor it calls, whose ``params`` become the fields.
    """
    data: dict[str, Any] = msgspec.to_builtins(action)
    tag = str(data.get("action", ""))
    kind = (str(data["executor"]) if tag == "call" else tag) or type(action).__name__
    if tag == "call":  # an adapter's executor: params are its fields
        data = {"action": "call", "kind": kind, **data.get("params", {})}
    return kind, data


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


def _event_data(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(event)
    data["resource_id"] = event.resource_id
    data["occurred"] = event.occurred
    return data


def firing_context(firing: Firing, rule: Rule, events: Sequence[Event]) -> dict[str, Any]:
    """The template context of ``firing`` (see :mod:`interlock.rules.templates`).

    ``events`` are the firing's causing events that are at hand, oldest first.
    """
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


def render_action(
    index: int, kind: str, action: Mapping[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    """The fields of one action (as :func:`action_fields` gives them) rendered.

    Raises:
        ActionRenderError: a field failed to render (the first one that did).
    """
    rendered = dict(action)
    json_fields = JSON_FIELDS | JSON_FIELDS_OF.get(kind, frozenset())
    name = ""
    try:
        with RenderScope():
            for name, value in action.items():
                if name not in NOT_TEMPLATED:
                    rendered[name] = render_value(value, context, native=name in json_fields)
    except TemplateError as exc:
        raise ActionRenderError(index, kind, name, str(exc)) from exc
    return rendered


def render_actions(firing: Firing, rule: Rule, events: Sequence[Event]) -> list[RenderedAction]:
    """Every action of ``rule`` for ``firing`` (``then``, or ``on_resolved``), rendered.

    An action that fails to render keeps its fields as written and carries the error;
    the others render all the same.
    """
    actions = rule.then if firing.status == "fired" else rule.on_resolved
    if not actions:
        return []
    context = firing_context(firing, rule, events)
    results = []
    for index, action in enumerate(actions):
        kind, data = action_fields(action)
        try:
            results.append(
                RenderedAction(
                    index=index, kind=kind, action=render_action(index, kind, data, context)
                )
            )
        except ActionRenderError as exc:
            results.append(RenderedAction(index=index, kind=kind, action=data, error=exc))
    return results
