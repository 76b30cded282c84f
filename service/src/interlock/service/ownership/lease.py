"""A lease in a NATS KV bucket: which replica owns a piece of work, and its epoch.

The bucket has a TTL (``max_age``): an entry not written again within it expires, and
the key is free. :meth:`KvLease.try_acquire` takes a free key with ``create()`` (refused
while another holder's entry lives); :meth:`KvLease.renew` writes it again with
``update(last=revision)``, refused once anyone else wrote the key; :meth:`KvLease.release`
deletes it with ``delete(last=revision)`` so a standby need not wait for the TTL.

The **epoch** is the revision ``create()`` returned: revisions of a bucket only grow, and
a key is created again only after the last holder's entry expired or was deleted, so a
newer holder always has a greater epoch than every older one. The epoch is what fences
the older holder's writes (:mod:`interlock.service.store.epochs`).

A holder cannot see its entry expire on the server, so it judges for itself:
:meth:`KvLease.expired` is true once ``ttl`` passed since the *start* of its last
successful renewal (the server stored the renewal later than that, so it expires later
too). Time comes from ``monotonic``, injected.

Errors::

    InterlockError
    └── LeaseLost      another holder wrote the key (this one's renewal was refused)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from interlock.sdk.errors import InterlockError

__all__ = ["KvLease", "LeaseLost", "open_lease_bucket"]

logger = logging.getLogger(__name__)


class LeaseLost(InterlockError):
    """The lease ``key`` was written by another holder: this one no longer holds it.

    Attributes:
        key: The lease's key.
        holder: This replica's name.
        epoch: The epoch it held.
    """

    def __init__(self, key: str, holder: str, epoch: int) -> None:
        self.key = key
        self.holder = holder
        self.epoch = epoch
        super().__init__(
            f"lease {key!r} of {holder} (epoch {epoch}) was taken over by another replica"
        )


async def open_lease_bucket(
    js: JetStreamContext, bucket: str, ttl: timedelta, *, replicas: int = 1
) -> KeyValue:
    """The lease bucket ``bucket``, created with ``ttl`` (and ``replicas``) if missing.

    An existing bucket is used as it is: its TTL is the one leases get (a replica with
    another ``lease_ttl`` logs a warning).
    """
    try:
        kv = await js.key_value(bucket)
    except BucketNotFoundError:
        config = KeyValueConfig(
            bucket=bucket,
            description="Interlock leases: which replica owns the engine and the schedules",
            history=1,
            ttl=ttl.total_seconds(),
            storage=StorageType.FILE,
            replicas=replicas,
        )
        logger.info("creating the lease bucket %s (TTL %s)", bucket, ttl)
        return await js.create_key_value(config)
    status = await kv.status()
    if status.ttl is not None and abs(status.ttl - ttl.total_seconds()) > 0.001:
        logger.warning(
            "the lease bucket %s has a TTL of %.3f s, not the %.3f s configured: leases "
            "last %.3f s (every replica uses the bucket's)",
            bucket,
            status.ttl,
            ttl.total_seconds(),
            status.ttl,
        )
    return kv


class KvLease:
    """One lease: key ``key`` of the bucket ``kv``, held by ``holder``.

    Args:
        kv: The lease bucket (its TTL is the lease's).
        key: The lease's key (``engine``, ``scheduler``).
        holder: This replica's name, written as the entry's value.
        ttl: The bucket's TTL.
        monotonic: Seconds from a monotonic clock (injected in tests).
    """

    def __init__(
        self,
        kv: KeyValue,
        key: str,
        holder: str,
        *,
        ttl: timedelta,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kv = kv
        self.key = key
        self.holder = holder
        self.ttl = ttl.total_seconds()
        self._monotonic = monotonic
        self.epoch: int | None = None
        """The revision that created this tenure; ``None`` while not held."""
        self._revision = 0
        self._renewed_at = 0.0

    @property
    def held(self) -> bool:
        """Whether this replica believes it holds the lease (see :meth:`expired`)."""
        return self.epoch is not None and not self.expired()

    async def try_acquire(self) -> int | None:
        """Take the lease if it is free; return the new epoch, or ``None`` (held)."""
        started = self._monotonic()
        try:
            revision = await self.kv.create(self.key, self.holder.encode())
        except KeyWrongLastSequenceError:
            return None
        self.epoch = self._revision = revision
        self._renewed_at = started
        return revision

    async def renew(self) -> None:
        """Write the entry again, so it lives another TTL.

        Raises:
            LeaseLost: another holder wrote the key (or this one never held it).
            nats.errors.Error: NATS did not answer (the lease may still be held: retry
                until :meth:`expired`).
        """
        if self.epoch is None:
            raise LeaseLost(self.key, self.holder, 0)
        started = self._monotonic()
        try:
            revision = await self.kv.update(self.key, self.holder.encode(), last=self._revision)
        except KeyWrongLastSequenceError:
            epoch, self.epoch = self.epoch, None
            raise LeaseLost(self.key, self.holder, epoch) from None
        self._revision = revision
        self._renewed_at = started

    def expired(self) -> bool:
        """Whether the TTL passed since the start of the last successful renewal."""
        return self._monotonic() - self._renewed_at >= self.ttl

    def remaining(self) -> float:
        """Seconds until :meth:`expired` (0 when it is)."""
        return max(0.0, self.ttl - (self._monotonic() - self._renewed_at))

    async def release(self) -> None:
        """Delete the entry (if still this holder's), so a standby takes over now."""
        if self.epoch is None:
            return
        self.epoch = None
        try:
            await self.kv.delete(self.key, last=self._revision)
        except NatsError as exc:  # taken over or expired already, or NATS is away
            logger.info("lease %s: not released (%s); it expires by itself", self.key, exc)

    async def current_holder(self) -> str | None:
        """Who holds the lease now, by the bucket (``None``: nobody)."""
        try:
            entry = await self.kv.get(self.key)
        except KeyNotFoundError:  # KeyDeletedError is one too
            return None
        return entry.value.decode(errors="replace") if entry.value else None
