"""Provisioning the JetStream streams of the wire contract, idempotently.

``INTERLOCK_EVENTS`` captures ``interlock.events.>`` (file storage, limits from
:class:`StreamLimits`, a duplicate window of at least two minutes so a retried publish is
stored once, and ``allow_batched`` on nats-server 2.14+ so publishers may send fast
batches, see :mod:`.fast_batch`). ``INTERLOCK_DEAD`` captures ``interlock.dead.>``:
messages that are not valid events, each with a header saying why. Running
:func:`ensure_streams` again updates an existing stream's limits instead of failing.

Several ``interlock server`` replicas (issue 19) also share a KV bucket of leases
(``INTERLOCK_LEASES``): :func:`ensure_lease_bucket` creates it with its TTL and
replicas, or changes an existing one's replicas, so ``interlock events init-streams
--replicas 3`` sets up a 3-node cluster in one command.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import msgspec
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.errors import BucketNotFoundError, NotFoundError

from interlock.sdk.errors import ConfigurationError
from interlock.sdk.fast_batch import server_takes_fast_batches
from interlock.sdk.subjects import (
    DEAD_STREAM,
    DEAD_SUBJECT_PREFIX,
    EVENTS_STREAM,
    EVENTS_SUBJECT_PREFIX,
)

__all__ = [
    "LEASE_BUCKET",
    "MIN_DUPLICATE_WINDOW",
    "StreamLimits",
    "ensure_lease_bucket",
    "ensure_streams",
]

logger = logging.getLogger(__name__)

MIN_DUPLICATE_WINDOW = timedelta(minutes=2)
LEASE_BUCKET = "INTERLOCK_LEASES"
"""The default lease bucket of ``interlock server`` replicas (``replicas.lease_bucket``)."""


class StreamLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Retention of the event streams. ``None`` means unlimited."""

    max_age: timedelta | None = timedelta(days=7)
    max_bytes: int | None = None
    duplicate_window: timedelta = timedelta(minutes=10)
    """Publishes with an id seen within this window are stored once (at least 2 min)."""
    dead_max_age: timedelta | None = timedelta(days=30)
    replicas: int = 1

    def __post_init__(self) -> None:
        if self.duplicate_window < MIN_DUPLICATE_WINDOW:
            raise ConfigurationError(
                "streams.duplicate_window",
                f"{self.duplicate_window} is shorter than the minimum of 2 minutes",
            )
        if self.max_age is not None and self.max_age < self.duplicate_window:
            raise ConfigurationError(
                "streams.max_age", "must be at least as long as the duplicate window"
            )
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ConfigurationError("streams.max_bytes", "must be positive or None")


def _events_config(limits: StreamLimits, *, batched: bool) -> StreamConfig:
    return StreamConfig(
        name=EVENTS_STREAM,
        description="Interlock events (wire contract: interlock.events.<event>)",
        subjects=[EVENTS_SUBJECT_PREFIX + ">"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=limits.max_age.total_seconds() if limits.max_age else None,
        max_bytes=limits.max_bytes if limits.max_bytes is not None else -1,
        duplicate_window=limits.duplicate_window.total_seconds(),
        num_replicas=limits.replicas,
        allow_batched=True if batched else None,
    )


def _dead_config(limits: StreamLimits) -> StreamConfig:
    return StreamConfig(
        name=DEAD_STREAM,
        description="Messages that were not valid Interlock events, with the reason",
        subjects=[DEAD_SUBJECT_PREFIX + ">"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=limits.dead_max_age.total_seconds() if limits.dead_max_age else None,
        duplicate_window=MIN_DUPLICATE_WINDOW.total_seconds(),
        num_replicas=limits.replicas,
    )


async def _ensure(js: JetStreamContext, config: StreamConfig, *, update: bool) -> StreamInfo:
    assert config.name is not None
    try:
        current = await js.stream_info(config.name)
    except NotFoundError:
        logger.info("creating stream %s", config.name)
        return await js.add_stream(config)
    if not update:
        return current
    wanted = config.as_dict()
    have = current.config.as_dict()
    if all(have.get(key) == value for key, value in wanted.items()):
        return current
    logger.info("updating stream %s limits", config.name)
    return await js.update_stream(config)


async def ensure_streams(
    js: JetStreamContext, limits: StreamLimits | None = None, *, update: bool = True
) -> tuple[StreamInfo, StreamInfo]:
    """Create or update ``INTERLOCK_EVENTS`` and ``INTERLOCK_DEAD``; return their info.

    ``update=False`` creates a missing stream and leaves an existing one as it is: the
    service starts that way, so the replicas, retention and limits an operator gave a
    stream (``interlock events init-streams``) are not reset at every start.
    """
    limits = limits or StreamLimits()
    batched = server_takes_fast_batches(js._nc)  # nats-py keeps the connection private
    events = await _ensure(js, _events_config(limits, batched=batched), update=update)
    dead = await _ensure(js, _dead_config(limits), update=update)
    return events, dead


async def ensure_lease_bucket(
    js: JetStreamContext, bucket: str, ttl: timedelta, *, replicas: int
) -> StreamInfo:
    """Create the lease bucket ``bucket`` (TTL ``ttl``), or give an existing one ``replicas``.

    An existing bucket keeps its TTL (the replicas' leases last as long as it says); only
    its replicas change. Returns the info of its stream (``KV_<bucket>``).
    """
    try:
        await js.key_value(bucket)
    except BucketNotFoundError:
        logger.info("creating the lease bucket %s (TTL %s, %d replicas)", bucket, ttl, replicas)
        await js.create_key_value(
            KeyValueConfig(
                bucket=bucket,
                description="Interlock leases: which replica owns the engine and the schedules",
                history=1,
                ttl=ttl.total_seconds(),
                storage=StorageType.FILE,
                replicas=replicas,
            )
        )
        return await js.stream_info(f"KV_{bucket}")
    info = await js.stream_info(f"KV_{bucket}")
    if info.config.num_replicas == replicas:
        return info
    logger.info("changing the replicas of the lease bucket %s to %d", bucket, replicas)
    return await js.update_stream(dataclasses.replace(info.config, num_replicas=replicas))
