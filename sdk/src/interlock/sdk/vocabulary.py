"""Interlock's own vocabulary: the events it publishes about itself, and the states of a run.

Defined once, here in the SDK, so that every emitter in the service builds its names from
it, loop detection (:mod:`interlock.rules.loops`) knows what a rule's actions lead to,
and a producer or a command line can name them without the service installed:

=====================================  ==================  ===================================
event                                  ``resource.id``     published when
=====================================  ==================  ===================================
``interlock.rule.fired`` / ``resolved``  the rule          a firing is stored
``interlock.rule.broken``              the rule            the rule is quarantined (it stops
                                                           running, so it cannot react to it)
``interlock.action.<outcome>``         the rule            an attempt of an action ended
                                                           (``succeeded``, ``failed``), or its
                                                           circuit breaker opened
                                                           (``suspended``)
``interlock.approval.<outcome>``       the rule            an approval step was ``requested``,
                                                           ``approved``, ``rejected``,
                                                           ``expired``
``interlock.run.<state>``              the deployment      a run entered a :data:`RunState`
``interlock.connection.updated``       the connection      a connection was created, changed,
                                                           rotated or removed (its payload
                                                           names the fields, never a secret)
=====================================  ==================  ===================================

A run goes ``scheduled`` → ``pending`` → ``running`` → ``completed`` | ``failed`` |
``crashed``, and to ``cancelled`` from any state before it ends
(:data:`RUN_TRANSITIONS`).

Adding an outcome or a state is one word in its ``Literal`` here: the emitters are typed
by it and loop detection iterates it. A new family of events (``interlock.connection.*``)
gets its name here, and a line in :func:`interlock.rules.loops.produced_events` if a
rule's own actions can lead to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

__all__ = [
    "ACTION_OUTCOMES",
    "APPROVAL_OUTCOMES",
    "CONNECTION_CHANGES",
    "CONNECTION_UPDATED",
    "FINAL_RUN_STATES",
    "FIRING_STATUSES",
    "INITIAL_RUN_STATES",
    "RULE_BROKEN",
    "RUN_STATES",
    "RUN_TRANSITIONS",
    "SOURCE",
    "ActionOutcome",
    "ApprovalOutcome",
    "ConnectionChange",
    "FiringStatus",
    "RunState",
    "action_event_name",
    "approval_event_name",
    "rule_event_name",
    "run_event_name",
]

SOURCE = "interlock"
"""The ``source`` of the events the service publishes about itself."""

FiringStatus = Literal["fired", "resolved"]
"""What a firing says: the rule fired, or a fired absence is over (the event came late)."""
FIRING_STATUSES: tuple[FiringStatus, ...] = get_args(FiringStatus)

RULE_BROKEN = "interlock.rule.broken"

CONNECTION_UPDATED = "interlock.connection.updated"
"""A connection changed; ``payload.change`` says how (a :data:`ConnectionChange`)."""
ConnectionChange = Literal["created", "updated", "rotated", "removed"]
"""What happened to a connection: ``rotated`` replaced secrets only."""
CONNECTION_CHANGES: tuple[ConnectionChange, ...] = get_args(ConnectionChange)

ActionOutcome = Literal["succeeded", "failed", "suspended"]
"""How an attempt of an action ended as an event (a retried attempt is ``failed``)."""
ACTION_OUTCOMES: tuple[ActionOutcome, ...] = get_args(ActionOutcome)

ApprovalOutcome = Literal["requested", "approved", "rejected", "expired"]
APPROVAL_OUTCOMES: tuple[ApprovalOutcome, ...] = get_args(ApprovalOutcome)

RunState = Literal["scheduled", "pending", "running", "completed", "failed", "cancelled", "crashed"]
RUN_STATES: tuple[RunState, ...] = get_args(RunState)
RUN_TRANSITIONS: Mapping[RunState, tuple[RunState, ...]] = {
    "scheduled": ("pending", "cancelled"),
    "pending": ("running", "cancelled"),
    "running": ("completed", "failed", "cancelled", "crashed", "scheduled"),
    "completed": (),
    "failed": (),
    "cancelled": (),
    "crashed": (),
}
"""The states each state may move to (``running`` back to ``scheduled``: a failed attempt
whose deployment's policy retries it later)."""
INITIAL_RUN_STATES: frozenset[RunState] = frozenset({"scheduled", "pending"})
"""A run is created in one of these (``scheduled``: for later); it has not started."""
FINAL_RUN_STATES: frozenset[RunState] = frozenset(
    state for state, then in RUN_TRANSITIONS.items() if not then
)
"""A run in one of these has ended."""


def rule_event_name(status: FiringStatus) -> str:
    """``interlock.rule.<status>``."""
    return f"interlock.rule.{status}"


def action_event_name(outcome: ActionOutcome) -> str:
    """``interlock.action.<outcome>``."""
    return f"interlock.action.{outcome}"


def approval_event_name(outcome: ApprovalOutcome) -> str:
    """``interlock.approval.<outcome>``."""
    return f"interlock.approval.{outcome}"


def run_event_name(state: RunState) -> str:
    """``interlock.run.<state>``."""
    return f"interlock.run.{state}"
