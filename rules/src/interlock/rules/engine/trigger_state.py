"""The one protocol every trigger kind's state follows, and the registry of kinds.

The engine knows nothing of thresholds, windows or sequences: it registers the event
matches a state declares, hands each matching event to the state, asks it what is due,
and saves and restores its data. A new trigger kind is one module: a
:class:`TriggerState` subclass, listed in :data:`STATES`.

::

    state = state_for(rule_name, trigger, tick)
    for role, match in enumerate(state.matches()):      # registered with the matcher
        ...
    state.on_event(roles, occurrence, tick)  -> firings   # an event matched these roles
    state.next_due()                          -> when judge() has work (event time)
    state.judge(tick)                         -> firings   # decide what the watermark passed
    state.prune(tick)                         -> anything left to forget later
    state.data / state.restore(data)                       # export and import (msgspec)

An **occurrence** is what a state sees of an event: its id, time, name, resource and its
key under the rule's ``for_each`` (computed once by the engine). States never see a
whole event, so what a state keeps (and a checkpoint holds) stays small.

**Time.** ``tick.watermark`` is the event time up to which every event has been fed.
States decide on it, never on the wall clock: a window is judged once the watermark
passed its deadline (plus grace); an ordered state (:mod:`.ordered_state`) processes
events in event-time order, up to the watermark.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing
from interlock.rules.triggers import AnyTrigger, EventMatch

__all__ = ["STATES", "Occurrence", "TriggerState", "WindowView", "state_for"]


class Occurrence(msgspec.Struct, frozen=True, array_like=True):
    """An event as a trigger state sees it: identity, time, and the rule's key for it."""

    id: uuid.UUID
    occurred: datetime
    key: str
    """The ``for_each`` key of the rule ("" without ``for_each``)."""
    name: str
    """The event name."""
    resource_id: str


class WindowView(msgspec.Struct, frozen=True, kw_only=True):
    """A window a rule watches, as the SLA board shows it."""

    rule: str
    key: str
    start: datetime
    deadline: datetime
    due: datetime
    """When it is judged: the deadline plus grace (event time)."""
    state: str
    """``pending`` (not judged yet) or ``missed`` (judged, not resolved yet)."""
    expected: int
    arrived: int


class TriggerState(ABC):
    """A rule's temporal state (see the module documentation for the protocol).

    Attributes:
        rule: The rule's name (firings carry it; firing ids derive from it).
        data: The exported state: a ``msgspec`` struct of type :attr:`data_type`.
    """

    data_type: ClassVar[type[Any]]
    """The ``msgspec`` struct type of :attr:`data` (for decoding a checkpoint)."""

    rule: str
    data: Any

    @abstractmethod
    def matches(self) -> list[EventMatch]:
        """The event matches that reach this state; an event's *roles* are their indexes."""

    @abstractmethod
    def on_event(self, roles: tuple[int, ...], occurrence: Occurrence, tick: Tick) -> list[Firing]:
        """Take an event that matched ``roles`` (ascending); return the firings it causes."""

    def judge(self, tick: Tick) -> list[Firing]:
        """Decide what ``tick.watermark`` has passed (called when :meth:`next_due` is due)."""
        return []

    def prune(self, tick: Tick) -> bool:
        """Forget what can no longer count; whether anything is left for a later prune.

        Called at most once a minute of event time, for states fed since they last
        answered ``False`` (a state that keeps nothing old is not visited again).
        """
        return False

    def next_due(self) -> datetime | None:
        """When :meth:`judge` next has work (event time), or ``None``."""
        return None

    def restore(self, data: Any) -> None:
        """Take over exported data (the engine checked that the trigger is unchanged)."""
        self.data = data

    def windows(self) -> Iterator[WindowView]:
        """The windows it watches now: pending ones and unresolved misses (absences)."""
        return iter(())

    def decode(self, raw: bytes, version: int) -> Any:
        """Exported data of state version ``version`` as :attr:`data_type`.

        States whose data changed shape since version 1 convert it here.
        """
        return msgspec.json.decode(raw, type=self.data_type)


def _registry() -> dict[type[Any], Any]:
    from interlock.rules.engine.absence_state import absence_state  # noqa: PLC0415 - cycle
    from interlock.rules.engine.compound_state import CompoundState  # noqa: PLC0415
    from interlock.rules.engine.event_state import EventState  # noqa: PLC0415
    from interlock.rules.engine.sequence_state import SequenceState  # noqa: PLC0415
    from interlock.rules.triggers import (  # noqa: PLC0415
        AbsenceTrigger,
        CompoundTrigger,
        EventTrigger,
        SequenceTrigger,
    )

    return {
        EventTrigger: EventState,
        AbsenceTrigger: absence_state,
        CompoundTrigger: CompoundState,
        SequenceTrigger: SequenceState,
    }


STATES: dict[type[Any], Any] = {}
"""Trigger type → the state class (or factory) that runs it, filled on first use."""


def state_for(rule: str, trigger: AnyTrigger, tick: Tick) -> TriggerState:
    """A fresh state for ``trigger`` of rule ``rule``.

    Raises:
        TypeError: no state runs this kind of trigger.
    """
    if not STATES:
        STATES.update(_registry())
    factory = STATES.get(type(trigger))
    if factory is None:
        raise TypeError(f"no trigger state runs {type(trigger).__name__}")
    state: TriggerState = factory(rule, trigger, tick)
    return state
