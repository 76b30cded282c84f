"""Stored rules: each apply that changes a rule adds a version; the rule points at one.

A version holds the rule's document as :func:`~interlock.rules.rule.dump_rules` writes it
(``dump_rules([rule])``, deterministic), so equal rules have equal digests and applying
an unchanged rule adds nothing. Pausing is the service's switch, apart from the rule's own
``enabled``: an action or a person pauses a rule without changing its definition.

A stored definition that no longer reads as a rule (valid when applied, refused by this
version) never stops the others from loading: :meth:`Rules.list_all` returns it apart,
as an :class:`~interlock.service.store.records.UnreadableRule`; :meth:`Rules.list` leaves
it out; :meth:`Rules.get` raises :class:`~interlock.service.store.errors.RuleUnreadable`.
Applying a fixed version replaces it as usual.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Iterable
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from interlock.rules.errors import RuleDefinitionError
from interlock.rules.rule import Rule, dump_rules, load_rules
from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.errors import NotFound, RuleUnreadable
from interlock.service.store.records import RuleChange, RuleRecord, RuleVersion, UnreadableRule

__all__ = ["Rules"]


class Rules:
    """Rules and their versions."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def apply(self, rule: Rule) -> RuleChange:
        """Store ``rule`` as the current version of its name, unless it is unchanged."""
        (change,) = await self.apply_all([rule])
        return change

    async def apply_all(self, rules: Iterable[Rule]) -> list[RuleChange]:
        """Apply several rules in one transaction: all are stored, or none."""
        async with self._db.transaction() as connection:
            return [await self._apply(connection, rule) for rule in rules]

    async def get(self, name: str) -> RuleRecord:
        """The rule called ``name`` at its current version.

        Raises:
            NotFound: there is no such rule.
        """
        async with self._db.transaction() as connection:
            rows = await connection.execute(_current().where(t.rules.c.name == name))
            row = rows.one_or_none()
        if row is None:
            raise NotFound("rule", name)
        return _record(row)

    async def versions(self, name: str) -> list[RuleVersion]:
        """Every version of the rule called ``name``, oldest first.

        Raises:
            NotFound: there is no such rule.
        """
        query = (
            sa.select(t.rule_versions)
            .where(t.rule_versions.c.rule == name)
            .order_by(t.rule_versions.c.version)
        )
        async with self._db.transaction() as connection:
            rows = (await connection.execute(query)).all()
        if not rows:
            raise NotFound("rule", name)
        return [
            RuleVersion(
                name=row.rule,
                version=row.version,
                rule=_decode(row.document, row.rule),
                digest=row.digest,
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def list(self) -> list[RuleRecord]:
        """Every rule at its current version, by name (unreadable ones left out)."""
        records, _ = await self.list_all()
        return records

    async def list_all(self) -> tuple[builtins.list[RuleRecord], builtins.list[UnreadableRule]]:
        """Every rule at its current version, by name: the readable, and the unreadable."""
        async with self._db.transaction() as connection:
            rows = (await connection.execute(_current().order_by(t.rules.c.name))).all()
        records: builtins.list[RuleRecord] = []
        unreadable: builtins.list[UnreadableRule] = []
        for row in rows:
            try:
                records.append(_record(row))
            except RuleUnreadable as exc:
                unreadable.append(_unreadable(row, exc.problem))
        return records, unreadable

    async def set_paused(self, name: str, paused: bool) -> RuleRecord:
        """Pause or resume the rule called ``name``.

        Raises:
            NotFound: there is no such rule.
        """
        update = (
            sa.update(t.rules)
            .where(t.rules.c.name == name)
            .values(paused=paused, updated_at=self._db.now())
        )
        async with self._db.transaction() as connection:
            if (await connection.execute(update)).rowcount == 0:
                raise NotFound("rule", name)
            row = (await connection.execute(_current().where(t.rules.c.name == name))).one()
        return _record(row)

    async def delete(self, name: str) -> None:
        """Delete the rule called ``name`` and its versions (its firings stay).

        Raises:
            NotFound: there is no such rule.
        """
        async with self._db.transaction() as connection:
            await connection.execute(
                sa.delete(t.rule_versions).where(t.rule_versions.c.rule == name)
            )
            deleted = await connection.execute(sa.delete(t.rules).where(t.rules.c.name == name))
            if deleted.rowcount == 0:
                raise NotFound("rule", name)

    async def _apply(self, connection: AsyncConnection, rule: Rule) -> RuleChange:
        document = dump_rules([rule]).decode()
        digest = hashlib.sha256(document.encode()).hexdigest()
        now = self._db.now()
        new = {"name": rule.name, "current_version": 0, "paused": False}
        await connection.execute(
            self._db.insert(t.rules)
            .values(**new, created_at=now, updated_at=now)
            .on_conflict_do_nothing()
        )
        # Serialize concurrent applies of one rule (the row lock; SQLite's write lock).
        locked = sa.select(t.rules).where(t.rules.c.name == rule.name).with_for_update()
        current = (await connection.execute(locked)).one()
        if current.current_version:
            same = sa.select(t.rule_versions.c.digest).where(
                t.rule_versions.c.rule == rule.name,
                t.rule_versions.c.version == current.current_version,
            )
            if (await connection.execute(same)).scalar_one() == digest:
                query = _current().where(t.rules.c.name == rule.name)
                row = (await connection.execute(query)).one()
                return RuleChange(record=_record(row), change="unchanged")
        version = current.current_version + 1
        await connection.execute(
            sa.insert(t.rule_versions).values(
                rule=rule.name, version=version, document=document, digest=digest, created_at=now
            )
        )
        await connection.execute(
            sa.update(t.rules)
            .where(t.rules.c.name == rule.name)
            .values(current_version=version, updated_at=now)
        )
        record = RuleRecord(
            name=rule.name,
            version=version,
            paused=current.paused,
            rule=rule,
            created_at=current.created_at,
            updated_at=now,
        )
        return RuleChange(record=record, change="created" if version == 1 else "updated")


def _current() -> sa.Select[tuple[str, int, bool, object, object, str]]:
    return sa.select(
        t.rules.c.name,
        t.rules.c.current_version,
        t.rules.c.paused,
        t.rules.c.created_at,
        t.rules.c.updated_at,
        t.rule_versions.c.document,
    ).join(
        t.rule_versions,
        sa.and_(
            t.rule_versions.c.rule == t.rules.c.name,
            t.rule_versions.c.version == t.rules.c.current_version,
        ),
    )


def _record(row: sa.Row[tuple[str, int, bool, object, object, str]]) -> RuleRecord:
    return RuleRecord(
        name=row.name,
        version=row.current_version,
        paused=row.paused,
        rule=_decode(row.document, row.name),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _decode(document: str, name: str = "?") -> Rule:
    try:
        (rule,) = load_rules(document)
    except RuleDefinitionError as exc:
        problems = "; ".join(
            f"{issue.path}: {issue.message}" if issue.path else issue.message
            for issue in exc.issues
        )
        raise RuleUnreadable(name, problems) from exc
    return rule


def _unreadable(row: sa.Row[Any], problem: str) -> UnreadableRule:
    try:
        document = msgspec.json.decode(row.document)
        entry = document["rules"][0] if isinstance(document, dict) else {}
    except (msgspec.DecodeError, KeyError, IndexError, TypeError):
        entry = {}
    if not isinstance(entry, dict):
        entry = {}
    owner = entry.get("owner")
    return UnreadableRule(
        name=row.name,
        version=row.current_version,
        paused=row.paused,
        document=entry,
        problem=problem,
        owner=owner if isinstance(owner, str) and owner else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
