"""The two events the S3 adapters emit, built the same way whichever adapter saw the change.

``s3.object.created`` and ``s3.object.deleted`` are about the resource
``s3://<bucket>/<key>`` (label ``bucket``). Their ids are UUID5s of the object version —
bucket, key and ETag (``"deleted"`` appended for a deletion) — so the poller and the
notification consumer seeing the same upload publish the same id, and JetStream keeps one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interlock.adapters.base import deterministic_id
from interlock.sdk.event import Event

__all__ = ["CREATED", "DELETED", "normalize_etag", "object_created", "object_deleted"]

CREATED = "s3.object.created"
DELETED = "s3.object.deleted"


def normalize_etag(etag: str) -> str:
    """The ETag without the quotes S3's API puts around it (notifications have none)."""
    return etag.strip().strip('"')


def _resource(bucket: str, key: str) -> dict[str, str]:
    return {"id": f"s3://{bucket}/{key}", "bucket": bucket}


def object_created(
    bucket: str, key: str, *, version: str, occurred: datetime, payload: dict[str, Any]
) -> Event:
    """``s3.object.created``; ``version`` is the ETag (or, lacking one, the sequencer)."""
    return Event(
        id=deterministic_id(bucket, key, version),
        occurred=occurred,
        event=CREATED,
        resource=_resource(bucket, key),
        payload={"key": key, **payload},
    )


def object_deleted(
    bucket: str, key: str, *, version: str, occurred: datetime, payload: dict[str, Any]
) -> Event:
    """``s3.object.deleted``; ``version`` is the last ETag known (or the sequencer)."""
    return Event(
        id=deterministic_id(bucket, key, version, "deleted"),
        occurred=occurred,
        event=DELETED,
        resource=_resource(bucket, key),
        payload={"key": key, **payload},
    )
