"""Reading S3 event notifications, in the two shapes S3 delivers them to a queue.

- S3's own format (bucket notification → SQS, or → SNS → SQS, wrapped in an SNS
  envelope unless raw delivery is on): ``Records[]``, each with ``eventName``
  (``ObjectCreated:Put``, ``ObjectRemoved:Delete``, ...), ``eventTime`` and
  ``s3.bucket.name`` / ``s3.object.{key,size,eTag,sequencer}``. The key is URL-encoded
  (``red flower.jpg`` arrives as ``red+flower.jpg``) and is decoded here.
- EventBridge (rule → SQS target): ``detail-type`` (``Object Created``,
  ``Object Deleted``), ``time`` and ``detail.bucket.name`` /
  ``detail.object.{key,size,etag,sequencer}``. The key is taken as it is.

``ObjectCreated:*`` / ``Object Created`` become ``s3.object.created``;
``ObjectRemoved:*``, ``LifecycleExpiration:*`` / ``Object Deleted`` become
``s3.object.deleted``. Other notifications (``s3:TestEvent``, restores, tagging,
replication, ...) are understood and produce no event. Anything else raises
:class:`NotificationFormatError`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote_plus

from interlock.adapters.s3._events import normalize_etag, object_created, object_deleted
from interlock.sdk.compat import fromisoformat
from interlock.sdk.errors import EventValidationError
from interlock.sdk.event import Event

__all__ = ["NotificationFormatError", "parse_notification"]

_CREATED_PREFIXES = ("ObjectCreated:",)
_DELETED_PREFIXES = ("ObjectRemoved:", "LifecycleExpiration:")


class NotificationFormatError(ValueError):
    """A queue message that is not an S3 event notification this adapter can read."""


def _field(document: Any, *path: str) -> Any:
    value = document
    for index, name in enumerate(path):
        if not isinstance(value, dict) or name not in value:
            where = ".".join(path[: index + 1])
            raise NotificationFormatError(f"{where} is missing")
        value = value[name]
    return value


def _string(document: Any, *path: str) -> str:
    value = _field(document, *path)
    if not isinstance(value, str) or not value:
        raise NotificationFormatError(f"{'.'.join(path)} must be a non-empty string")
    return value


def _optional_string(mapping: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = mapping.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _size(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        try:
            moment = fromisoformat(value)
        except ValueError:
            pass
        else:
            return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
    raise NotificationFormatError(f"{where} is not a time: {value!r}")


def _event(
    action: str,
    *,
    bucket: str,
    key: str,
    obj: dict[str, Any],
    occurred: datetime,
    reason: str,
    extra: dict[str, Any],
) -> Event:
    etag = _optional_string(obj, "eTag", "etag")
    etag = normalize_etag(etag) if etag else None
    sequencer = _optional_string(obj, "sequencer")
    version = etag or sequencer or occurred.isoformat()
    payload: dict[str, Any] = {"reason": reason}
    size = _size(obj.get("size"))
    for name, value in (("size", size), ("etag", etag), ("sequencer", sequencer), *extra.items()):
        if value is not None:
            payload[name] = value
    build = object_created if action == "created" else object_deleted
    return build(bucket, key, version=version, occurred=occurred, payload=payload)


def _from_record(record: Any, index: int) -> Event | None:
    if not isinstance(record, dict):
        raise NotificationFormatError(f"Records[{index}] is not an object")
    name = _string(record, "eventName").removeprefix("s3:")
    if name.startswith(_CREATED_PREFIXES):
        action = "created"
    elif name.startswith(_DELETED_PREFIXES):
        action = "deleted"
    else:
        return None
    bucket = _string(record, "s3", "bucket", "name")
    key = unquote_plus(_string(record, "s3", "object", "key"))
    obj = _field(record, "s3", "object")
    occurred = _time(_field(record, "eventTime"), "eventTime")
    extra = {"version_id": _optional_string(obj, "versionId")}
    return _event(
        action, bucket=bucket, key=key, obj=obj, occurred=occurred, reason=name, extra=extra
    )


def _from_eventbridge(document: dict[str, Any]) -> Event | None:
    detail_type = _string(document, "detail-type")
    if detail_type == "Object Created":
        action = "created"
    elif detail_type == "Object Deleted":
        action = "deleted"
    else:
        return None
    bucket = _string(document, "detail", "bucket", "name")
    key = _string(document, "detail", "object", "key")
    obj = _field(document, "detail", "object")
    occurred = _time(_field(document, "time"), "time")
    detail = document["detail"]
    reason = _optional_string(detail, "reason") or detail_type
    extra = {
        "version_id": _optional_string(obj, "version-id"),
        "deletion_type": _optional_string(detail, "deletion-type"),
    }
    return _event(
        action, bucket=bucket, key=key, obj=obj, occurred=occurred, reason=reason, extra=extra
    )


def _parse(document: Any) -> list[Event]:
    if not isinstance(document, dict):
        raise NotificationFormatError("the message is not a JSON object")
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        return parse_notification(document["Message"])  # an SNS envelope
    if "Records" in document:
        records = document["Records"]
        if not isinstance(records, list):
            raise NotificationFormatError("Records is not a list")
        found = (_from_record(record, index) for index, record in enumerate(records))
        return [event for event in found if event is not None]
    if document.get("Event") == "s3:TestEvent":
        return []
    if document.get("source") == "aws.s3" and "detail-type" in document:
        event = _from_eventbridge(document)
        return [] if event is None else [event]
    raise NotificationFormatError(
        "neither an S3 event notification (Records) nor an EventBridge S3 event (detail-type)"
    )


def parse_notification(body: str) -> list[Event]:
    """The events of one queue message (none for a test event or an ignored kind).

    Raises:
        NotificationFormatError: the body is not an S3 notification; says what is wrong.
    """
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise NotificationFormatError(f"the message is not JSON ({exc})") from exc
    try:
        return _parse(document)
    except EventValidationError as exc:
        raise NotificationFormatError(f"it makes an invalid event: {exc}") from exc
