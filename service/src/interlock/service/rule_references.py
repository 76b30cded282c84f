"""What rules name that the service does not have (yet): warnings at apply, not refusals.

A rule may name things that live in the service rather than in the rule:

==========================================  =============  =========================
where                                       names a        path
==========================================  =============  =========================
``run_deployment``, ``pause_schedule``,     deployment     ``then[1].deployment``
``resume_schedule``
``pause_queue``, ``resume_queue``           work queue     ``then[0].queue``
``notify``, ``approve`` (by channel name)   channel        ``then[2].channel``
the rule's ``owner``                        channel        ``owner``
``pause_rule``, ``resume_rule``             rule           ``on_resolved[0].rule``
``webhook(connection=...)``                 connection     ``then[0].connection``
``call(..., connection=...)`` (adapters)    connection     ``then[0].params.connection``
``run_deployment`` of a deployment whose    connection     ``then[1].deployment``
target names a connection (issue 20)
==========================================  =============  =========================

Such a name is only looked up when the action runs, so a typo used to show first in
``firings show``, when the rule fired (at 09:00, on the day the SLA was missed).
:func:`reference_warnings` looks each name up at apply instead. A missing one is a
*warning*, not an error: the target may be created later (a channel added after the
rule, a deployment declared on the next start). ``POST /api/rules`` returns them next to
its plan, ``interlock rules apply`` prints them, and ``interlock rules check --strict``
(through ``POST /api/rules/check``) makes them errors.

What exists: what the store holds when the check runs (the deployments and queues of
``config/deployments.toml`` are in it once the service started), plus, for rules, every
rule of the batch being applied (a rule pausing another one applied with it). A name
holding a template (``{{ ... }}``) is known only when the rule fires and is not checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, Protocol

import msgspec

from interlock.rules.actions import (
    AnyAction,
    Approve,
    Call,
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
from interlock.rules.rule import Rule
from interlock.service.store import NotFound, RuleUnreadable, Store

__all__ = ["Reference", "ReferenceKind", "reference_warnings", "references"]

ReferenceKind = Literal["deployment", "queue", "channel", "rule", "connection"]


class Reference(msgspec.Struct, frozen=True, kw_only=True):
    """One name a rule uses for something the service holds."""

    rule: str
    """The rule that names it."""
    path: str
    """Where in the rule (``then[1].deployment``, ``owner``)."""
    kind: ReferenceKind
    name: str


_HINTS: dict[ReferenceKind, str] = {
    "deployment": "create it with `interlock deployments create {name} ...` or declare it "
    "in config/deployments.toml; until then this action fails when the rule fires",
    "queue": "create it with `interlock queues create {name}` or declare it in "
    "config/deployments.toml; until then this action fails when the rule fires",
    "channel": "add it with `interlock channels add {name} URL`; until then this "
    "notification is not sent when the rule fires",
    "rule": "apply a rule of that name (in this batch or later); until then this "
    "action fails when the rule fires",
    "connection": "add it with `interlock connections add {name} KIND FIELD=VALUE...`; "
    "until then this action fails when the rule fires",
}
_OWNER_HINT = (
    "add it with `interlock channels add {name} URL`; until then nobody is told when "
    "this rule's actions keep failing"
)


def _is_template(name: str) -> bool:
    return "{{" in name or "{%" in name


def _action_reference(action: AnyAction) -> tuple[str, ReferenceKind, str | None]:
    """(field, kind, name) of what ``action`` names; name ``None`` when nothing."""
    match action:
        case RunDeployment() | PauseSchedule() | ResumeSchedule():
            return "deployment", "deployment", action.deployment
        case PauseQueue() | ResumeQueue():
            return "queue", "queue", action.queue
        case Notify() | Approve():
            return "channel", "channel", action.channel
        case PauseRule() | ResumeRule():
            return "rule", "rule", action.rule
        case Webhook():
            return "connection", "connection", action.connection
        case Call():
            name = action.params.get("connection")
            return "params.connection", "connection", name if isinstance(name, str) else None
        case _:
            return "", "rule", None


def references(rule: Rule) -> Iterator[Reference]:
    """Every name ``rule`` uses for a deployment, queue, channel, rule or connection.

    Names that are templates are left out.
    """
    if rule.owner and not _is_template(rule.owner):
        yield Reference(rule=rule.name, path="owner", kind="channel", name=rule.owner)
    for field, actions in (("then", rule.then), ("on_resolved", rule.on_resolved)):
        for index, action in enumerate(actions):
            attribute, kind, name = _action_reference(action)
            if name and not _is_template(name):
                path = f"{field}[{index}].{attribute}"
                yield Reference(rule=rule.name, path=path, kind=kind, name=name)


class _Named(Protocol):
    async def get(self, name: str) -> object: ...


async def _exists(store: Store, kind: ReferenceKind, name: str) -> bool:
    repositories: dict[ReferenceKind, _Named] = {
        "deployment": store.deployments,
        "queue": store.queues,
        "channel": store.channels,
        "rule": store.rules,
        "connection": store.connections,
    }
    try:
        await repositories[kind].get(name)
    except NotFound:
        return False
    except RuleUnreadable:  # stored, but quarantined as broken: it exists all the same
        return True
    return True


def _warning(reference: Reference) -> RuleIssue:
    hint = _OWNER_HINT if reference.path == "owner" else _HINTS[reference.kind]
    return RuleIssue(
        rule=reference.rule,
        path=reference.path,
        message=f"{reference.kind} {reference.name!r} does not exist (yet)",
        hint=hint.format(name=reference.name),
    )


async def reference_warnings(store: Store, rules: Sequence[Rule]) -> list[RuleIssue]:
    """A warning for each name in ``rules`` that the service does not hold.

    Rules of ``rules`` count as existing. Each distinct (kind, name) is looked up once;
    the warnings come in the order of the rules and their fields.

    Raises:
        StoreError: the store could not be read.
    """
    batch = {rule.name for rule in rules}
    known: dict[tuple[ReferenceKind, str], bool] = {}
    warnings: list[RuleIssue] = []
    for rule in rules:
        for reference in references(rule):
            key = (reference.kind, reference.name)
            if key not in known:
                in_batch = reference.kind == "rule" and reference.name in batch
                known[key] = in_batch or await _exists(store, *key)
            if not known[key]:
                warnings.append(_warning(reference))
    warnings.extend(await _target_warnings(store, rules))
    return warnings


async def _target_warnings(store: Store, rules: Sequence[Rule]) -> list[RuleIssue]:
    """Warnings for ``run_deployment`` of deployments whose target's connection is missing.

    Such a deployment was declared in a file, or its connection was removed since.
    """
    targets: dict[str, str | None] = {}  # deployment -> its missing connection, if any
    warnings: list[RuleIssue] = []
    for rule in rules:
        for field, actions in (("then", rule.then), ("on_resolved", rule.on_resolved)):
            for index, action in enumerate(actions):
                if not isinstance(action, RunDeployment) or _is_template(action.deployment):
                    continue
                name = action.deployment
                if name not in targets:
                    targets[name] = await _missing_connection(store, name)
                missing = targets[name]
                if missing is not None:
                    warnings.append(
                        RuleIssue(
                            rule=rule.name,
                            path=f"{field}[{index}].deployment",
                            message=f"deployment {name!r} runs on connection {missing!r}, "
                            "which does not exist (yet)",
                            hint=f"add it with `interlock connections add {missing} KIND "
                            f"FIELD=VALUE...` or point the deployment elsewhere (`interlock "
                            f"deployments set-target {name} ...`); until then its runs fail",
                        )
                    )
    return warnings


async def _missing_connection(store: Store, deployment: str) -> str | None:
    try:
        target = (await store.deployments.get(deployment)).target
    except NotFound:
        return None  # warned about as a deployment
    connection = target.get("connection")
    if not isinstance(connection, str) or not connection:
        return None
    return None if await _exists(store, "connection", connection) else connection
