"""From a firing to the actions it queues, their templates rendered over the firing.

Templates render when the firing is stored, not when the action runs: the outbox holds
exactly what will be executed (auditable, and the same on every retry), and the events
behind the firing are at hand only now. The context is the one documented in
:mod:`interlock.rules.templates`, built and rendered by
:mod:`interlock.rules.action_rendering` (the code scenarios and backtests render with).

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

import uuid
from collections import OrderedDict
from collections.abc import Iterable

import msgspec

from interlock.rules.action_rendering import ActionRenderError, firing_context, render_action
from interlock.rules.engine.firing import Firing
from interlock.rules.rule import Rule
from interlock.sdk.event import Event
from interlock.service.store import OutboxEntry, outbox_entries

__all__ = ["RecentEvents", "firing_context", "rendered_entries"]


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
        try:
            action = render_action(entry.index, entry.kind, entry.action, context)
        except ActionRenderError as exc:
            action = dict(entry.action)
            action["render_error"] = str(exc)
        entries.append(msgspec.structs.replace(entry, action=action))
    return entries
