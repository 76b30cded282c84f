"""The rule-writing DSL: small functions that build the declarative model.

Read a rule aloud and it says what it does::

    Rule(
        name="sales-table-by-0900",
        when=absent("db.table.updated", where=resource.id == "warehouse.sales",
                    by=deadline("09:00", tz="Europe/Berlin", days=workdays())),
        then=[notify("data-team-slack", title="Sales table not refreshed by 09:00"),
              run_deployment("backfill-sales", parameters={"date": "{{ window.start.date() }}"})],
    )

Nothing here validates beyond types: :class:`~interlock.rules.rule.Rule` validates the
whole rule and reports every problem with its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

from interlock.rules.actions import (
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
from interlock.rules.fields import Field
from interlock.rules.holiday_calendars import CountryHolidays, HolidayEntry
from interlock.rules.predicates import Predicate
from interlock.rules.triggers import (
    AbsenceTrigger,
    AfterWindow,
    AnyWindow,
    CalendarWindow,
    CompoundTrigger,
    EventMatch,
    EventTrigger,
    HeartbeatWindow,
    SequenceTrigger,
)
from interlock.sdk.durations import format_duration

__all__ = [
    "absent",
    "after",
    "all_of",
    "any_of",
    "approve",
    "at_least",
    "call",
    "cron",
    "deadline",
    "emit",
    "every_day",
    "heartbeat",
    "notify",
    "on",
    "pause_queue",
    "pause_rule",
    "pause_schedule",
    "resume_queue",
    "resume_rule",
    "resume_schedule",
    "run_deployment",
    "sequence",
    "webhook",
    "weekends",
    "workdays",
]

Duration = str | int | float | timedelta
Names = str | Sequence[str]
Paths = str | Field | Sequence[str | Field]


def _kind(value: object) -> str:
    if isinstance(value, Field):
        return f"the field {value.path}"
    return type(value).__name__


def _duration(value: Duration | None, where: str = "a duration") -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_duration(timedelta(seconds=value))
    raise TypeError(
        f"{where} must be a duration like '2h', a number of seconds or a timedelta, "
        f"not {_kind(value)}"
    )


def _names(names: Names, where: str) -> list[str]:
    if isinstance(names, str):
        return [names]
    if isinstance(names, Sequence) and all(isinstance(name, str) for name in names):
        return list(names)
    raise TypeError(
        f"{where}: event names are strings like 's3.object.created' (or a list of them), "
        f"not {_kind(names)}"
    )


def _paths(for_each: Paths, where: str) -> list[str]:
    """``for_each`` as paths: a string, a field (``resource.id``) or a list of them."""
    if isinstance(for_each, str):
        return [for_each]
    if isinstance(for_each, Field):
        return [for_each.path]
    if isinstance(for_each, Sequence) and all(isinstance(p, str | Field) for p in for_each):
        return [p.path if isinstance(p, Field) else p for p in for_each]
    raise TypeError(
        f"{where}: for_each takes a path like 'resource.id' (or the field resource.id, or a "
        f"list of them), not {_kind(for_each)}"
    )


def _where(where: Predicate | None, function: str) -> Predicate | None:
    if where is None or isinstance(where, Predicate):
        return where
    raise TypeError(
        f"{function}: where= takes a condition like resource.id == 'x', not {_kind(where)}"
    )


def _count(value: int, function: str, argument: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"{function}: {argument} must be a whole number, not {_kind(value)}")


def _match(
    names: Names | EventMatch | EventTrigger, where: Predicate | None, function: str
) -> EventMatch:
    if isinstance(names, EventTrigger):
        return names.match
    if isinstance(names, EventMatch):
        return names
    condition: Any = _where(where, function)  # a Predicate is one of AnyPredicate's members
    return EventMatch(names=_names(names, function), where=condition)


# -- triggers --------------------------------------------------------------------------


def on(
    names: Names,
    where: Predicate | None = None,
    *,
    at_least: int = 1,
    within: Duration | None = None,
    for_each: Paths = (),
) -> EventTrigger:
    """Events named ``names`` (patterns allowed) satisfying ``where``.

    ``at_least=N, within="1h"`` fires when N such events happen within an hour (per
    ``for_each`` key); otherwise every matching event fires.
    """
    return EventTrigger(
        match=_match(names, where, "on()"),
        threshold=_count(at_least, "on()", "at_least"),
        within=_duration(within, "on(): within"),
        for_each=_paths(for_each, "on()"),
    )


def absent(
    names: Names,
    where: Predicate | None = None,
    *,
    by: AnyWindow,
    at_least: int = 1,
    for_each: Paths = (),
    keys: Sequence[str] | None = None,
    grace: Duration = "0s",
    resolve: Literal["first", "met"] = "first",
) -> AbsenceTrigger:
    """Fewer than ``at_least`` events named ``names`` arrive in each window of ``by``.

    ``by`` is :func:`deadline` / :func:`cron` (calendar), :func:`after` (a duration after
    another event) or :func:`heartbeat`. With ``keys``, every listed key is watched from
    the start, including keys that never send an event. ``grace`` is how long to wait
    for late data before judging; ``resolve`` what resolves a miss: the ``"first"``
    expected event after it, or the expectation ``"met"``.
    """
    if not isinstance(by, CalendarWindow | AfterWindow | HeartbeatWindow):
        raise TypeError(
            "absent(): by= takes deadline(...), cron(...), after(...) or heartbeat(...), "
            f"not {_kind(by)}"
        )
    if keys is not None and (
        isinstance(keys, str) or not all(isinstance(key, str) for key in keys)
    ):
        raise TypeError(f"absent(): keys must be a list of strings, not {_kind(keys)}")
    return AbsenceTrigger(
        expect=_match(names, where, "absent()"),
        window=by,
        count=_count(at_least, "absent()", "at_least"),
        for_each=_paths(for_each, "absent()"),
        keys=list(keys) if keys is not None else None,
        grace=_duration(grace, "absent(): grace") or "0s",
        resolve=resolve,
    )


def deadline(
    at: str,
    *,
    tz: str = "UTC",
    days: Sequence[str] = (),
    holidays: Sequence[HolidayEntry] | CountryHolidays = (),
    start: Literal["previous_deadline", "start_of_day"] = "previous_deadline",
) -> CalendarWindow:
    """A deadline at a time of day (``"09:00"``) in a time zone, on some days.

    ``holidays`` takes local dates (``"2026-12-24"``) and countries' calendars
    (``country("DE", subdiv="BE")``), one or a list: no deadline falls on them.
    """
    return CalendarWindow(
        at=at, tz=tz, days=list(days), holidays=_holidays(holidays, "deadline()"), start=start
    )


def cron(
    expression: str,
    *,
    tz: str = "UTC",
    holidays: Sequence[HolidayEntry] | CountryHolidays = (),
    start: Literal["previous_deadline", "start_of_day"] = "previous_deadline",
) -> CalendarWindow:
    """Deadlines from a five-field cron expression (``"0 9 * * mon-fri"``).

    No deadline falls on ``holidays`` (dates and countries' calendars, as for
    :func:`deadline`).
    """
    return CalendarWindow(
        cron=expression, tz=tz, holidays=_holidays(holidays, "cron()"), start=start
    )


def _holidays(value: object, where: str) -> list[HolidayEntry]:
    if isinstance(value, CountryHolidays | str):
        value = [value]
    if not isinstance(value, Sequence) or not all(
        isinstance(entry, str | CountryHolidays) for entry in value
    ):
        raise TypeError(
            f"{where}: holidays takes dates ('2026-12-25') and country('DE', subdiv='BE'), "
            f"one or a list, not {_kind(value)}"
        )
    return list(value)


def after(names: Names, where: Predicate | None = None, *, within: Duration) -> AfterWindow:
    """A window opened by each event named ``names``, closing ``within`` later."""
    return AfterWindow(
        after=_match(names, where, "after()"), within=_duration(within, "after(): within") or ""
    )


def heartbeat(every: Duration) -> HeartbeatWindow:
    """At least one expected event every ``every``, counted from the previous one."""
    return HeartbeatWindow(every=_duration(every, "heartbeat(): every") or "")


def workdays() -> list[str]:
    """Monday to Friday."""
    return ["mon", "tue", "wed", "thu", "fri"]


def weekends() -> list[str]:
    """Saturday and Sunday."""
    return ["sat", "sun"]


def every_day() -> list[str]:
    """Every day of the week."""
    return []


def _compound(
    require: Literal["all", "any"] | int,
    triggers: Sequence[EventTrigger | str],
    within: Duration,
    for_each: Paths,
    function: str,
) -> CompoundTrigger:
    subs = [on(item) if isinstance(item, str) else item for item in triggers]
    return CompoundTrigger(
        triggers=subs,
        require=require,
        within=_duration(within, f"{function}: within") or "",
        for_each=_paths(for_each, function),
    )


def all_of(
    *triggers: EventTrigger | str, within: Duration, for_each: Paths = ()
) -> CompoundTrigger:
    """Every one of ``triggers`` fires within ``within`` of each other."""
    return _compound("all", triggers, within, for_each, "all_of()")


def any_of(
    *triggers: EventTrigger | str, within: Duration, for_each: Paths = ()
) -> CompoundTrigger:
    """Any one of ``triggers`` fires."""
    return _compound("any", triggers, within, for_each, "any_of()")


def at_least(
    count: int, *triggers: EventTrigger | str, within: Duration, for_each: Paths = ()
) -> CompoundTrigger:
    """At least ``count`` of ``triggers`` fire within ``within``."""
    return _compound(_count(count, "at_least()", "count"), triggers, within, for_each, "at_least()")


def sequence(
    *steps: EventTrigger | EventMatch | str,
    within: Duration,
    for_each: Paths = (),
) -> SequenceTrigger:
    """The steps happen in this order, the last within ``within`` of the first.

    A step is one event: an event name, ``on(name, where=...)`` or an
    :class:`EventMatch`. A threshold or ``for_each`` on a step is refused (set
    ``for_each`` on the sequence).
    """
    matches = []
    for index, step in enumerate(steps, start=1):
        if isinstance(step, EventTrigger) and (
            step.threshold != 1 or step.within is not None or step.for_each
        ):
            raise TypeError(
                f"sequence(): step {index} has at_least/within/for_each; a step is one "
                "event (set for_each on the sequence)"
            )
        if not isinstance(step, str | EventMatch | EventTrigger):
            raise TypeError(
                f"sequence(): step {index} must be an event name or on(...), not {_kind(step)}"
            )
        matches.append(_match(step, None, "sequence()"))
    return SequenceTrigger(
        steps=matches,
        within=_duration(within, "sequence(): within") or "",
        for_each=_paths(for_each, "sequence()"),
    )


# -- actions ---------------------------------------------------------------------------


def notify(
    target: str,
    *,
    title: str = "{{ rule.name }} {{ firing.status }}",
    body: str = "{{ firing.summary }}",
) -> Notify:
    """Notify a channel by name, or an Apprise URL (anything with ``://``)."""
    if "://" in target:
        return Notify(url=target, title=title, body=body)
    return Notify(channel=target, title=title, body=body)


def run_deployment(
    deployment: str, *, parameters: Mapping[str, Any] | None = None
) -> RunDeployment:
    """Start a run of ``deployment``; parameter values may be templates."""
    return RunDeployment(deployment=deployment, parameters=dict(parameters or {}))


def pause_queue(queue: str) -> PauseQueue:
    """Pause a work queue."""
    return PauseQueue(queue=queue)


def resume_queue(queue: str) -> ResumeQueue:
    """Resume a work queue."""
    return ResumeQueue(queue=queue)


def pause_rule(rule: str) -> PauseRule:
    """Pause a rule."""
    return PauseRule(rule=rule)


def resume_rule(rule: str) -> ResumeRule:
    """Resume a rule."""
    return ResumeRule(rule=rule)


def webhook(
    url: str = "",
    *,
    connection: str | None = None,
    path: str = "",
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    concurrency: int | None = None,
) -> Webhook:
    """Call an HTTP endpoint with a JSON body (strings in it may be templates).

    The endpoint is ``url``, or ``connection`` (an ``http`` connection the service keeps:
    its base URL and secret headers, resolved each time the action runs) with ``path``
    under its base URL: ``webhook(connection="tickets", path="/issues")``.
    ``concurrency`` caps the requests in flight at once to the destination (default:
    the service's ``actions.webhooks`` settings).
    """
    if concurrency is not None and not _count(concurrency, "webhook()", "concurrency") >= 1:
        raise ValueError(f"webhook(): concurrency must be 1 or more, not {concurrency}")
    if bool(url) == bool(connection):
        raise ValueError("webhook(): give a url or a connection (with a path), not both")
    if path and not connection:
        raise ValueError("webhook(): path goes with connection (a url holds its own path)")
    return Webhook(
        url=url,
        connection=connection,
        path=path,
        method=method,
        headers=dict(headers or {}),
        body=body,
        concurrency=concurrency,
    )


def emit(
    event: str,
    resource_id: str,
    *,
    labels: Mapping[str, str] | None = None,
    payload: Mapping[str, Any] | None = None,
) -> Emit:
    """Publish a further event (every string may be a template)."""
    return Emit(
        event=event, resource_id=resource_id, labels=dict(labels or {}), payload=dict(payload or {})
    )


def pause_schedule(deployment: str) -> PauseSchedule:
    """Turn a deployment's cron schedule off."""
    return PauseSchedule(deployment=deployment)


def resume_schedule(deployment: str) -> ResumeSchedule:
    """Turn a deployment's cron schedule back on."""
    return ResumeSchedule(deployment=deployment)


def approve(
    target: str,
    *,
    title: str = "Approval needed: {{ rule.name }}",
    body: str = "{{ firing.summary }}",
    timeout: Duration | None = None,
    on_timeout: Literal["reject", "approve"] = "reject",
) -> Approve:
    """Wait for a person to approve before the actions after this one run.

    ``target`` is a channel name or an Apprise URL (anything with ``://``); the request
    sent there carries approve and reject links. Undecided after ``timeout``, the
    firing is rejected (or approved, with ``on_timeout="approve"``).
    """
    if "://" in target:
        return Approve(
            url=target, title=title, body=body, timeout=_duration(timeout), on_timeout=on_timeout
        )
    return Approve(
        channel=target, title=title, body=body, timeout=_duration(timeout), on_timeout=on_timeout
    )


def call(executor: str, **params: Any) -> Call:
    """Run an action an adapter provides, e.g. ``call("airflow_trigger_dag", dag_id="x")``.

    ``executor`` names an entry point of the group ``interlock.actions`` in the service's
    environment; ``params`` are its fields (every string may be a template).
    """
    return Call(executor=executor, params=params)
