"""``/api/rules``: list, show, apply (with a dry run), check, pause, resume, delete, versions.

Rules are sent and shown in their stored JSON form (schema version 1, as
:func:`interlock.rules.rule.dump_rules` writes it). ``POST /api/rules`` takes that
document (``{"schema_version": 1, "rules": [...]}``), a list of rule objects, or one rule
object, up to 64 MiB (other routes take 1 MiB). Every problem of every rule is collected:
an invalid request is answered 422 with a ``problems`` list and nothing is applied.

A rule naming a deployment, queue, channel or rule the service does not hold is applied
all the same (it may come later), with a ``warnings`` entry saying what is missing
(:mod:`interlock.service.rule_references`). ``POST /api/rules/check`` (read scope) takes
the same body and answers only the warnings, changing nothing: what
``interlock rules check --strict`` asks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK

from interlock.rules.errors import RuleDefinitionError, RuleIssue
from interlock.rules.inline_secrets import inline_secret_warnings
from interlock.rules.rule import SCHEMA_VERSION, Rule, load_rules
from interlock.service.actions.destinations import webhook_destination_issues
from interlock.service.api.auth import require_admin, require_read, require_write
from interlock.service.api.deps import ServicesDep
from interlock.service.api.errors import TOO_LARGE_HINT_OPT, invalid_rules
from interlock.service.api.openapi import RULES_BODY_SCHEMA, raw_json_body
from interlock.service.api.plan import PlannedChange, plan, rule_document
from interlock.service.context import RuleStatus, Services
from interlock.service.rule_references import reference_warnings
from interlock.service.store import RuleRecord, RuleUnreadable, UnreadableRule

__all__ = [
    "RULES_MAX_BODY_SIZE",
    "ActionsResumed",
    "AppliedRules",
    "RuleController",
    "RuleDetail",
    "RuleSummary",
    "RulesChecked",
    "parse_rules",
    "unknown_fields",
]

RULES_MAX_BODY_SIZE: Final = 64 * 1024 * 1024
"""Largest body ``POST /api/rules`` and ``/check`` take: a whole estate of rules in one
apply (12,000 compound rules are ~16 MB), where other routes keep the app's 1 MiB."""

_RULES_TOO_LARGE = (
    "split the rules into several applies (`interlock rules apply` of a few files at a "
    "time; an apply changes only the rules it names)"
)

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


RuleState = Literal["active", "paused", "disabled", "broken"]


class RuleSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A rule in a listing."""

    name: str
    version: int
    paused: bool
    enabled: bool
    """Enabled in its definition and not paused: it can fire."""
    loaded: bool
    """Held by the running engine."""
    description: str
    tags: list[str]
    trigger: str
    """The trigger's kind (``event``, ``absence``, ``threshold``, ...)."""
    next_due: datetime | None
    next_deadlines: list[datetime]
    updated_at: datetime
    state: RuleState = "active"
    """``broken``: quarantined, it does not run (see ``broken``); ``paused`` by the service;
    ``disabled`` in its definition; else ``active``."""
    broken: str | None = None
    """Why the rule is broken: apply a fixed version to run it again."""


class RuleDetail(msgspec.Struct, frozen=True, kw_only=True):
    """A rule: its definition, metadata and the engine's view of it."""

    name: str
    version: int
    paused: bool
    created_at: datetime
    updated_at: datetime
    rule: dict[str, Any]
    """The definition in its stored JSON form."""
    status: RuleStatus


class RuleVersionOut(msgspec.Struct, frozen=True, kw_only=True):
    """One applied version of a rule."""

    version: int
    digest: str
    created_at: datetime
    rule: dict[str, Any]


class ActionsResumed(msgspec.Struct, frozen=True, kw_only=True):
    """What resuming a rule's actions did."""

    rule: str
    index: int | None
    """The action resumed, or ``None`` for all of the rule's actions."""
    resumed: int
    """Queued actions that became pending again."""


class AppliedRules(msgspec.Struct, frozen=True, kw_only=True):
    """What ``POST /api/rules`` did (or, in a dry run, would do)."""

    dry_run: bool
    changes: list[PlannedChange]
    warnings: list[RuleIssue] = msgspec.field(default_factory=list)
    """Names of deployments, queues, channels or rules the service does not hold (yet):
    the rules are applied, and those actions fail when they fire until the names exist."""


class RulesChecked(msgspec.Struct, frozen=True, kw_only=True):
    """What ``POST /api/rules/check`` found (nothing is applied)."""

    rules: list[str]
    """The rules checked, by name."""
    warnings: list[RuleIssue]
    """As in :class:`AppliedRules`: what the rules name that the service does not hold."""


def parse_rules(body: bytes) -> list[Rule]:
    """The rules of a request body (stored document, list of rules, or one rule).

    A field the rule schema does not know is an error (a misspelt ``descripton`` would
    otherwise be dropped without a word).

    Raises:
        RuleDefinitionError: the body is not JSON or holds invalid rules (every problem).
    """
    try:
        document = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise RuleDefinitionError(
            [RuleIssue(rule="?", path="", message=f"the body is not valid JSON: {exc}")]
        ) from None
    if isinstance(document, list):
        document = {"schema_version": SCHEMA_VERSION, "rules": document}
    elif isinstance(document, dict) and "rules" not in document:
        document = {"schema_version": SCHEMA_VERSION, "rules": [document]}
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise RuleDefinitionError(
            [
                RuleIssue(
                    rule="?",
                    path="",
                    message="send a rule object, a list of them, or "
                    '{"schema_version": 1, "rules": [...]}',
                )
            ]
        )
    if not document["rules"]:
        raise RuleDefinitionError([RuleIssue(rule="?", path="rules", message="is empty")])
    rules = load_rules(_encoder.encode(document))
    issues = [
        RuleIssue(rule=rule.name, path=path, message="is not a field here (misspelt?)")
        for raw, rule in zip(document["rules"], rules, strict=True)
        for path in unknown_fields(raw, rule_document(rule))
    ]
    if issues:
        raise RuleDefinitionError(issues)
    return rules


def refuse_unsafe_destinations(rules: list[Rule], services: Services) -> None:
    """Refuse rules whose webhooks may not go where they point (this service's posture).

    Raises:
        RuleDefinitionError: a webhook's origin comes from a template and no allow-list
            permits it, or the allow-list is set and does not match a literal origin.
    """
    issues = [
        issue for rule in rules for issue in webhook_destination_issues(rule, services.settings)
    ]
    if issues:
        raise RuleDefinitionError(issues)


def unknown_fields(given: Any, decoded: Any, path: str = "") -> list[str]:
    """Paths of keys in ``given`` that decoding dropped (unknown to the rule schema)."""
    if isinstance(given, dict) and isinstance(decoded, dict):
        found = []
        for key, value in given.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in decoded:
                found.append(where)
            else:
                found.extend(unknown_fields(value, decoded[key], where))
        return found
    if isinstance(given, list) and isinstance(decoded, list) and len(given) == len(decoded):
        return [
            where
            for index, (old, new) in enumerate(zip(given, decoded, strict=True))
            for where in unknown_fields(old, new, f"{path}[{index}]")
        ]
    return []


def _trigger_kind(rule: Rule) -> str:
    data = msgspec.to_builtins(rule.when)
    return str(data.get("kind", type(rule.when).__name__)) if isinstance(data, dict) else ""


def _state(
    record: RuleRecord, status: RuleStatus
) -> Literal["active", "paused", "disabled", "broken"]:
    if status.broken is not None:
        return "broken"
    if record.paused:
        return "paused"
    return "active" if record.rule.enabled else "disabled"


def _summary(record: RuleRecord, status: RuleStatus) -> RuleSummary:
    return RuleSummary(
        name=record.name,
        version=record.version,
        paused=record.paused,
        enabled=record.rule.enabled and not record.paused and status.broken is None,
        loaded=status.loaded,
        description=record.rule.description,
        tags=list(record.rule.tags),
        trigger=_trigger_kind(record.rule),
        next_due=status.next_due,
        next_deadlines=list(status.next_deadlines),
        updated_at=record.updated_at,
        state=_state(record, status),
        broken=status.broken,
    )


def _unreadable_summary(rule: UnreadableRule) -> RuleSummary:
    document = rule.document
    when = document.get("when")
    tags = document.get("tags")
    return RuleSummary(
        name=rule.name,
        version=rule.version,
        paused=rule.paused,
        enabled=False,
        loaded=False,
        description=str(document.get("description", "")),
        tags=[str(tag) for tag in tags] if isinstance(tags, list) else [],
        trigger=str(when.get("kind", "?")) if isinstance(when, dict) else "?",
        next_due=None,
        next_deadlines=[],
        updated_at=rule.updated_at,
        state="broken",
        broken=f"its stored definition cannot be read: {rule.problem}",
    )


def _detail(record: RuleRecord, services: Services) -> RuleDetail:
    return RuleDetail(
        name=record.name,
        version=record.version,
        paused=record.paused,
        created_at=record.created_at,
        updated_at=record.updated_at,
        rule=rule_document(record.rule),
        status=services.rules.status(record.name),
    )


class RuleController(Controller):
    """Rules: what is loaded, changes to it, and its history."""

    path = "/api/rules"
    tags = ["rules"]  # noqa: RUF012 - Litestar's declared attribute

    @get("/", guards=[require_read], summary="List rules")
    async def list_rules(self, services: ServicesDep) -> list[RuleSummary]:
        """Every stored rule, by name, with its state, version and next deadlines.

        A rule whose stored definition no longer reads as a rule, or that the engine
        could not run, is listed with ``state`` ``broken`` and the reason.
        """
        records, unreadable = await services.store.rules.list_all()
        summaries = [_summary(record, services.rules.status(record.name)) for record in records]
        summaries.extend(_unreadable_summary(rule) for rule in unreadable)
        return sorted(summaries, key=lambda summary: summary.name)

    @get("/{name:str}", guards=[require_read], summary="Show a rule")
    async def get_rule(self, name: FromPath[str], services: ServicesDep) -> RuleDetail:
        """The rule's definition (stored JSON form), metadata and engine status; 404 if none.

        For a rule whose stored definition no longer reads as a rule, the stored document
        as it is, and ``status.broken`` saying why.
        """
        try:
            return _detail(await services.store.rules.get(name), services)
        except RuleUnreadable:
            _, unreadable = await services.store.rules.list_all()
            rule = next(item for item in unreadable if item.name == name)
            return RuleDetail(
                name=rule.name,
                version=rule.version,
                paused=rule.paused,
                created_at=rule.created_at,
                updated_at=rule.updated_at,
                rule=rule.document,
                status=services.rules.status(name),
            )

    @post(
        "/",
        guards=[require_write],
        status_code=HTTP_200_OK,
        summary="Apply rules",
        request_max_body_size=RULES_MAX_BODY_SIZE,
        opt={TOO_LARGE_HINT_OPT: _RULES_TOO_LARGE},
        operation_class=raw_json_body(
            'Rules in their stored JSON form: {"schema_version": 1, "rules": [...]}, a list '
            "of rules, or one rule (as `GET /api/rules/{name}` shows under `rule`).",
            schema=RULES_BODY_SCHEMA,
        ),
    )
    async def apply_rules(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        dry_run: Annotated[
            bool, QueryParameter(description="Return the plan; change nothing.")
        ] = False,
    ) -> Response[Any]:
        """Create or update rules, given in their stored JSON form.

        The body is ``{"schema_version": 1, "rules": [...]}``, a list of rules, or one
        rule. Each rule comes back as ``created``, ``updated`` (with a field-level diff)
        or ``unchanged``; unchanged rules keep their state. With ``?dry_run=true`` nothing
        is applied. Invalid rules: 422 with every problem in ``problems``, nothing applied.
        ``warnings`` lists the deployments, queues, channels and rules they name that do not
        exist (yet): a warning, not a refusal (the rules of the request count as existing).
        """
        try:
            rules = parse_rules(await request.body())
            refuse_unsafe_destinations(rules, services)
        except RuleDefinitionError as exc:
            return invalid_rules(exc)
        planned = await plan(services.store, rules)
        warnings = await reference_warnings(services.store, rules)
        warnings += inline_secret_warnings(rules)
        if not dry_run:
            changes = await services.rules.apply(rules)
            versions = {change.record.name: change.record.version for change in changes}
            planned = [
                msgspec.structs.replace(entry, version=versions.get(entry.name, entry.version))
                for entry in planned
            ]
        return Response(AppliedRules(dry_run=dry_run, changes=planned, warnings=warnings))

    @post(
        "/check",
        guards=[require_read],
        status_code=HTTP_200_OK,
        summary="Check rules against the service",
        request_max_body_size=RULES_MAX_BODY_SIZE,
        opt={TOO_LARGE_HINT_OPT: _RULES_TOO_LARGE},
        operation_class=raw_json_body(
            "Rules in their stored JSON form, as `POST /api/rules` takes them.",
            schema=RULES_BODY_SCHEMA,
        ),
    )
    async def check_rules(
        self, request: Request[Any, Any, Any], services: ServicesDep
    ) -> Response[Any]:
        """Validate rules and list what they name that the service does not hold.

        Nothing is applied. The answer lists the rules checked and the ``warnings`` an
        apply would give (a deployment, queue, channel or rule that does not exist; the
        rules of the request count as existing). Invalid rules: 422 with every problem
        in ``problems``, as for an apply.
        """
        try:
            rules = parse_rules(await request.body())
            refuse_unsafe_destinations(rules, services)
        except RuleDefinitionError as exc:
            return invalid_rules(exc)
        warnings = await reference_warnings(services.store, rules)
        warnings += inline_secret_warnings(rules)
        return Response(RulesChecked(rules=[rule.name for rule in rules], warnings=warnings))

    @post("/{name:str}/pause", guards=[require_write], status_code=HTTP_200_OK, summary="Pause")
    async def pause(self, name: FromPath[str], services: ServicesDep) -> RuleSummary:
        """Pause a rule: it stays loaded but does not fire until resumed; 404 if none."""
        record = await services.rules.set_paused(name, True)
        return _summary(record, services.rules.status(name))

    @post("/{name:str}/resume", guards=[require_write], status_code=HTTP_200_OK, summary="Resume")
    async def resume(self, name: FromPath[str], services: ServicesDep) -> RuleSummary:
        """Resume a paused rule; 404 if none."""
        record = await services.rules.set_paused(name, False)
        return _summary(record, services.rules.status(name))

    @delete("/{name:str}", guards=[require_admin], summary="Delete a rule")
    async def delete_rule(self, name: FromPath[str], services: ServicesDep) -> None:
        """Unload a rule and delete it with its versions (its firings stay); 404 if none."""
        await services.rules.delete(name)

    @get("/{name:str}/versions", guards=[require_read], summary="A rule's versions")
    async def versions(self, name: FromPath[str], services: ServicesDep) -> list[RuleVersionOut]:
        """Every applied version of the rule, oldest first; 404 if none."""
        return [
            RuleVersionOut(
                version=version.version,
                digest=version.digest,
                created_at=version.created_at,
                rule=rule_document(version.rule),
            )
            for version in await services.store.rules.versions(name)
        ]

    @post(
        "/{name:str}/actions/resume",
        guards=[require_write],
        status_code=HTTP_200_OK,
        summary="Resume a rule's suspended actions",
    )
    async def resume_actions(
        self,
        name: FromPath[str],
        services: ServicesDep,
        index: Annotated[
            int | None,
            QueryParameter(
                ge=0, le=9_999, description="Only the action at this position of the list."
            ),
        ] = None,
    ) -> ActionsResumed:
        """Close the circuit breaker of a rule's actions (all, or the ``index``-th).

        Actions suspended after repeated failures become pending again, and new firings
        queue normally. Answers how many queued actions were resumed (0 is fine: the
        breaker is closed anyway); 404 if the rule does not exist.
        """
        from interlock.service.actions.breaker import resume_action  # noqa: PLC0415

        await services.store.rules.get(name)  # 404 for an unknown rule
        resumed = await resume_action(services, name, index)
        return ActionsResumed(rule=name, index=index, resumed=resumed)
