"""What applying rules would change: created, updated (with a field-level diff), unchanged.

Used by ``POST /api/rules`` (``?dry_run=true`` returns the plan without applying it) and
by ``interlock rules apply --dry-run``. Rules are compared by their stored JSON form, so
a rule equal to the stored one is ``unchanged`` however it was written.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from interlock.rules.rule import Rule
from interlock.service.store import Store, UnreadableRule

__all__ = ["FieldChange", "PlannedChange", "diff", "plan", "rule_document"]


class FieldChange(msgspec.Struct, frozen=True, kw_only=True):
    """One field that differs between the stored rule and the new one."""

    path: str
    """Dotted path inside the rule (``when.window.within``, ``then[1].url``)."""
    before: Any = None
    """The stored value (absent: the field is new)."""
    after: Any = None
    """The new value (absent: the field is gone)."""


class PlannedChange(msgspec.Struct, frozen=True, kw_only=True):
    """What applying one rule does."""

    name: str
    change: Literal["created", "updated", "unchanged"]
    version: int | None
    """The stored version now (``None`` for a new rule)."""
    diff: list[FieldChange] = msgspec.field(default_factory=list)


def rule_document(rule: Rule) -> dict[str, Any]:
    """The rule as JSON-compatible data (its stored form)."""
    document: dict[str, Any] = msgspec.to_builtins(rule)
    return document


def diff(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """Every leaf that differs between two JSON-compatible values, by path."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[FieldChange] = []
        for key in sorted(before.keys() | after.keys()):
            where = f"{path}.{key}" if path else str(key)
            if key not in before:
                changes.append(FieldChange(path=where, after=after[key]))
            elif key not in after:
                changes.append(FieldChange(path=where, before=before[key]))
            else:
                changes.extend(diff(before[key], after[key], where))
        return changes
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        changes = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            changes.extend(diff(old, new, f"{path}[{index}]"))
        return changes
    if before == after and type(before) is type(after):
        return []
    return [FieldChange(path=path or "(rule)", before=before, after=after)]


async def plan(store: Store, rules: list[Rule]) -> list[PlannedChange]:
    """What applying ``rules`` would do to the stored rules (nothing is changed)."""
    stored = await store.rules.current(rule.name for rule in rules)
    planned = []
    for rule in rules:
        record = stored.get(rule.name)
        if record is None:
            planned.append(PlannedChange(name=rule.name, change="created", version=None))
            continue
        before = (
            record.document if isinstance(record, UnreadableRule) else rule_document(record.rule)
        )
        changes = diff(before, rule_document(rule))
        planned.append(
            PlannedChange(
                name=rule.name,
                change="updated" if changes else "unchanged",
                version=record.version,
                diff=changes,
            )
        )
    return planned
