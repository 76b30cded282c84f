"""Absence (SLA) triggers: the state for each kind of window.

- :mod:`.absence_calendar` — by a calendar deadline, or a cron;
- :mod:`.absence_after` — within a duration after another event;
- :mod:`.absence_heartbeat` — at least one event every period;

sharing :mod:`.absence_base` (counting, grace, misses and resolutions).
"""

from __future__ import annotations

from interlock.rules.engine.absence_after import AfterAbsence
from interlock.rules.engine.absence_base import AbsenceBase
from interlock.rules.engine.absence_calendar import CalendarAbsence
from interlock.rules.engine.absence_heartbeat import HeartbeatAbsence
from interlock.rules.engine.context import Tick
from interlock.rules.triggers import AbsenceTrigger, AfterWindow, CalendarWindow

__all__ = ["absence_state"]


def absence_state(rule: str, trigger: AbsenceTrigger, tick: Tick) -> AbsenceBase:
    """The state that watches ``trigger``'s kind of window."""
    if isinstance(trigger.window, CalendarWindow):
        return CalendarAbsence(rule, trigger, tick)
    if isinstance(trigger.window, AfterWindow):
        return AfterAbsence(rule, trigger, tick)
    return HeartbeatAbsence(rule, trigger, tick)
