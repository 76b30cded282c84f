"""Refusing rules whose own actions would re-trigger them without bound.

What a rule leads to is read from Interlock's vocabulary (:mod:`interlock.sdk.vocabulary`),
so an outcome the service adds there is known here too: every firing emits
``interlock.rule.<status>`` and every action ``interlock.action.<outcome>`` (an
``approve`` step also ``interlock.approval.<outcome>``), each with ``resource.id`` = the
rule's name; a ``run_deployment`` leads to ``interlock.run.<state>`` events with
``resource.id`` = the deployment; an ``emit`` publishes its event. (``interlock.rule.broken``
is not among them: a broken rule is quarantined, it cannot react to it.) A rule whose
trigger could match one of these reacts to itself. Whether it could is decided
from what is known of those events (name, ``resource.id``, ``source``) with three-valued
logic: a predicate on anything else is "unknown", and unknown counts as "could match",
so a rule is only accepted when its filter provably excludes its own output.
"""

from __future__ import annotations

from collections.abc import Sequence

from interlock.rules.actions import AnyAction, Approve, Emit, RunDeployment
from interlock.rules.names import pattern_matches
from interlock.rules.predicates import (
    AllOf,
    AnyOf,
    AnyPredicate,
    Compare,
    Exists,
    Glob,
    Not,
    OneOf,
    Regex,
)
from interlock.rules.triggers import (
    AbsenceTrigger,
    AfterWindow,
    AnyTrigger,
    CompoundTrigger,
    EventMatch,
    EventTrigger,
)
from interlock.sdk.event import Event
from interlock.sdk.vocabulary import (
    ACTION_OUTCOMES,
    APPROVAL_OUTCOMES,
    FIRING_STATUSES,
    RUN_STATES,
    SOURCE,
    action_event_name,
    approval_event_name,
    rule_event_name,
    run_event_name,
)

__all__ = ["loop_issues", "produced_events"]


def produced_events(rule: str, actions: Sequence[AnyAction]) -> list[tuple[str, str | None]]:
    """The (event name, resource id or ``None`` if unknown) pairs a rule leads to.

    Args:
        rule: The rule's name.
        actions: All its actions (``then`` and ``on_resolved``).
    """
    produced: list[tuple[str, str | None]] = [
        (rule_event_name(status), rule) for status in FIRING_STATUSES
    ]
    if actions:
        produced += [(action_event_name(outcome), rule) for outcome in ACTION_OUTCOMES]
    if any(isinstance(a, Approve) for a in actions):
        produced += [(approval_event_name(outcome), rule) for outcome in APPROVAL_OUTCOMES]
    for action in actions:
        if isinstance(action, RunDeployment):
            deployment = None if "{" in action.deployment else action.deployment
            produced += [(run_event_name(state), deployment) for state in RUN_STATES]
        elif isinstance(action, Emit) and "{" not in action.event:
            resource = None if "{" in action.resource_id else action.resource_id
            produced.append((action.event, resource))
    return produced


def _matches(trigger: AnyTrigger, path: str) -> list[tuple[str, EventMatch]]:
    if isinstance(trigger, EventTrigger):
        return [(f"{path}.match", trigger.match)]
    if isinstance(trigger, AbsenceTrigger):
        if isinstance(trigger.window, AfterWindow):
            return [(f"{path}.window.after", trigger.window.after)]
        return []
    if isinstance(trigger, CompoundTrigger):
        return [
            item
            for index, sub in enumerate(trigger.triggers)
            for item in _matches(sub, f"{path}.triggers[{index}]")
        ]
    return [(f"{path}.steps[{index}]", step) for index, step in enumerate(trigger.steps)]


def _known(name: str, resource_id: str | None, path: str) -> str | bool | None:
    """The value of ``path`` on a produced event; ``False`` when unknown."""
    if path == "event":
        return name
    if path == "source":
        return SOURCE
    if path == "resource.id" and resource_id is not None:
        return resource_id
    return False


def _could_match(predicate: AnyPredicate, name: str, resource_id: str | None) -> bool | None:
    """Three-valued: True, False, or None for "unknown"."""
    if isinstance(predicate, AllOf):
        results = [_could_match(item, name, resource_id) for item in predicate.items]
        if False in results:
            return False
        return True if all(results) else None
    if isinstance(predicate, AnyOf):
        results = [_could_match(item, name, resource_id) for item in predicate.items]
        if True in results:
            return True
        return False if all(result is False for result in results) else None
    if isinstance(predicate, Not):
        inner = _could_match(predicate.item, name, resource_id)
        return None if inner is None else not inner
    if isinstance(predicate, Compare | OneOf | Exists | Glob | Regex):
        if _known(name, resource_id, predicate.path) is False:
            return None
        event = Event(event=name, resource={"id": resource_id or "?"}, source=SOURCE)
        return predicate.matches(event)
    return None


def loop_issues(rule: str, when: AnyTrigger, actions: Sequence[AnyAction]) -> list[tuple[str, str]]:
    """(path, message) for each part of ``when`` that could match the rule's own output.

    Args:
        rule: The rule's name.
        when: Its trigger.
        actions: All its actions (``then`` and ``on_resolved``).
    """
    issues = []
    produced = produced_events(rule, actions)
    for path, match in _matches(when, "when"):
        for name, resource_id in produced:
            if not any(pattern_matches(pattern, name) for pattern in match.names):
                continue
            if match.where is not None and _could_match(match.where, name, resource_id) is False:
                continue
            issues.append(
                (
                    path,
                    f"matches {name!r} that this rule itself leads to, so it could re-trigger "
                    "itself without bound",
                )
            )
            break
    return issues
