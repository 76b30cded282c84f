"""What the service's components share: the :class:`Services` handed to each of them.

The pipeline, the action dispatcher, the workers and the API are built around one
``Services`` object. It holds the long-lived resources (settings, store, the service's
own publisher, the clock, metrics) and :class:`RuleControl`, through which anything that
changes rules (the API, the ``pause_rule`` action, the CLI through the API) reaches the
one engine the pipeline owns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import msgspec

from interlock.rules.clock import Clock
from interlock.rules.engine.trigger_state import WindowView
from interlock.rules.rule import Rule
from interlock.sdk.publisher import Publisher
from interlock.service.adapter_status import AdapterBoard
from interlock.service.metrics import Metrics
from interlock.service.settings import Settings
from interlock.service.store import RuleChange, RuleRecord, Store

__all__ = ["RuleControl", "RuleStatus", "Services"]


class RuleStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine knows about a loaded rule right now."""

    name: str
    loaded: bool
    """Whether the engine holds it (a paused rule is loaded but disabled)."""
    enabled: bool
    next_due: datetime | None
    """When the engine can next judge one of its windows (event time), if ever."""
    next_deadlines: list[datetime]
    """Its next calendar deadlines (absences on a calendar), up to three."""
    broken: str | None = None
    """Why the rule is quarantined (it does not run), or ``None``."""


class RuleControl(Protocol):
    """Changes to rules, applied to the store and to the running engine together."""

    async def apply(self, rules: Sequence[Rule]) -> list[RuleChange]:
        """Store and load (or replace) rules; unchanged rules keep their state."""
        ...

    async def set_paused(self, name: str, paused: bool) -> RuleRecord:
        """Pause (disable) or resume a rule.

        Raises:
            NotFound: no such rule.
        """
        ...

    async def delete(self, name: str) -> None:
        """Unload a rule and delete it from the store.

        Raises:
            NotFound: no such rule.
        """
        ...

    def status(self, name: str) -> RuleStatus:
        """The engine's view of a rule (not loaded: ``loaded=False``)."""
        ...

    def broken(self) -> dict[str, str]:
        """Every quarantined rule and why."""
        ...

    def windows(self, name: str | None = None) -> list[WindowView]:
        """The windows the rules watch now (``name``: one rule's): pending and missed."""
        ...


@dataclass(frozen=True, slots=True)
class Services:
    """The long-lived resources of one running service.

    Attributes:
        settings: The service's settings.
        store: The database.
        publisher: Publishes the service's own events (``interlock.*``) and the
            events the API receives; connected for the service's lifetime.
        clock: Wall-clock time (a ``FakeClock`` in tests).
        metrics: Prometheus metrics of this service.
        rules: Rule changes reaching the store and the engine.
        adapters: The adapters the service polls, and how their polls go.
        replica: This replica's name and leases (owner or standby of each), when the
            service runs as one of several replicas (:mod:`interlock.service.ownership`).
    """

    settings: Settings
    store: Store
    publisher: Publisher
    clock: Clock
    metrics: Metrics
    rules: RuleControl
    adapters: AdapterBoard = field(default_factory=AdapterBoard)
    replica: Callable[[], dict[str, Any] | None] | None = None
