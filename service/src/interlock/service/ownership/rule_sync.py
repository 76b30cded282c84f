"""Rule changes made through any replica reach the engine's owner (issue 19).

A change (``POST /api/rules``, pause, resume, delete, the ``pause_rule`` action) is made
on whichever replica received it: written to the store first
(:class:`~interlock.service.pipeline.rule_host.RuleHost`), then **announced** by writing
the key ``rules.revision`` of the lease bucket again (:class:`RuleAnnouncer`): every
write gives the key a new revision. The owner of the engine watches that key
(:class:`RuleWatch`) and, at each new revision, loads what differs between the store and
its engine (:meth:`RuleHost.refresh
<interlock.service.pipeline.rule_host.RuleHost.refresh>`: one light query of every
rule's version and paused flag, then only the changed rules). Unchanged rules keep their
state.

The announcement is only a hint: an announcement lost (NATS unreachable at that moment,
a watcher reset by a leader election of the bucket) is made up for by a **reconcile**
every :data:`RECONCILE_EVERY` seconds, the same comparison run without being asked. So
a change reaches the owner within a round trip through KV as a rule, and within
:data:`RECONCILE_EVERY` seconds at worst.

The key lives in the lease bucket, whose entries expire after the lease TTL: that is
fine for an announcement (a watcher sees each write as it happens; an expired one has
been seen or is covered by the reconcile), and it needs no bucket of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.kv import KeyValue

from interlock.service.pipeline.rule_host import RuleHost

__all__ = ["RECONCILE_EVERY", "REVISION_KEY", "RuleAnnouncer", "RuleWatch"]

logger = logging.getLogger(__name__)

REVISION_KEY = "rules.revision"
"""The key of the lease bucket written after each committed rule change."""
RECONCILE_EVERY = 10.0
"""Seconds between reconciles of the owner's engine with the store, announced or not."""
_ANNOUNCE_TIMEOUT = 2.0


class RuleAnnouncer:
    """Announces committed rule changes: writes :data:`REVISION_KEY` again.

    Args:
        kv: The lease bucket.
        holder: This replica's name (the entry's value: who made the last change).
    """

    def __init__(self, kv: KeyValue, holder: str) -> None:
        self.kv = kv
        self.holder = holder

    async def announce(self) -> None:
        """Write the key; a failure is logged (the owner's reconcile makes up for it)."""
        try:
            await asyncio.wait_for(
                self.kv.put(REVISION_KEY, self.holder.encode()), _ANNOUNCE_TIMEOUT
            )
        except (NatsError, OSError, TimeoutError) as exc:
            logger.warning(
                "a rule change is stored but could not be announced (%s): the engine's "
                "owner loads it at its next reconcile, within %.0f s",
                exc or type(exc).__name__,
                RECONCILE_EVERY,
            )


class RuleWatch:
    """Keeps the owner's engine in step with the store, from :meth:`run` to :meth:`stop`.

    Args:
        kv: The lease bucket.
        host: The owner's rule host.
        every: Seconds between reconciles without an announcement.
    """

    def __init__(self, kv: KeyValue, host: RuleHost, *, every: float = RECONCILE_EVERY) -> None:
        self.kv = kv
        self.host = host
        self.every = every
        self.reconciles = 0
        """How many reconciles ran (tests and logs)."""
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Reconcile at once, then at each announcement and every :attr:`every` seconds."""
        watcher: KeyValue.KeyWatcher | None = None
        try:
            while not self._stopping.is_set():
                if watcher is None:
                    watcher = await self._watch()
                await self._reconcile()
                watcher = await self._wait(watcher)
        finally:
            if watcher is not None:
                with contextlib.suppress(Exception):
                    await watcher.stop()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        """End :meth:`run` after its reconcile in hand."""
        self._stopping.set()

    async def _watch(self) -> KeyValue.KeyWatcher | None:
        try:
            return await self.kv.watch(REVISION_KEY)
        except (NatsError, OSError, TimeoutError) as exc:
            logger.warning(
                "cannot watch rule announcements (%s): reconciling every %.0f s", exc, self.every
            )
            return None

    async def _wait(self, watcher: KeyValue.KeyWatcher | None) -> KeyValue.KeyWatcher | None:
        """Wait for an announcement, the reconcile's time or the stop; drain what came."""
        if watcher is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every)
            return None
        stopping = asyncio.ensure_future(self._stopping.wait())
        update = asyncio.ensure_future(
            watcher.updates(timeout=self.every)  # type: ignore[no-untyped-call]
        )
        try:
            await asyncio.wait({stopping, update}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not update.done():
            update.cancel()
            with contextlib.suppress(asyncio.CancelledError, NatsTimeoutError):
                await update
            return watcher
        try:
            update.result()
        except NatsTimeoutError:
            return watcher  # the reconcile's time
        while not watcher._updates.empty():  # coalesce announcements (nats-py's queue)
            watcher._updates.get_nowait()
        return watcher

    async def _reconcile(self) -> None:
        try:
            changed = await self.host.refresh()
        except Exception:  # the loop's boundary: the next reconcile tries again
            logger.exception("reconciling the engine's rules with the store failed")
            return
        self.reconciles += 1
        if changed:
            logger.info(
                "rules: %d changed in the store, loaded into the engine: %s",
                len(changed),
                ", ".join(changed[:10]) + (" ..." if len(changed) > 10 else ""),
            )
