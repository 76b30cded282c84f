"""Which rules an event satisfies, and what waits downstream of a missed SLA.

Both are read from the rules' definitions as they are now, not from the engine's
history (the engine records firings, not matches):

- :func:`rules_matching`: the rules with a condition (a trigger's event match: ``on``,
  an absence's expected or opening event, a compound's part, a sequence's step) that
  the event satisfies — its name against the patterns, the predicate against the event;
- :func:`downstream`: for an absence rule that fired (a missed SLA), the resource it
  waited for (its key when it is kept per ``resource.id``, else the ``resource.id ==``
  of its expected event), the other rules with a condition an event of that name and
  resource would satisfy, and the deployments those rules start. Conditions on the
  payload cannot be decided without the event, so such rules count as waiting on it
  when their names and resource fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from interlock.rules.actions import RunDeployment
from interlock.rules.names import pattern_matches
from interlock.rules.predicates import AllOf, AnyOf, Compare, Not, Predicate
from interlock.rules.rule import Rule
from interlock.rules.triggers import (
    AbsenceTrigger,
    AfterWindow,
    AnyTrigger,
    CompoundTrigger,
    EventMatch,
    EventTrigger,
    SequenceTrigger,
)
from interlock.sdk.event import Event

__all__ = ["Downstream", "downstream", "event_matches", "rules_matching"]


def event_matches(trigger: AnyTrigger) -> Iterator[EventMatch]:
    """Every event match of ``trigger``: what its rule listens to."""
    if isinstance(trigger, EventTrigger):
        yield trigger.match
    elif isinstance(trigger, AbsenceTrigger):
        yield trigger.expect
        if isinstance(trigger.window, AfterWindow):
            yield trigger.window.after
    elif isinstance(trigger, CompoundTrigger):
        for part in trigger.triggers:
            yield part.match
    elif isinstance(trigger, SequenceTrigger):
        yield from trigger.steps


def _satisfies(match: EventMatch, event: Event) -> bool:
    if not any(pattern_matches(pattern, event.event) for pattern in match.names):
        return False
    return match.where is None or match.where.matches(event)


def rules_matching(rules: Iterable[Rule], event: Event) -> list[str]:
    """The names of the rules with a condition ``event`` satisfies, sorted."""
    return sorted(
        rule.name
        for rule in rules
        if any(_satisfies(match, event) for match in event_matches(rule.when))
    )


@dataclass(frozen=True, slots=True)
class Downstream:
    """What waits on the event a missed SLA expected."""

    names: tuple[str, ...]
    """The event names it expected."""
    resource: str | None
    """The resource it expected them for (``None``: any)."""
    rules: tuple[str, ...]
    """Other rules with a condition such an event satisfies."""
    deployments: tuple[tuple[str, str], ...]
    """(deployment, the rule that starts it), for those rules and the missed rule itself."""


def _resource_of(predicate: Predicate | None) -> str | None:
    """The value of a ``resource.id ==`` the predicate requires, if it requires one."""
    if isinstance(predicate, Compare):
        if predicate.path == "resource.id" and predicate.op == "==":
            return str(predicate.value)
        return None
    if isinstance(predicate, AllOf):
        for item in predicate.items:
            found = _resource_of(item)
            if found is not None:
                return found
    return None


def _could_match(predicate: Predicate | None, resource: str | None) -> bool:
    """Whether an event of ``resource`` may satisfy ``predicate`` (unknown parts: yes)."""
    if predicate is None or resource is None:
        return True
    if isinstance(predicate, Compare) and predicate.path == "resource.id":
        return predicate.matches({"resource": {"id": resource}})
    if isinstance(predicate, AllOf):
        return all(_could_match(item, resource) for item in predicate.items)
    if isinstance(predicate, AnyOf):
        return any(_could_match(item, resource) for item in predicate.items)
    if isinstance(predicate, Not):
        return True
    paths = predicate.paths()
    if paths and all(path == "resource.id" for path in paths):
        return predicate.matches({"resource": {"id": resource}})
    return True


def _overlap(pattern: str, other: str) -> bool:
    """Whether some event name matches both patterns."""
    left, right = pattern.split("."), other.split(".")
    for a, b in zip(left, right, strict=False):
        if ">" in (a, b):
            return True
        if a != b and "*" not in (a, b):
            return False
    return len(left) == len(right)


def _deployments(rule: Rule) -> Iterator[str]:
    for action in (*rule.then, *rule.on_resolved):
        if isinstance(action, RunDeployment):
            yield action.deployment


def downstream(missed: Rule, key: str, rules: Mapping[str, Rule]) -> Downstream | None:
    """What waits downstream of ``missed``'s miss for ``key``; ``None``: not an absence."""
    trigger = missed.when
    if not isinstance(trigger, AbsenceTrigger):
        return None
    expect = trigger.expect
    resource = key if trigger.for_each == ["resource.id"] else _resource_of(expect.where)
    waiting: list[str] = []
    for name, rule in sorted(rules.items()):
        if name == missed.name:
            continue
        for match in event_matches(rule.when):
            names_fit = any(
                _overlap(pattern, expected) for pattern in match.names for expected in expect.names
            )
            if names_fit and _could_match(match.where, resource):
                waiting.append(name)
                break
    deployments = [(d, missed.name) for d in _deployments(missed)]
    deployments += [(d, name) for name in waiting for d in _deployments(rules[name])]
    return Downstream(
        names=tuple(expect.names),
        resource=resource,
        rules=tuple(waiting),
        deployments=tuple(dict.fromkeys(deployments)),
    )
