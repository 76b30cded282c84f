"""Telling people that a rule broke: ``interlock.rule.broken`` and its owner's channel.

A rule is **broken** when the engine cannot run it — its stored definition no longer
reads as a rule (after an upgrade), its state cannot be built, or its evaluation raised
(see :mod:`interlock.rules.engine.engine`). It is quarantined: the other rules go on,
and it does not run until a fixed version is applied. Each time a rule breaks,
:class:`BrokenRuleReporter` publishes ``interlock.rule.broken`` (``resource.id`` = the
rule, the reason in the payload), counts it in ``interlock_rules_broken``, and notifies
the rule's ``owner`` channel if it has one — from background tasks, so reporting never
holds up the pipeline, and failures to report are logged, never raised.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import msgspec

from interlock.sdk.errors import ActionFailed
from interlock.sdk.vocabulary import RULE_BROKEN
from interlock.service.actions import apprise_send
from interlock.service.actions.notify import resolve_url

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["BrokenRule", "BrokenRuleReporter"]

logger = logging.getLogger(__name__)


class BrokenRule(msgspec.Struct, frozen=True, kw_only=True):
    """A rule that was quarantined, and why."""

    name: str
    reason: str
    owner: str | None = None
    version: int | None = None


class BrokenRuleReporter:
    """Publishes and notifies for broken rules, each report in a task of its own."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._tasks: set[asyncio.Task[None]] = set()

    def report(self, broken: BrokenRule) -> None:
        """Report ``broken`` in the background."""
        task = asyncio.create_task(self._report(broken), name=f"rule-broken-{broken.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Wait for the reports under way (tests; a clean stop)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _report(self, broken: BrokenRule) -> None:
        publisher = self.services.publisher
        event = publisher.event(
            RULE_BROKEN,
            broken.name,
            payload={"reason": broken.reason, "version": broken.version, "owner": broken.owner},
        )
        try:
            await publisher.publish(event)
        except Exception:
            logger.exception("publishing %s for rule %s failed", RULE_BROKEN, broken.name)
        if broken.owner:
            await self._notify(broken, broken.owner)

    async def _notify(self, broken: BrokenRule, owner: str) -> None:
        title = f"Interlock: rule {broken.name} is broken and does not run"
        body = (
            f"{broken.reason}\n"
            "The other rules go on. Apply a fixed version of the rule "
            "(`interlock rules apply`) to run it again."
        )
        try:
            url = await resolve_url(self.services, owner, None)
            await apprise_send.send(
                url,
                title=title,
                body=body,
                timeout=self.services.settings.actions.timeout.total_seconds(),
                target=f"channel {owner!r}",
            )
        except ActionFailed as exc:
            logger.warning("telling the owner of broken rule %s failed: %s", broken.name, exc)
        except Exception:
            logger.exception("telling the owner of broken rule %s failed", broken.name)
