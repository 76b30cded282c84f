"""Running work only while holding its lease: stand by, take over, renew, step down.

A :class:`Campaign` drives one :class:`~.lease.KvLease` and one :class:`Role` (the work
the lease guards: the engine, the scheduled work)::

    standby ── lease free: try_acquire() ──▶ role.start(epoch) ──▶ owner
       ▲                                                             │ renew every second
       └──── role.stop() ◀── lease lost, renewals failing until it expired,
                             or the role's work ended (fenced by the store) ◀──┘

The owner renews every third of the TTL, at least every second, so the lease outlives
an outage of the bucket (a leader election of its RAFT group after a node died) of up to
TTL - 1 s. A standby tries to take the lease every ``poll`` seconds, so it takes over at
most ``ttl + poll`` after its owner's last renewal. An owner that cannot reach NATS keeps its
role until its lease has :meth:`~.lease.KvLease.expired` by its own clock, then stops
it: by then another replica may hold the lease, and the store refuses this one's writes
anyway (:mod:`interlock.service.store.epochs`). On a clean stop the owner stops its role
first, then releases the lease, so a standby takes over at once and finds the last
checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal, Protocol

from nats.errors import Error as NatsError

from interlock.service.ownership.lease import KvLease, LeaseLost

__all__ = ["Campaign", "Role", "State"]

logger = logging.getLogger(__name__)

_RENEW_AT_MOST_EVERY = 1.0
"""Seconds between renewals at most: the lease outlives an outage of the bucket (a
leader election of its RAFT group, ~5-7 s on a 3-node cluster here) up to TTL - 1 s."""
_WATCH = 0.25
"""Seconds between looks at whether the owner's work ended by itself."""

State = Literal["starting", "standby", "owner", "stopped"]


class Role(Protocol):
    """Work that runs on one replica at a time, under a lease."""

    async def start(self, epoch: int) -> None:
        """Start the work as the owner of lease epoch ``epoch``."""
        ...

    async def stop(self) -> None:
        """Stop the work (the lease was lost, or the service stops)."""
        ...

    def ended(self) -> str | None:
        """Why the work ended by itself (fenced, failed), or ``None`` while it runs."""
        ...


class Campaign:
    """Holds ``lease`` and runs ``role`` while it does, until :meth:`stop`.

    Args:
        lease: The lease.
        role: The work it guards.
        poll: Seconds between a standby's attempts to take the lease.
    """

    def __init__(self, lease: KvLease, role: Role, *, poll: float) -> None:
        self.lease = lease
        self.role = role
        self.poll = poll
        self.renew_every = min(lease.ttl / 3, _RENEW_AT_MOST_EVERY)
        self.state: State = "starting"
        self.epoch: int | None = None
        self.tenures = 0
        """How many times this replica became the owner."""
        self._stopping = asyncio.Event()
        self.changed = asyncio.Event()
        """Set at every change of :attr:`state` (tests wait on it)."""

    def _become(self, state: State) -> None:
        self.state = state
        self.changed.set()

    async def run(self) -> None:
        """Campaign until :meth:`stop`; never raises for NATS or the role's failures."""
        try:
            while not self._stopping.is_set():
                epoch = await self._try_acquire()
                if epoch is None:
                    if self.state != "standby":
                        logger.info("%s lease: standing by", self.lease.key)
                    self._become("standby")
                    await self._sleep(self.poll)
                    continue
                if not await self._start(epoch):
                    continue
                reason = await self._hold()
                await self._step_down(reason)
        finally:
            if self.epoch is not None:
                await self._step_down("the service stops")
            self._become("stopped")

    async def stop(self) -> None:
        """Stop the role (if owner), release the lease and end :meth:`run`."""
        self._stopping.set()

    async def _try_acquire(self) -> int | None:
        try:
            return await self.lease.try_acquire()
        except (NatsError, OSError) as exc:
            logger.warning("%s lease: cannot reach NATS (%s); retrying", self.lease.key, exc)
            return None

    async def _start(self, epoch: int) -> bool:
        key = self.lease.key
        logger.info("%s lease: taken by %s, epoch %d", key, self.lease.holder, epoch)
        self.epoch = epoch
        try:
            lost = await self._start_renewing(epoch)
        except Exception:  # the loop's boundary: a role that cannot start is logged
            logger.exception("%s lease: the work did not start; releasing the lease", key)
            await self._step_down("its work did not start")
            await self._sleep(self.poll)
            return False
        if lost is not None:
            logger.warning("%s lease: lost while its work started: %s", key, lost)
            await self._step_down(lost)
            return False
        self.tenures += 1
        self._become("owner")
        return True

    async def _start_renewing(self, epoch: int) -> str | None:
        """Start the role, renewing the lease meanwhile; why it was lost, if it was.

        A start can take longer than the TTL: reading the checkpoint waits for the row
        lock of a paused owner's open transaction, loading thousands of rules takes
        seconds. Without renewals the lease would expire under it and go to another
        replica while this one still starts.
        """
        starting = asyncio.ensure_future(self.role.start(epoch))
        try:
            while True:
                done, _ = await asyncio.wait({starting}, timeout=self.renew_every)
                if done:
                    starting.result()  # raises what the start raised
                    return None
                try:
                    await self.lease.renew()
                except LeaseLost as exc:
                    return str(exc)
                except (NatsError, OSError) as exc:
                    if self.lease.expired():
                        return f"it could not be renewed within its TTL ({exc})"
        finally:
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await starting

    async def _hold(self) -> str:
        """Renew until the lease is lost or the work ends; return why it stopped."""
        key = self.lease.key
        failing = 0
        while not self._stopping.is_set():
            await self._sleep(_WATCH)  # the work is watched more often than renewed
            if self._stopping.is_set():
                return "the service stops"
            ended = self.role.ended()
            if ended is not None:
                return ended
            if self.lease.ttl - self.lease.remaining() < self.renew_every:
                continue
            try:
                await self.lease.renew()
            except LeaseLost as exc:
                return str(exc)
            except (NatsError, OSError) as exc:
                if self.lease.expired():
                    return f"it could not be renewed within its TTL ({exc})"
                failing += 1
                if failing == 1:  # one line per outage, not one per attempt
                    logger.warning(
                        "%s lease: renewal failed (%s); retrying for %.1f s more",
                        key,
                        exc,
                        self.lease.remaining(),
                    )
            else:
                if failing:
                    logger.info("%s lease: renewed again after %d failures", key, failing)
                failing = 0
        return "the service stops"

    async def _step_down(self, reason: str) -> None:
        key, epoch = self.lease.key, self.epoch
        if self.state == "owner":
            level = logging.INFO if self._stopping.is_set() else logging.WARNING
            logger.log(level, "%s lease: epoch %s ends: %s; stopping its work", key, epoch, reason)
        try:
            await self.role.stop()
        except Exception:  # the loop's boundary: stopping must go on to the release
            logger.exception("%s lease: stopping its work failed", key)
        await self.lease.release()
        self.epoch = None
        if not self._stopping.is_set():
            self._become("standby")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
