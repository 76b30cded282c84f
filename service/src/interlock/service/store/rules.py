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
from interlock.service.store.errors import InvalidRecord, NotFound, RuleUnreadable
from interlock.service.store.records import RuleChange, RuleRecord, RuleVersion, UnreadableRule

__all__ = ["Rules"]

_CHUNK = 500
"""Rules per statement batch (SQLite takes at most 32,766 parameters per statement)."""


class Rules:
    """Rules and their versions."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def apply(self, rule: Rule) -> RuleChange:
        """Store ``rule`` as the current version of its name, unless it is unchanged."""
        (change,) = await self.apply_all([rule])
        return change

    async def apply_all(self, rules: Iterable[Rule]) -> list[RuleChange]:
        """Apply several rules in one transaction: all are stored, or none.

        Raises:
            InvalidRecord: two of the rules have one name.

        A handful of statements per chunk of rules, whatever their number (12,000 rules
        applied at once read their current digests in a few queries, not one each).
        """
        rules = list(rules)
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise InvalidRecord("rule", rule.name, "name", "is given twice in one apply")
            seen.add(rule.name)
        documents = [dump_rules([rule]).decode() for rule in rules]
        digests = [hashlib.sha256(document.encode()).hexdigest() for document in documents]
        changes: list[RuleChange] = []
        async with self._db.transaction() as connection:
            for start in range(0, len(rules), _CHUNK):
                end = start + _CHUNK
                changes += await self._apply_chunk(
                    connection, rules[start:end], documents[start:end], digests[start:end]
                )
        return changes

    async def _apply_chunk(
        self,
        connection: AsyncConnection,
        rules: builtins.list[Rule],
        documents: builtins.list[str],
        digests: builtins.list[str],
    ) -> builtins.list[RuleChange]:
        now = self._db.now()
        names = [rule.name for rule in rules]
        await connection.execute(
            self._db.insert(t.rules).on_conflict_do_nothing(),
            [
                {"name": name, "current_version": 0, "paused": False, "created_at": now,
                 "updated_at": now}
                for name in names
            ],
        )  # fmt: skip
        # Serialize concurrent applies of these rules (row locks; SQLite's write lock).
        locked = sa.select(t.rules).where(t.rules.c.name.in_(names)).with_for_update()
        current = {row.name: row for row in (await connection.execute(locked))}
        stored = sa.select(t.rule_versions.c.rule, t.rule_versions.c.digest).join(
            t.rules,
            sa.and_(
                t.rules.c.name == t.rule_versions.c.rule,
                t.rules.c.current_version == t.rule_versions.c.version,
            ),
        )
        digest_of = {
            row.rule: row.digest
            for row in await connection.execute(stored.where(t.rule_versions.c.rule.in_(names)))
        }
        versions: builtins.list[dict[str, Any]] = []
        changes: builtins.list[RuleChange] = []
        for rule, document, digest in zip(rules, documents, digests, strict=True):
            row = current[rule.name]
            if row.current_version and digest_of.get(rule.name) == digest:
                record = RuleRecord(
                    name=rule.name, version=row.current_version, paused=row.paused, rule=rule,
                    created_at=row.created_at, updated_at=row.updated_at,
                )  # fmt: skip
                changes.append(RuleChange(record=record, change="unchanged"))
                continue
            version = row.current_version + 1
            versions.append(
                {"rule": rule.name, "version": version, "document": document, "digest": digest,
                 "created_at": now}
            )  # fmt: skip
            record = RuleRecord(
                name=rule.name, version=version, paused=row.paused, rule=rule,
                created_at=row.created_at, updated_at=now,
            )  # fmt: skip
            changes.append(
                RuleChange(record=record, change="created" if version == 1 else "updated")
            )
        if versions:
            await connection.execute(sa.insert(t.rule_versions), versions)
            await connection.execute(
                sa.update(t.rules)
                .where(t.rules.c.name == sa.bindparam("b_name"))
                .values(current_version=sa.bindparam("b_version"), updated_at=now),
                [{"b_name": item["rule"], "b_version": item["version"]} for item in versions],
            )
        return changes

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

    async def current(self, names: Iterable[str]) -> dict[str, RuleRecord | UnreadableRule]:
        """The stored rules of these names at their current version (absent ones left out).

        A few queries whatever the number of names (a plan of 12,000 rules asks once).
        """
        wanted = builtins.list(dict.fromkeys(names))
        found: dict[str, RuleRecord | UnreadableRule] = {}
        async with self._db.transaction() as connection:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                rows = await connection.execute(_current().where(t.rules.c.name.in_(chunk)))
                for row in rows:
                    try:
                        found[row.name] = _record(row)
                    except RuleUnreadable as exc:
                        found[row.name] = _unreadable(row, exc.problem)
        return found

    async def states(self) -> dict[str, tuple[int, bool]]:
        """Every stored rule's current version and paused flag, by name (one light query).

        What a replica compares with its engine to find the rules that changed elsewhere
        (:meth:`~interlock.service.pipeline.rule_host.RuleHost.refresh`).
        """
        query = sa.select(t.rules.c.name, t.rules.c.current_version, t.rules.c.paused)
        async with self._db.transaction() as connection:
            rows = (await connection.execute(query)).all()
        return {row.name: (row.current_version, bool(row.paused)) for row in rows}

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
