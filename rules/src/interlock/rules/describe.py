"""Rules in words, for plans and the UI: ``no db.table.updated ... by 09:00 Europe/Berlin``."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from interlock.rules.actions import (
    AnyAction,
    Approve,
    Call,
    Emit,
    Notify,
    PauseQueue,
    PauseRule,
    PauseSchedule,
    ResumeQueue,
    ResumeRule,
    ResumeSchedule,
    RunDeployment,
    Webhook,
)
from interlock.rules.predicates import (
    AllOf,
    AnyOf,
    AnyPredicate,
    Compare,
    Contains,
    Exists,
    Glob,
    Not,
    OneOf,
    Regex,
    RelatedTo,
)
from interlock.rules.rule import Rule
from interlock.rules.triggers import (
    AbsenceTrigger,
    AfterWindow,
    AnyTrigger,
    CalendarWindow,
    CompoundTrigger,
    EventMatch,
    EventTrigger,
    HeartbeatWindow,
)
from interlock.rules.windows import schedule_for

__all__ = ["describe_action", "describe_predicate", "describe_rule", "describe_trigger"]


def describe_predicate(predicate: AnyPredicate) -> str:
    """A predicate as an expression a reader recognizes."""
    if isinstance(predicate, Compare):
        return f"{predicate.path} {predicate.op} {predicate.value!r}"
    if isinstance(predicate, OneOf):
        return f"{predicate.path} in {list(predicate.values)!r}"
    if isinstance(predicate, Contains):
        return f"{predicate.path} contains {predicate.value!r}"
    if isinstance(predicate, Exists):
        return f"{predicate.path} exists"
    if isinstance(predicate, Glob):
        return f"{predicate.path} like {predicate.pattern!r}"
    if isinstance(predicate, Regex):
        return f"{predicate.path} matches /{predicate.pattern}/"
    if isinstance(predicate, RelatedTo):
        role = f" with role {predicate.role!r}" if predicate.role else ""
        where = ""
        if predicate.where is not None:
            where = f" where {describe_predicate(predicate.where)}"
        return f"a related resource{role}{where}"
    if isinstance(predicate, Not):
        return f"not ({describe_predicate(predicate.item)})"
    joiner = " and " if isinstance(predicate, AllOf) else " or "
    assert isinstance(predicate, AllOf | AnyOf)
    return "(" + joiner.join(describe_predicate(item) for item in predicate.items) + ")"


def _match(match: EventMatch) -> str:
    names = " or ".join(match.names)
    if match.where is None:
        return names
    return f"{names} where {describe_predicate(match.where)}"


def _per(for_each: list[str]) -> str:
    return f", per {', '.join(for_each)}" if for_each else ""


def describe_trigger(trigger: AnyTrigger) -> str:
    """A trigger as one sentence."""
    if isinstance(trigger, EventTrigger):
        if trigger.threshold == 1:
            return f"each {_match(trigger.match)}{_per(trigger.for_each)}"
        return (
            f"at least {trigger.threshold} x {_match(trigger.match)} within {trigger.within}"
            f"{_per(trigger.for_each)}"
        )
    if isinstance(trigger, AbsenceTrigger):
        count = f"{trigger.count} x " if trigger.count > 1 else ""
        window = trigger.window
        if isinstance(window, CalendarWindow):
            when = f"by {schedule_for(window).describe()}"
        elif isinstance(window, AfterWindow):
            when = f"within {window.within} after {_match(window.after)}"
        else:
            assert isinstance(window, HeartbeatWindow)
            when = f"at least once every {window.every}"
        keys = f" (keys: {', '.join(trigger.keys)})" if trigger.keys else ""
        grace = f", grace {trigger.grace}" if trigger.grace not in ("0s", "0") else ""
        expect = _match(trigger.expect)
        return f"missing: {count}{expect} {when}{_per(trigger.for_each)}{keys}{grace}"
    if isinstance(trigger, CompoundTrigger):
        require = (
            trigger.require if isinstance(trigger.require, str) else f"at least {trigger.require}"
        )
        parts = "; ".join(describe_trigger(sub) for sub in trigger.triggers)
        return f"{require} of [{parts}] within {trigger.within}{_per(trigger.for_each)}"
    steps = " then ".join(_match(step) for step in trigger.steps)
    return f"in order: {steps}, within {trigger.within}{_per(trigger.for_each)}"


def describe_action(action: AnyAction) -> str:
    """An action as one line."""
    if isinstance(action, Notify):
        target = f"channel {action.channel}" if action.channel else f"URL {action.url}"
        return f"notify {target}: {action.title!r}"
    if isinstance(action, RunDeployment):
        parameters = ", ".join(f"{k}={v}" for k, v in action.parameters.items())
        return f"run deployment {action.deployment}" + (f" ({parameters})" if parameters else "")
    if isinstance(action, PauseQueue | ResumeQueue):
        verb = "pause" if isinstance(action, PauseQueue) else "resume"
        return f"{verb} queue {action.queue}"
    if isinstance(action, PauseRule | ResumeRule):
        verb = "pause" if isinstance(action, PauseRule) else "resume"
        return f"{verb} rule {action.rule}"
    if isinstance(action, Webhook):
        target = (
            f"connection {action.connection} {action.path}" if action.connection else action.url
        )
        return f"webhook {action.method.upper()} {target.rstrip()}"
    if isinstance(action, PauseSchedule | ResumeSchedule):
        verb = "pause" if isinstance(action, PauseSchedule) else "resume"
        return f"{verb} the schedule of deployment {action.deployment}"
    if isinstance(action, Approve):
        target = f"channel {action.channel}" if action.channel else f"URL {action.url}"
        wait = f", {action.on_timeout} after {action.timeout}" if action.timeout else ", no timeout"
        return f"wait for approval (asked through {target}{wait}); the actions after wait"
    if isinstance(action, Call):
        params = ", ".join(f"{k}={v!r}" for k, v in action.params.items())
        return f"call {action.executor}({params})"
    assert isinstance(action, Emit)
    return f"emit {action.event} for {action.resource_id}"


def next_deadlines(trigger: AnyTrigger, now: datetime, count: int = 3) -> list[str]:
    """The next calendar deadlines of an absence trigger, in its time zone."""
    if not isinstance(trigger, AbsenceTrigger) or not isinstance(trigger.window, CalendarWindow):
        return []
    schedule = schedule_for(trigger.window)
    zone = ZoneInfo(trigger.window.tz)
    return [
        instant.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")
        for instant in schedule.deadlines_after(now, count)
    ]


def describe_rule(rule: Rule, now: datetime) -> str:
    """A rule as a plan block: trigger in words, next deadlines, actions."""
    flags = [] if rule.enabled else ["disabled"]
    if rule.owner:
        flags.append(f"owner {rule.owner}")
    if rule.tags:
        flags.append("tags " + ", ".join(rule.tags))
    lines = [f"rule {rule.name}" + (f"  ({'; '.join(flags)})" if flags else "")]
    if rule.description:
        lines.append(f"  {rule.description}")
    lines.append(f"  when: {describe_trigger(rule.when)}")
    deadlines = next_deadlines(rule.when, now)
    if deadlines:
        lines.append(f"  next deadlines: {', '.join(deadlines)}")
    for label, actions in (("then", rule.then), ("on resolved", rule.on_resolved)):
        for index, action in enumerate(actions):
            lead = f"{label}:" if index == 0 else " " * (len(label) + 1)
            lines.append(f"  {lead} {describe_action(action)}")
    if not rule.then and not rule.on_resolved:
        lines.append("  then: (no actions: firings are recorded and emitted as events)")
    return "\n".join(lines)
