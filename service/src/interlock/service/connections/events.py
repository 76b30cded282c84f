"""``interlock.connection.updated``: a connection was created, changed, rotated or removed.

``resource.id`` is the connection's name, ``resource.kind`` its kind; the payload has
``change`` (``created``, ``updated``, ``rotated``, ``removed``), ``fields`` (the names
of the fields given: never a value), ``version``. The event id comes from the name,
version and change, so publishing it again stores it once. Every replica listens for it
and forgets what it cached of the connection (:func:`forget_on_change`), so a rotation
made through one replica is used by the next call on every other.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from interlock.sdk.event import Event
from interlock.sdk.subjects import subject_for
from interlock.sdk.vocabulary import CONNECTION_UPDATED
from interlock.service.store.connections import ConnectionChanged, Connections

if TYPE_CHECKING:
    from nats.aio.client import Client

    from interlock.sdk.publisher import Publisher

__all__ = ["change_event", "forget_on_change", "publish_change"]

logger = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("5b0f8a52-8f3c-4c3b-9d0e-2c6f1f7d2a20")


def change_event(publisher: Publisher, changed: ConnectionChanged) -> Event:
    """The event of one change (no secret: field names only)."""
    return publisher.event(
        CONNECTION_UPDATED,
        changed.name,
        labels={"kind": changed.kind},
        payload={"change": changed.change, "fields": changed.fields, "version": changed.version},
        occurred=changed.at,
        id=uuid.uuid5(_NAMESPACE, f"{changed.name}/{changed.version}/{changed.change}"),
    )


async def publish_change(publisher: Publisher, changed: ConnectionChanged) -> None:
    """Publish the change; a failure is logged (the change itself is stored already)."""
    try:
        await publisher.publish(change_event(publisher, changed))
    except Exception:  # the change is stored; its event is the notice of it
        logger.exception(
            "connection %s changed (%s) but its event could not be published",
            changed.name,
            changed.change,
        )


async def forget_on_change(client: Client, connections: Connections) -> Any:
    """Subscribe ``client`` to connection changes; each one drops the name from the cache.

    Returns the subscription (``await sub.unsubscribe()`` to stop).
    """

    async def forget(message: Any) -> None:
        try:
            name = msgspec.json.decode(message.data).get("resource", {}).get("id")
        except msgspec.DecodeError:
            return
        if isinstance(name, str):
            connections.forget(name)

    return await client.subscribe(subject_for(CONNECTION_UPDATED), cb=forget)
