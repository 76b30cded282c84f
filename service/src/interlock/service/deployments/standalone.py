"""What a worker started by ``interlock worker`` runs on: :func:`standalone_services`.

A standalone worker opens the database the settings name and publishes its runs'
events to the NATS servers they name. It has no rule engine: its ``Services.rules``
refuses rule changes (a worker never makes them).

The embedded NATS of ``interlock server`` is a child process of the server whose URL is
known only once it runs, so with ``nats_url = "embedded"`` (the default) a worker cannot
find it: give the URL the server prints (``INTERLOCK_NATS_URL`` or ``--nats-url``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from interlock.rules.clock import Clock, SystemClock
from interlock.rules.engine.trigger_state import WindowView
from interlock.rules.rule import Rule
from interlock.sdk import Publisher, PublisherConfig
from interlock.sdk.errors import ConfigurationError
from interlock.sdk.vocabulary import SOURCE
from interlock.service.context import RuleStatus, Services
from interlock.service.metrics import Metrics
from interlock.service.settings import Settings
from interlock.service.store import RuleChange, RuleRecord, Store

__all__ = ["NoRules", "standalone_services"]


class NoRules:
    """The ``RuleControl`` of a process without a rule engine: every change is refused."""

    def _refuse(self) -> ConfigurationError:
        return ConfigurationError(
            "rules", "this process (a worker) has no rule engine; change rules through the API"
        )

    async def apply(self, rules: Sequence[Rule]) -> list[RuleChange]:
        """Refused."""
        raise self._refuse()

    async def set_paused(self, name: str, paused: bool) -> RuleRecord:
        """Refused."""
        raise self._refuse()

    async def delete(self, name: str) -> None:
        """Refused."""
        raise self._refuse()

    def status(self, name: str) -> RuleStatus:
        """Nothing is loaded here."""
        return RuleStatus(name=name, loaded=False, enabled=False, next_due=None, next_deadlines=[])

    def broken(self) -> dict[str, str]:
        """Nothing is loaded here, so nothing is broken."""
        return {}

    def windows(self, name: str | None = None) -> list[WindowView]:
        """Nothing is loaded here, so no window is watched."""
        return []


@asynccontextmanager
async def standalone_services(
    settings: Settings, *, name: str, clock: Clock | None = None
) -> AsyncIterator[Services]:
    """Services for a worker process: the settings' database (migrated) and NATS.

    Raises:
        ConfigurationError: ``nats_url`` is ``embedded`` (see the module docstring).
        StoreError: the database cannot be opened or migrated.
    """
    if settings.nats_embedded:
        raise ConfigurationError(
            "nats_url",
            "is 'embedded', which a separate worker cannot reach: give the NATS URL that "
            "`interlock server` printed (--nats-url or INTERLOCK_NATS_URL)",
        )
    clock = clock or SystemClock()
    store = Store.from_settings(settings, clock=clock)
    try:
        await store.migrate()
        publisher = Publisher(
            PublisherConfig(
                nats=settings.nats_options(name=f"interlock-worker-{name}"),
                source=SOURCE,
                spool_dir=settings.data_dir / "worker-spool" / name,
            )
        )
        await publisher.connect()
        try:
            yield Services(
                settings=settings,
                store=store,
                publisher=publisher,
                clock=clock,
                metrics=Metrics(),
                rules=NoRules(),
            )
        finally:
            await publisher.close()
    finally:
        await store.close()
