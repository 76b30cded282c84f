"""Interlock rules: the Python DSL, the declarative rule model and the matching engine.

Write rules in ordinary Python modules::

    from interlock.rules import Rule, absent, deadline, notify, resource, workdays

    sales_sla = Rule(
        name="sales-table-by-0900",
        when=absent("db.table.updated", where=resource.id == "warehouse.sales",
                    by=deadline("09:00", tz="Europe/Berlin", days=workdays())),
        then=[notify("data-team-slack", title="Sales table not refreshed by 09:00")],
    )

Rules are plain data: :func:`dump_rules` / :func:`load_rules` give the stored JSON form.
"""

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
from interlock.rules.dsl import (
    absent,
    after,
    all_of,
    any_of,
    approve,
    at_least,
    call,
    cron,
    deadline,
    emit,
    every_day,
    heartbeat,
    notify,
    on,
    pause_queue,
    pause_rule,
    pause_schedule,
    resume_queue,
    resume_rule,
    resume_schedule,
    run_deployment,
    sequence,
    webhook,
    weekends,
    workdays,
)
from interlock.rules.errors import RuleDefinitionError, RuleIssue
from interlock.rules.fields import event, payload, related, resource, source
from interlock.rules.holiday_calendars import CountryHolidays, country
from interlock.rules.rule import Rule, dump_rules, load_rules

__all__ = [
    "Approve",
    "Call",
    "CountryHolidays",
    "Emit",
    "Notify",
    "PauseQueue",
    "PauseRule",
    "PauseSchedule",
    "ResumeQueue",
    "ResumeRule",
    "ResumeSchedule",
    "Rule",
    "RuleDefinitionError",
    "RuleIssue",
    "RunDeployment",
    "Webhook",
    "absent",
    "after",
    "all_of",
    "any_of",
    "approve",
    "at_least",
    "call",
    "country",
    "cron",
    "deadline",
    "dump_rules",
    "emit",
    "event",
    "every_day",
    "heartbeat",
    "load_rules",
    "notify",
    "on",
    "pause_queue",
    "pause_rule",
    "pause_schedule",
    "payload",
    "related",
    "resource",
    "resume_queue",
    "resume_rule",
    "resume_schedule",
    "run_deployment",
    "sequence",
    "source",
    "webhook",
    "weekends",
    "workdays",
]
