"""Interlock's own vocabulary, and the places that must agree with it."""

from __future__ import annotations

import pytest

from interlock.rules import Rule, approve, notify, on, resource, run_deployment
from interlock.rules.errors import RuleDefinitionError
from interlock.sdk.vocabulary import (
    ACTION_OUTCOMES,
    APPROVAL_OUTCOMES,
    FINAL_RUN_STATES,
    FIRING_STATUSES,
    INITIAL_RUN_STATES,
    RUN_STATES,
    RUN_TRANSITIONS,
    action_event_name,
    approval_event_name,
    rule_event_name,
    run_event_name,
)
from interlock.service.store import tables

NAMES = [
    *(rule_event_name(status) for status in FIRING_STATUSES),
    *(action_event_name(outcome) for outcome in ACTION_OUTCOMES),
    *(approval_event_name(outcome) for outcome in APPROVAL_OUTCOMES),
]


def test_the_run_state_machine() -> None:
    assert set(RUN_TRANSITIONS) == set(RUN_STATES)
    assert sorted(FINAL_RUN_STATES) == ["cancelled", "completed", "crashed", "failed"]
    assert sorted(INITIAL_RUN_STATES) == ["pending", "scheduled"]
    for state, targets in RUN_TRANSITIONS.items():
        assert set(targets) <= set(RUN_STATES)
        assert (state in FINAL_RUN_STATES) is not targets
    assert tables.RUN_STATES == RUN_STATES  # the database's CHECK constraint


@pytest.mark.parametrize("name", NAMES)
def test_loop_detection_knows_every_event_a_rule_leads_to(name: str) -> None:
    with pytest.raises(RuleDefinitionError, match="re-trigger itself"):
        Rule(name="me", when=on(name), then=[approve("ops"), notify("x")])
    Rule(name="me", when=on(name, where=resource.id == "someone-else"), then=[notify("x")])


@pytest.mark.parametrize("state", RUN_STATES)
def test_loop_detection_knows_every_run_state(state: str) -> None:
    with pytest.raises(RuleDefinitionError, match="re-trigger itself"):
        Rule(name="me", when=on(run_event_name(state)), then=[run_deployment("backfill")])


def test_a_broken_rule_is_not_a_loop() -> None:
    """A broken rule is quarantined: watching every rule break cannot re-trigger it."""
    Rule(name="me", when=on("interlock.rule.broken"), then=[notify("x")])
