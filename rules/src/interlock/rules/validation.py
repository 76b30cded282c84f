"""Validation of rules: every problem, collected, with the path of the field.

:func:`rule_issues` walks a rule's parts and returns a
:class:`~interlock.rules.errors.RuleIssue` per problem — a value of the wrong type, a
shape the engine cannot run, bad durations, patterns, predicates, calendars, templates, a
trigger that matches every event, a rule whose own actions would re-trigger it — instead
of stopping at the first.

A rule that passes validation is one the engine can build and run: what the engine
does not support is refused here, with the field's path, never found later.

- A compound trigger (``all_of``/``any_of``/``at_least``) combines *event* triggers: an
  absence, a sequence or another compound cannot be one of its parts, and its parts take
  their key from the compound's ``for_each``, not their own.
- A sequence's steps are single events (an :class:`~interlock.rules.triggers.EventMatch`).

A leaf below the rule: it takes a rule's parts (its name, trigger, actions, metadata),
not the :class:`~interlock.rules.rule.Rule`, which calls it on construction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import msgspec

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
from interlock.rules.errors import RuleIssue
from interlock.rules.loops import loop_issues
from interlock.rules.names import check_pattern, matches_everything
from interlock.rules.predicates import AllOf, AnyOf, AnyPredicate, Not, Regex, RelatedTo
from interlock.rules.templates import check_template, template_strings
from interlock.rules.triggers import (
    AbsenceTrigger,
    AfterWindow,
    AnyTrigger,
    CalendarWindow,
    CompoundTrigger,
    EventMatch,
    EventTrigger,
    HeartbeatWindow,
    SequenceTrigger,
)
from interlock.sdk.durations import DURATION_HINT, parse_duration
from interlock.sdk.event import check_event_name

__all__ = ["decoded_by_schema", "raw_shape_issues", "rule_issues"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ROOTS = ("event", "source", "id", "resource", "payload")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class _Collector:
    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.issues: list[RuleIssue] = []

    def add(self, path: str, message: str, hint: str = "") -> None:
        self.issues.append(RuleIssue(rule=self.rule, path=path, message=message, hint=hint))

    def duration(self, path: str, value: str | None, *, positive: bool = True) -> timedelta | None:
        if value is None:
            return None
        try:
            parsed = parse_duration(value)
        except ValueError:
            self.add(path, f"{value!r} is not a duration", DURATION_HINT)
            return None
        if positive and parsed <= timedelta(0):
            self.add(path, f"{value!r} must be longer than zero")
        elif parsed < timedelta(0):
            self.add(path, f"{value!r} must not be negative")
        return parsed


def rule_issues(
    *,
    name: Any,
    when: Any,
    then: Any,
    on_resolved: Any,
    description: Any,
    tags: Any,
    owner: Any,
    enabled: Any,
    allow_loop: Any,
) -> list[RuleIssue]:
    """Return every problem of the rule with these parts (an empty list when it is valid).

    The parts are typed ``Any``: a rule built in Python may hold anything (a msgspec
    struct does not check types on construction), and finding that is this function's
    job.
    """
    check = _Collector(name if isinstance(name, str) else repr(name)[:80])
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        check.add(
            "name",
            f"{str(name)[:80]!r} is not a rule name",
            "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128",
        )
    _metadata(check, description, tags, owner, {"enabled": enabled, "allow_loop": allow_loop})
    if _shape(check, "when", when) and _typed(check, "when", when, AnyTrigger):
        _trigger(check, "when", when)
    lists: tuple[tuple[str, Any], ...] = (("then", then), ("on_resolved", on_resolved))
    for field, actions in lists:
        if not isinstance(actions, list):
            check.add(field, f"must be a list of actions, not {type(actions).__name__}")
            continue
        for index, action in enumerate(actions):
            if _typed(check, f"{field}[{index}]", action, AnyAction):
                _action(check, f"{field}[{index}]", action)
    if owner is not None and not owner:
        check.add("owner", "must be a channel name or left out")
    if not check.issues and not allow_loop:
        for path, message in loop_issues(name, when, [*then, *on_resolved]):
            check.add(path, message, "pass allow_loop=True if the loop is intended and bounded")
    return check.issues


def _metadata(
    check: _Collector, description: Any, tags: Any, owner: Any, flags: dict[str, Any]
) -> None:
    if not isinstance(description, str):
        check.add("description", f"must be text, not {type(description).__name__}")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        check.add("tags", "must be a list of strings")
    if owner is not None and not isinstance(owner, str):
        check.add("owner", f"must be a channel name, not {type(owner).__name__}")
    for flag, value in flags.items():
        if not isinstance(value, bool):
            check.add(flag, f"must be true or false, not {type(value).__name__}")


_PARTS_HINT: dict[type, tuple[str, str]] = {
    AbsenceTrigger: (
        "an absence cannot be part of a compound trigger",
        "write the absence as a rule of its own, or, for 'C did not follow A', "
        "absent('C', by=after('A', within=...))",
    ),
    CompoundTrigger: (
        "compound triggers cannot be nested",
        "list every trigger in one all_of/any_of/at_least, or write two rules",
    ),
    SequenceTrigger: (
        "a sequence cannot be part of a compound trigger",
        "write the sequence as a rule of its own",
    ),
}


def _shape(check: _Collector, path: str, trigger: Any) -> bool:
    """Refuse combinations the engine does not run; ``False`` if any was found."""
    before = len(check.issues)
    if isinstance(trigger, CompoundTrigger) and isinstance(trigger.triggers, list):
        parts: list[Any] = trigger.triggers
        for index, sub in enumerate(parts):
            where = f"{path}.triggers[{index}]"
            known = _PARTS_HINT.get(type(sub))
            if known is not None:
                check.add(where, *known)
            elif not isinstance(sub, EventTrigger):
                check.add(where, f"must be an event trigger (on(...)), not {type(sub).__name__}")
            elif sub.for_each:
                check.add(
                    f"{where}.for_each",
                    "a part of a compound takes its key from the compound",
                    "set for_each on all_of/any_of/at_least, not on one of its triggers",
                )
    elif isinstance(trigger, SequenceTrigger) and isinstance(trigger.steps, list):
        steps: list[Any] = trigger.steps
        for index, step in enumerate(steps):
            if not isinstance(step, EventMatch):
                check.add(
                    f"{path}.steps[{index}]",
                    f"a step is one event (an event name or on(...)), not {type(step).__name__}",
                )
    return len(check.issues) == before


_PARTS_BY_KIND = {
    "absence": _PARTS_HINT[AbsenceTrigger],
    "compound": _PARTS_HINT[CompoundTrigger],
    "sequence": _PARTS_HINT[SequenceTrigger],
}


def raw_shape_issues(name: str, raw: Any) -> list[RuleIssue]:
    """:func:`_shape`'s issues for a rule given as JSON data that did not decode.

    A compound holding an absence does not even decode (its parts are typed as event
    triggers); this names the problem as validation of a built rule would.
    """
    check = _Collector(name)
    when = raw.get("when") if isinstance(raw, dict) else None
    if not isinstance(when, dict):
        return []
    if when.get("kind") == "compound" and isinstance(when.get("triggers"), list):
        for index, sub in enumerate(when["triggers"]):
            kind = sub.get("kind") if isinstance(sub, dict) else None
            if kind in _PARTS_BY_KIND:
                check.add(f"when.triggers[{index}]", *_PARTS_BY_KIND[kind])
    elif when.get("kind") == "sequence" and isinstance(when.get("steps"), list):
        for index, step in enumerate(when["steps"]):
            if isinstance(step, dict) and "kind" in step:
                check.add(
                    f"when.steps[{index}]",
                    "a step is one event (an event name or on(...)), not a trigger",
                )
    return check.issues


_DECODED: ContextVar[bool] = ContextVar("interlock_rules_decoded", default=False)


@contextmanager
def decoded_by_schema() -> Iterator[None]:
    """Mark rules built inside as decoded by msgspec against their schema.

    Their types are right, so :func:`rule_issues` does not check them again (a third of
    the time it takes to load 12,000 stored rules).
    """
    token = _DECODED.set(True)
    try:
        yield
    finally:
        _DECODED.reset(token)


def _typed(check: _Collector, path: str, value: Any, kind: Any) -> bool:
    """Whether ``value`` has the types its schema says; an issue if not.

    Rules decoded from JSON always do; rules built in Python may hold anything (a
    msgspec struct does not check types on construction).
    """
    if _DECODED.get():
        return True
    try:
        msgspec.convert(msgspec.to_builtins(value), type=kind)
    except TypeError as exc:
        check.add(path, f"holds a value that is not plain data: {exc}")
        return False
    except msgspec.ValidationError as exc:
        reason, _, where = str(exc).partition(" - at `$")
        inner = where.rstrip("`")
        check.add(f"{path}{inner}", reason[:1].lower() + reason[1:])
        return False
    return True


def _for_each(check: _Collector, path: str, paths: list[str]) -> None:
    for index, item in enumerate(paths):
        _path(check, f"{path}[{index}]", item)


def _path(check: _Collector, path: str, value: str) -> None:
    root = value.split(".", 1)[0]
    if root not in _ROOTS or value.endswith(".") or ".." in value:
        check.add(
            path,
            f"{value!r} is not a field of an event",
            "use event, source, id, resource.id, resource.<label> or payload.<key>",
        )


def _match(check: _Collector, path: str, match: EventMatch) -> None:
    if not match.names:
        check.add(f"{path}.names", "at least one event name or pattern is required")
    for index, pattern in enumerate(match.names):
        problem = check_pattern(pattern)
        if problem:
            check.add(f"{path}.names[{index}]", problem, "e.g. 's3.object.created', 's3.object.*'")
    if match.where is not None:
        _predicate(check, f"{path}.where", match.where, relative=False)


def _predicate(check: _Collector, path: str, predicate: AnyPredicate, *, relative: bool) -> None:
    if isinstance(predicate, AllOf | AnyOf):
        if not predicate.items:
            check.add(path, "an empty all/any has no meaning")
        for index, item in enumerate(predicate.items):
            _predicate(check, f"{path}.items[{index}]", item, relative=relative)
        return
    if isinstance(predicate, Not):
        _predicate(check, f"{path}.item", predicate.item, relative=relative)
        return
    if isinstance(predicate, RelatedTo):
        if predicate.where is not None:
            _predicate(check, f"{path}.where", predicate.where, relative=True)
        return
    if isinstance(predicate, Regex):
        try:
            re.compile(predicate.pattern)
        except re.error as exc:
            check.add(
                f"{path}.pattern", f"{predicate.pattern!r} is not a regular expression: {exc}"
            )
    if not relative:
        for field in predicate.paths():
            _path(check, f"{path}.path", field)


def _matches_everything(trigger: EventTrigger) -> bool:
    return trigger.match.where is None and any(
        matches_everything(name) for name in trigger.match.names
    )


def _trigger(check: _Collector, path: str, trigger: AnyTrigger) -> None:  # noqa: PLR0912
    if isinstance(trigger, EventTrigger):
        _match(check, f"{path}.match", trigger.match)
        if trigger.threshold < 1:
            check.add(f"{path}.threshold", f"must be at least 1, not {trigger.threshold}")
        if trigger.threshold > 1 and trigger.within is None:
            check.add(f"{path}.within", "a threshold needs a window", "e.g. within='1h'")
        check.duration(f"{path}.within", trigger.within)
        _for_each(check, f"{path}.for_each", trigger.for_each)
        if _matches_everything(trigger) and trigger.threshold == 1:
            check.add(
                f"{path}.match",
                "matches every event, so the rule would fire on each one",
                "name the events (e.g. 'airflow.dag_run.*') or add a where= filter",
            )
    elif isinstance(trigger, AbsenceTrigger):
        _match(check, f"{path}.expect", trigger.expect)
        if trigger.count < 1:
            check.add(f"{path}.count", f"must be at least 1, not {trigger.count}")
        check.duration(f"{path}.grace", trigger.grace, positive=False)
        if trigger.resolve not in ("first", "met"):
            check.add(f"{path}.resolve", f"{trigger.resolve!r} is not 'first' or 'met'")
        _for_each(check, f"{path}.for_each", trigger.for_each)
        if trigger.keys is not None:
            if not trigger.for_each:
                check.add(f"{path}.keys", "declared keys need for_each (what a key is)")
            if not trigger.keys:
                check.add(f"{path}.keys", "an empty list of keys watches nothing")
            if len(set(trigger.keys)) != len(trigger.keys):
                check.add(f"{path}.keys", "holds the same key twice")
        _window(check, f"{path}.window", trigger.window)
    elif isinstance(trigger, CompoundTrigger):
        if len(trigger.triggers) < 2:
            check.add(f"{path}.triggers", "a compound trigger needs at least two triggers")
        for index, sub in enumerate(trigger.triggers):
            _trigger(check, f"{path}.triggers[{index}]", sub)
        require = trigger.require
        if isinstance(require, int) and not 1 <= require <= len(trigger.triggers):
            check.add(f"{path}.require", f"must be between 1 and {len(trigger.triggers)}")
        check.duration(f"{path}.within", trigger.within)
        _for_each(check, f"{path}.for_each", trigger.for_each)
    elif isinstance(trigger, SequenceTrigger):
        if len(trigger.steps) < 2:
            check.add(f"{path}.steps", "a sequence needs at least two steps")
        for index, step in enumerate(trigger.steps):
            _match(check, f"{path}.steps[{index}]", step)
        check.duration(f"{path}.within", trigger.within)
        _for_each(check, f"{path}.for_each", trigger.for_each)


def _window(check: _Collector, path: str, window: Any) -> None:
    if isinstance(window, CalendarWindow):
        from interlock.rules.holiday_calendars import Holidays  # noqa: PLC0415
        from interlock.rules.windows import schedule_for  # noqa: PLC0415 - optional part

        if (window.at is None) == (window.cron is None):
            check.add(path, "give exactly one of at='HH:MM' or cron='m h dom mon dow'")
            return
        try:
            Holidays(window.holidays)
        except ValueError as exc:
            check.add(f"{path}.holidays", str(exc))
            window = msgspec.structs.replace(window, holidays=[])
        try:
            schedule_for(window)
        except ValueError as exc:
            field = "at" if window.at is not None else "cron"
            check.add(f"{path}.{field}", str(exc))
    elif isinstance(window, AfterWindow):
        _match(check, f"{path}.after", window.after)
        check.duration(f"{path}.within", window.within)
    elif isinstance(window, HeartbeatWindow):
        check.duration(f"{path}.every", window.every)


_EXECUTOR = re.compile(r"[a-z][a-z0-9_]*")


def _templates(check: _Collector, path: str, value: Any) -> None:
    for inner, text in template_strings(value):
        problem = check_template(text)
        if problem:
            check.add(f"{path}{inner}", problem)


def _apprise_target(check: _Collector, path: str, channel: str | None, url: str | None) -> None:
    if (channel is None) == (url is None):
        check.add(path, "give a channel name or an Apprise URL (exactly one)")
    if url is not None and "://" not in url:
        check.add(f"{path}.url", f"{url!r} is not an Apprise URL", "e.g. 'json://host/x'")


def _approve(check: _Collector, path: str, action: Approve) -> None:
    _apprise_target(check, path, action.channel, action.url)
    check.duration(f"{path}.timeout", action.timeout)
    if action.on_timeout not in ("reject", "approve"):
        check.add(f"{path}.on_timeout", f"{action.on_timeout!r} is not 'reject' or 'approve'")
    _templates(check, f"{path}.title", action.title)
    _templates(check, f"{path}.body", action.body)


_TOGGLES_FIELD: dict[type, str] = {
    PauseSchedule: "deployment",
    ResumeSchedule: "deployment",
    PauseQueue: "queue",
    ResumeQueue: "queue",
    PauseRule: "rule",
    ResumeRule: "rule",
}
_TOGGLES = tuple(_TOGGLES_FIELD)


def _call(check: _Collector, path: str, action: Call) -> None:
    if not _EXECUTOR.fullmatch(action.executor):
        check.add(
            f"{path}.executor",
            f"{action.executor!r} is not an executor name",
            "e.g. 'airflow_trigger_dag' (lower case, digits, underscores)",
        )
    reserved = {"action", "kind", "executor"} & set(action.params)
    if reserved:
        check.add(f"{path}.params", f"{sorted(reserved)} are reserved field names")
    _templates(check, f"{path}.params", action.params)


def _action(check: _Collector, path: str, action: AnyAction) -> None:
    if isinstance(action, Notify):
        _apprise_target(check, path, action.channel, action.url)
        _templates(check, f"{path}.title", action.title)
        _templates(check, f"{path}.body", action.body)
    elif isinstance(action, RunDeployment):
        if not action.deployment:
            check.add(f"{path}.deployment", "a deployment name is required")
        _templates(check, f"{path}.parameters", action.parameters)
    elif isinstance(action, Approve):
        _approve(check, path, action)
    elif isinstance(action, Call):
        _call(check, path, action)
    elif isinstance(action, _TOGGLES):
        field = _TOGGLES_FIELD[type(action)]
        if not getattr(action, field):
            check.add(f"{path}.{field}", f"a {field} name is required")
    elif isinstance(action, Webhook):
        if action.connection:
            if action.url:
                check.add(f"{path}.url", "give a url or a connection, not both")
            _templates(check, f"{path}.path", action.path)
        elif not action.url.startswith(("http://", "https://", "{{")):
            check.add(f"{path}.url", f"{action.url!r} is not an http(s) URL")
        if action.method.upper() not in _METHODS:
            check.add(f"{path}.method", f"{action.method!r} is not one of {', '.join(_METHODS)}")
        _templates(check, f"{path}.url", action.url)
        _templates(check, f"{path}.headers", action.headers)
        _templates(check, f"{path}.body", action.body)
    elif isinstance(action, Emit):
        if "{" not in action.event:
            try:
                check_event_name(action.event)
            except ValueError as exc:
                check.add(f"{path}.event", str(exc))
        _templates(check, f"{path}.event", action.event)
        _templates(check, f"{path}.resource_id", action.resource_id)
        _templates(check, f"{path}.payload", action.payload)
