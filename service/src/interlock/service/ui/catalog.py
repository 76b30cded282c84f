"""The stored rules as the UI reads them: decoded once, reused for two seconds.

Pages list a thousand rules; decoding their stored definitions on every render would
cost more than rendering them. :class:`RuleCatalog` keeps the last read for ``ttl``
seconds (a rule applied through the API shows up on the pages that long later at most).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Final

from litestar import Request

from interlock.rules.rule import Rule
from interlock.rules.triggers import AbsenceTrigger
from interlock.service.context import Services
from interlock.service.store import RuleRecord, UnreadableRule

__all__ = ["CATALOG_STATE", "CatalogEntry", "RuleCatalog", "catalog_of", "trigger_kind"]

CATALOG_STATE: Final = "interlock_ui_catalog"


def trigger_kind(rule: Rule) -> str:
    """The trigger's kind as rules name it (``event``, ``absence``, ``compound``, ...)."""
    config = getattr(type(rule.when), "__struct_config__", None)
    tag = getattr(config, "tag", None)
    return str(tag) if tag else type(rule.when).__name__


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A stored rule and what pages ask of it often."""

    record: RuleRecord
    kind: str
    absence: bool

    @property
    def rule(self) -> Rule:
        """Its definition."""
        return self.record.rule


class RuleCatalog:
    """The stored rules, reread at most every ``ttl`` seconds."""

    def __init__(self, services: Services, *, ttl: float = 2.0) -> None:
        self._services = services
        self._ttl = ttl
        self._until = 0.0
        self._entries: dict[str, CatalogEntry] = {}
        self._unreadable: list[UnreadableRule] = []
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() < self._until:
                return
            records, unreadable = await self._services.store.rules.list_all()
            entries = {}
            for record in records:
                kind = trigger_kind(record.rule)
                entries[record.name] = CatalogEntry(
                    record=record, kind=kind, absence=isinstance(record.rule.when, AbsenceTrigger)
                )
            self._entries, self._unreadable = entries, list(unreadable)
            self._until = time.monotonic() + self._ttl

    async def entries(self) -> dict[str, CatalogEntry]:
        """Every readable stored rule, by name."""
        await self._refresh()
        return self._entries

    async def unreadable(self) -> list[UnreadableRule]:
        """Stored rules whose definition does not read as a rule any more."""
        await self._refresh()
        return self._unreadable

    def forget(self) -> None:
        """Reread at the next question (after a change made through the UI)."""
        self._until = 0.0


def catalog_of(request: Request[Any, Any, Any]) -> RuleCatalog:
    """The application's :class:`RuleCatalog`."""
    catalog: RuleCatalog = request.app.state[CATALOG_STATE]
    return catalog
