"""Interlock's event SDK: the wire contract and a publisher that never loses an event.

Everything a producer needs::

    from interlock.sdk import Event, Publisher, emit

    emit("db.table.updated", "warehouse.sales", payload={"rows": 1200})   # sync code

    async with Publisher() as publisher:                                   # async code
        await publisher.publish(publisher.event("s3.object.created", "s3://landing/a.csv"))
"""

from interlock.sdk.cloudevents import from_cloudevent, to_cloudevent
from interlock.sdk.codec import decode_event, decode_events, encode_event
from interlock.sdk.config import NatsOptions, PublisherConfig
from interlock.sdk.connection import connect
from interlock.sdk.errors import (
    BusError,
    ConfigurationError,
    EventValidationError,
    InterlockError,
    SpoolError,
    SpoolFullError,
)
from interlock.sdk.event import Event
from interlock.sdk.publisher import Publisher, PublishResult, Refusal
from interlock.sdk.streams import StreamLimits, ensure_streams
from interlock.sdk.subjects import DEAD_STREAM, EVENTS_STREAM, subject_filter, subject_for
from interlock.sdk.sync import SyncPublisher, emit

__all__ = [
    "DEAD_STREAM",
    "EVENTS_STREAM",
    "BusError",
    "ConfigurationError",
    "Event",
    "EventValidationError",
    "InterlockError",
    "NatsOptions",
    "PublishResult",
    "Publisher",
    "PublisherConfig",
    "Refusal",
    "SpoolError",
    "SpoolFullError",
    "StreamLimits",
    "SyncPublisher",
    "connect",
    "decode_event",
    "decode_events",
    "emit",
    "encode_event",
    "ensure_streams",
    "from_cloudevent",
    "subject_filter",
    "subject_for",
    "to_cloudevent",
]
