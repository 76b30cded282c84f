"""The running engine and the stored rules, kept in step: the service's :class:`RuleControl`.

Rules live in the store (versioned); the engine holds what is loaded. Every change goes
to the store first and then to the engine, so a crash in between leaves the store ahead,
and the next start loads the store's version. A rule runs when it is ``enabled`` in its
definition and not paused by the service.

The engine belongs to the pipeline's task (durable_rules is single-threaded): the host
is used from that event loop only, and engine calls are synchronous, so a rule change
never interleaves with a batch being fed.

**Broken rules.** A stored rule whose definition no longer reads as a rule, or that the
engine cannot build or run, is quarantined: the others load and run, it is listed as
broken with the reason (:meth:`RuleHost.status`), and each breakage is handed once to
``on_broken`` (the service reports it: :mod:`.broken_rules`). Applying a fixed version
clears it.

**Several replicas.** A change made through one replica reaches the engine of another
(the owner of the engine, :mod:`interlock.service.ownership`) through the store: after
each committed change the host calls ``on_changed`` (the replica announces it in NATS
KV), and the owner's :meth:`RuleHost.refresh` loads what differs between the store and
its engine (new, changed, paused, resumed and deleted rules), leaving the others, and
their state, as they are. Changes and refreshes take one lock, so a refresh never lands
between a change's commit and its load into the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import msgspec

from interlock.rules.collector import collector_paused
from interlock.rules.engine.engine import Engine
from interlock.rules.engine.trigger_state import WindowView
from interlock.rules.rule import Rule
from interlock.rules.triggers import AbsenceTrigger, CalendarWindow
from interlock.rules.windows import schedule_for
from interlock.service.context import RuleStatus
from interlock.service.pipeline.broken_rules import BrokenRule
from interlock.service.store import RuleChange, RuleRecord, Store, UnreadableRule
from interlock.service.store.records import action_kind

__all__ = ["RuleHost"]

logger = logging.getLogger(__name__)


def _running(record: RuleRecord) -> Rule:
    """The rule as the engine runs it: disabled while paused."""
    if record.paused and record.rule.enabled:
        return msgspec.structs.replace(record.rule, enabled=False)
    return record.rule


class RuleHost:
    """Applies rule changes to the store and to the engine together."""

    def __init__(self, store: Store, engine: Engine) -> None:
        self.store = store
        self.engine = engine
        self._records: dict[str, RuleRecord] = {}
        self._unreadable: dict[str, UnreadableRule] = {}
        self._pending: list[BrokenRule] = []
        self.on_broken: Callable[[BrokenRule], None] | None = None
        """Called once per rule that breaks (set by the service to report it)."""
        self.on_changed: Callable[[], Awaitable[None]] | None = None
        """Awaited after each committed change (a replica announces it to the others)."""
        self._lock = asyncio.Lock()

    async def load(self) -> list[str]:
        """Load every stored rule into the engine; return the names of those that run.

        Rules whose stored definition cannot be read, or that the engine cannot build,
        are quarantined as broken; the others load.
        """
        with collector_paused():  # 12,000 rules: half the time went to the collector
            records, unreadable = await self.store.rules.list_all()
        self._records = {record.name: record for record in records}
        self._unreadable = {rule.name: rule for rule in unreadable}
        for rule in unreadable:
            logger.error(
                "rule %s is broken and does not run: its stored definition cannot be read "
                "(%s); the other rules load",
                rule.name,
                rule.problem,
            )
            self._pending.append(
                BrokenRule(
                    name=rule.name,
                    reason=f"its stored definition cannot be read: {rule.problem}",
                    owner=rule.owner,
                    version=rule.version,
                )
            )
        self.engine.apply(_running(record) for record in records)
        self.flush_broken()
        broken = self.engine.broken
        return [record.name for record in records if record.name not in broken]

    def flush_broken(self) -> list[BrokenRule]:
        """Hand every rule that broke since the last call to ``on_broken``; return them."""
        for name, reason in self.engine.take_broken():
            record = self._records.get(name)
            self._pending.append(
                BrokenRule(
                    name=name,
                    reason=reason,
                    owner=record.rule.owner if record else None,
                    version=record.version if record else None,
                )
            )
        if self.on_broken is None:
            return []  # kept until someone listens (the service sets on_broken after load)
        flushed, self._pending = self._pending, []
        for broken in flushed:
            self.on_broken(broken)
        return flushed

    def broken(self) -> dict[str, str]:
        """Every quarantined rule and why."""
        found = {
            name: f"its stored definition cannot be read: {rule.problem}"
            for name, rule in self._unreadable.items()
        }
        found.update(self.engine.broken)
        return found

    def windows(self, name: str | None = None) -> list[WindowView]:
        """The windows the engine's rules watch now (``name``: one rule's), for the SLA board.

        Read from the engine on the loop's thread, between batches.
        """
        if name is not None and name not in self._records:
            return []
        return list(self.engine.windows(name))

    def unreadable(self) -> list[UnreadableRule]:
        """Stored rules whose definition cannot be read (quarantined), by name."""
        return sorted(self._unreadable.values(), key=lambda rule: rule.name)

    def action_kinds(self) -> set[str]:
        """The action kinds the loaded rules use (``then`` and ``on_resolved``)."""
        return {
            action_kind(msgspec.to_builtins(action))
            for record in self._records.values()
            for action in (*record.rule.then, *record.rule.on_resolved)
        }

    def rule(self, name: str) -> Rule | None:
        """The stored definition of a loaded rule (actions, owner, ...), if any."""
        record = self._records.get(name)
        return record.rule if record else None

    async def apply(self, rules: Sequence[Rule]) -> list[RuleChange]:
        """Store and load (or replace) rules; unchanged rules keep their state."""
        async with self._lock:
            changes = await self.store.rules.apply_all(rules)
            for change in changes:
                self._records[change.record.name] = change.record
                self._unreadable.pop(change.record.name, None)
                self.engine.put(_running(change.record))
                if change.change != "unchanged":
                    record = change.record
                    logger.info(
                        "rule %s %s (version %d)", record.name, change.change, record.version
                    )
            self.flush_broken()
        if any(change.change != "unchanged" for change in changes):
            await self._announce()
        return changes

    async def set_paused(self, name: str, paused: bool) -> RuleRecord:
        """Pause (disable) or resume a rule.

        Raises:
            NotFound: no such rule.
        """
        async with self._lock:
            record = await self.store.rules.set_paused(name, paused)
            self._records[name] = record
            self.engine.put(_running(record))
            self.flush_broken()
        logger.info("rule %s %s", name, "paused" if paused else "resumed")
        await self._announce()
        return record

    async def delete(self, name: str) -> None:
        """Unload a rule and delete it from the store.

        Raises:
            NotFound: no such rule.
        """
        async with self._lock:
            await self.store.rules.delete(name)
            self._records.pop(name, None)
            self._unreadable.pop(name, None)
            self.engine.remove(name)
        logger.info("rule %s deleted", name)
        await self._announce()

    async def _announce(self) -> None:
        if self.on_changed is not None:
            await self.on_changed()

    async def refresh(self) -> list[str]:
        """Load into the engine what the store holds differently; return those names.

        Compares each stored rule's version and paused flag with the loaded ones: new and
        changed rules are loaded (:meth:`Engine.put <interlock.rules.engine.engine.Engine.put>`
        keeps the state of a rule whose trigger is unchanged), paused and resumed ones
        switched, deleted ones unloaded; the others are not touched.
        """
        async with self._lock:
            stored = await self.store.rules.states()
            known = {name: (r.version, r.paused) for name, r in self._records.items()}
            known.update({name: (r.version, r.paused) for name, r in self._unreadable.items()})
            changed = [name for name, state in stored.items() if known.get(name) != state]
            gone = [name for name in known if name not in stored]
            for name in gone:
                self._records.pop(name, None)
                self._unreadable.pop(name, None)
                self.engine.remove(name)
                logger.info("rule %s deleted (through another replica)", name)
            found = await self.store.rules.current(changed) if changed else {}
            for name, item in found.items():
                if isinstance(item, RuleRecord):
                    self._records[name] = item
                    self._unreadable.pop(name, None)
                    self.engine.put(_running(item))
                    state = "paused" if item.paused else "running"
                    logger.info(
                        "rule %s version %d (%s) loaded: changed through another replica",
                        name,
                        item.version,
                        state,
                    )
                else:
                    self._unreadable[name] = item
                    self._records.pop(name, None)
                    self.engine.remove(name)
                    self._pending.append(
                        BrokenRule(
                            name=name,
                            reason=f"its stored definition cannot be read: {item.problem}",
                            owner=item.owner,
                            version=item.version,
                        )
                    )
            self.flush_broken()
        return [*changed, *gone]

    def status(self, name: str) -> RuleStatus:
        """The engine's view of a rule (not loaded: ``loaded=False``)."""
        record = self._records.get(name)
        if record is None:
            unreadable = self._unreadable.get(name)
            return RuleStatus(
                name=name,
                loaded=False,
                enabled=False,
                next_due=None,
                next_deadlines=[],
                broken=(
                    f"its stored definition cannot be read: {unreadable.problem}"
                    if unreadable is not None
                    else None
                ),
            )
        broken = self.engine.broken_reason(name)
        enabled = record.rule.enabled and not record.paused and broken is None
        deadlines: list[datetime] = []
        trigger = record.rule.when
        if (
            enabled
            and isinstance(trigger, AbsenceTrigger)
            and isinstance(trigger.window, CalendarWindow)
        ):
            schedule = schedule_for(trigger.window)
            deadlines = list(schedule.deadlines_after(self.engine.watermark, 3))
        return RuleStatus(
            name=name,
            loaded=broken is None,
            enabled=enabled,
            next_due=self.engine.due_of(name) if enabled else None,
            next_deadlines=deadlines,
            broken=broken,
        )
