"""The rule: a named trigger with actions, as plain data that serializes to JSON and back.

``Rule(...)`` validates itself on construction — from the DSL or from JSON alike — and
raises :class:`~interlock.rules.errors.RuleDefinitionError` listing every problem with its
field path. :func:`dump_rules` / :func:`load_rules` are the stored form: a JSON document
with a schema version, so the service can store, diff and show rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from interlock.rules.actions import AnyAction
from interlock.rules.collector import collector_paused
from interlock.rules.errors import RuleDefinitionError, RuleIssue
from interlock.rules.triggers import AnyTrigger
from interlock.rules.validation import decoded_by_schema, raw_shape_issues, rule_issues

__all__ = ["SCHEMA_VERSION", "Rule", "RuleSet", "dump_rules", "load_rules"]

SCHEMA_VERSION = 1


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """A trigger and what to do when it fires.

    Attributes:
        name: Unique, stable identifier (``[a-z0-9][a-z0-9._-]*``); firings refer to it.
        when: The trigger.
        then: Actions when the rule fires.
        on_resolved: Actions when a fired absence is over (the event came, late).
        description: Free text shown in plans and the UI.
        tags: Labels for grouping and search.
        owner: A notification channel told when this rule's actions keep failing.
        enabled: A disabled rule is loaded and validated but never fires.
        allow_loop: The author confirms that the rule may react to what its own actions
            produce (otherwise refused, since it could re-trigger itself without bound).
    """

    name: str
    when: AnyTrigger
    then: list[AnyAction] = msgspec.field(default_factory=list)
    on_resolved: list[AnyAction] = msgspec.field(default_factory=list)
    description: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    owner: str | None = None
    enabled: bool = True
    allow_loop: bool = False

    def __post_init__(self) -> None:
        issues = rule_issues(
            name=self.name,
            when=self.when,
            then=self.then,
            on_resolved=self.on_resolved,
            description=self.description,
            tags=self.tags,
            owner=self.owner,
            enabled=self.enabled,
            allow_loop=self.allow_loop,
        )
        if issues:
            raise RuleDefinitionError(issues)


class RuleSet(msgspec.Struct, frozen=True, kw_only=True):
    """The stored form of a collection of rules."""

    schema_version: int = SCHEMA_VERSION
    rules: list[Rule] = msgspec.field(default_factory=list)


_encoder = msgspec.json.Encoder(order="deterministic")


def dump_rules(rules: Iterable[Rule]) -> bytes:
    """Return the JSON document of ``rules`` (deterministic: equal rules, equal bytes)."""
    return _encoder.encode(RuleSet(rules=list(rules)))


def load_rules(data: bytes | str) -> list[Rule]:
    """Decode a document written by :func:`dump_rules`.

    Raises:
        RuleDefinitionError: the document is not valid JSON, has an unknown schema
            version, or holds invalid rules; every problem is listed.
    """
    try:
        header = msgspec.json.decode(data, type=dict[str, Any])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise RuleDefinitionError([RuleIssue(rule="?", path="", message=str(exc))]) from exc
    version = header.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RuleDefinitionError(
            [
                RuleIssue(
                    rule="?",
                    path="schema_version",
                    message=f"unsupported schema version {version!r}",
                    hint=f"this Interlock reads version {SCHEMA_VERSION}",
                )
            ]
        )
    with collector_paused():
        return _rules(header.get("rules", []))


def _rules(documents: Any) -> list[Rule]:
    issues: list[RuleIssue] = []
    rules: list[Rule] = []
    for index, raw in enumerate(documents):
        name = raw.get("name", f"#{index}") if isinstance(raw, dict) else f"#{index}"
        try:
            with decoded_by_schema():
                rules.append(msgspec.convert(raw, type=Rule))
        except RuleDefinitionError as exc:
            issues.extend(exc.issues)
        except msgspec.ValidationError as exc:
            cause = exc.__cause__
            if isinstance(cause, RuleDefinitionError):
                issues.extend(cause.issues)
                continue
            shaped = raw_shape_issues(str(name), raw)
            if shaped:
                issues.extend(shaped)
            else:
                path, message = _msgspec_problem(exc)
                issues.append(RuleIssue(rule=str(name), path=path, message=message))
    issues.extend(duplicate_name_issues(rules))
    if issues:
        raise RuleDefinitionError(issues)
    return rules


def duplicate_name_issues(rules: Sequence[Rule]) -> list[RuleIssue]:
    """Issues for rule names used more than once."""
    seen: set[str] = set()
    issues = []
    for rule in rules:
        if rule.name in seen:
            issues.append(
                RuleIssue(
                    rule=rule.name,
                    path="name",
                    message="is used by another rule too",
                    hint="rule names are unique",
                )
            )
        seen.add(rule.name)
    return issues


def _msgspec_problem(exc: msgspec.ValidationError) -> tuple[str, str]:
    """(path, message) of msgspec's error: ``when.threshold``, ``expected `int`...``."""
    reason, _, path = str(exc).partition(" - at `$")
    return path.rstrip("`").lstrip("."), reason[:1].lower() + reason[1:]
