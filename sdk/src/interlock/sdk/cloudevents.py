"""CloudEvents 1.0 (structured JSON) to and from :class:`~interlock.sdk.Event`.

The mapping (``DESIGN.md``, "Wire contract"):

==================  =======================
CloudEvents         Interlock event
==================  =======================
``type``            ``event``
``id``              ``id``
``time``            ``occurred``
``source``          ``source``
``subject``         ``resource.id``
``data``            ``payload``
==================  =======================

Nothing is dropped on the way in: ``datacontenttype``, ``dataschema`` and any extension
attributes are kept under ``payload["cloudevents"]``; ``data`` that is not a JSON object
is kept as ``payload["data"]`` (``data_base64`` as ``payload["data_base64"]``). Resource
labels and related resources, which CloudEvents has no attribute for, travel as the
extension attributes ``interlocklabels`` and ``interlockrelated`` (JSON strings), so an
event survives the round trip Event → CloudEvent → Event unchanged.

A CloudEvent without ``subject`` is about its ``source``: ``resource.id`` is the source.
Without ``time``, ``occurred`` is the time it was read. A CloudEvent ``id`` that is not a
UUID is mapped to a stable UUID5 of (source, id), so a re-delivery keeps its identity;
the original id is kept as ``payload["cloudevents"]["id"]``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import msgspec

from interlock.sdk.compat import fromisoformat
from interlock.sdk.errors import EventValidationError
from interlock.sdk.event import Event, check_event_name, utc_now

__all__ = ["CLOUDEVENTS_KEY", "from_cloudevent", "to_cloudevent"]

CLOUDEVENTS_KEY = "cloudevents"
"""Payload key that keeps CloudEvents attributes Interlock has no field for."""

_LABELS_EXT = "interlocklabels"
_RELATED_EXT = "interlockrelated"
_CORE = frozenset({"specversion", "id", "source", "type", "time", "subject", "data"})
_KEPT = ("datacontenttype", "dataschema")
_NAMESPACE = uuid.UUID("5b0b3b8e-6f0e-4c55-9d55-0f6f3c2e7a10")
_extension_decoder = msgspec.json.Decoder()


def to_cloudevent(event: Event) -> dict[str, Any]:
    """Return ``event`` as a CloudEvents 1.0 structured-mode JSON object."""
    payload = dict(event.payload)
    kept = payload.pop(CLOUDEVENTS_KEY, None)
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(event.id),
        "source": event.source or "sdk",
        "type": event.event,
        "time": event.occurred.isoformat(),
        "subject": event.resource_id,
        "datacontenttype": "application/json",
    }
    if isinstance(kept, dict):
        original_id = kept.get("id")
        if isinstance(original_id, str):
            document["id"] = original_id
        document.update({key: kept[key] for key in _KEPT if key in kept})
        document.update(kept.get("extensions", {}))
    labels = {key: value for key, value in event.resource.items() if key != "id"}
    if labels:
        document[_LABELS_EXT] = json.dumps(labels, sort_keys=True)
    if event.related:
        document[_RELATED_EXT] = json.dumps(event.related)
    if set(payload) == {"data_base64"}:
        document["data_base64"] = payload["data_base64"]
    elif set(payload) == {"data"} and not isinstance(payload["data"], dict):
        document["data"] = payload["data"]
    else:
        document["data"] = payload
    return document


def _require_string(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise EventValidationError(name, "is required (a non-empty string) in a CloudEvent")
    return value


def _decode_extension(document: dict[str, Any], name: str) -> Any:
    value = document[name]
    if not isinstance(value, (str, bytes)):
        raise EventValidationError(name, f"must be a JSON string, not {type(value).__name__}")
    try:
        # msgspec, as for the event itself: it refuses what json.loads lets through
        # (lone surrogates, NaN) and nesting past the interpreter's recursion limit.
        return _extension_decoder.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise EventValidationError(name, f"must be a JSON string: {exc}") from exc


def _occurred(document: dict[str, Any]) -> datetime:
    if "time" not in document:
        return utc_now()
    try:
        occurred = fromisoformat(str(document["time"]))
    except ValueError as exc:
        raise EventValidationError("time", "is not an RFC 3339 timestamp") from exc
    if occurred.tzinfo is None:
        raise EventValidationError("time", "must carry a UTC offset (RFC 3339)")
    return occurred


def _payload(document: dict[str, Any], original_id: str | None) -> dict[str, Any]:
    data = document.get("data")
    if "data_base64" in document:
        payload: dict[str, Any] = {"data_base64": document["data_base64"]}
    elif isinstance(data, dict):
        payload = dict(data)
    elif "data" in document:
        payload = {"data": data}
    else:
        payload = {}
    kept: dict[str, Any] = {
        key: document[key] for key in _KEPT if key in document and document[key] is not None
    }
    if kept.get("datacontenttype") == "application/json":
        del kept["datacontenttype"]
    extensions = {
        key: value
        for key, value in document.items()
        if key not in _CORE
        and key not in _KEPT
        and key not in (_LABELS_EXT, _RELATED_EXT, "data_base64")
    }
    if extensions:
        kept["extensions"] = extensions
    if original_id is not None:
        kept["id"] = original_id
    if kept:
        payload[CLOUDEVENTS_KEY] = kept
    return payload


def from_cloudevent(document: dict[str, Any]) -> Event:
    """Return the event a CloudEvents 1.0 structured-mode JSON object describes.

    Raises:
        EventValidationError: a required CloudEvents attribute is missing or invalid;
            the field is named in CloudEvents terms (``type``, ``time``, ``subject``).
    """
    if document.get("specversion") != "1.0":
        raise EventValidationError(
            "specversion", f"must be '1.0', not {document.get('specversion')!r}"
        )
    ce_id = _require_string(document, "id")
    source = _require_string(document, "source")
    name = check_event_name(_require_string(document, "type"), field="type")
    subject = document.get("subject", source)
    if not isinstance(subject, str) or not subject:
        raise EventValidationError("subject", "must be a non-empty string")

    occurred = _occurred(document)

    try:
        event_id = uuid.UUID(ce_id)
        original_id = None
    except ValueError:
        event_id = uuid.uuid5(_NAMESPACE, f"{source}\x00{ce_id}")
        original_id = ce_id

    payload = _payload(document, original_id)

    resource = {"id": subject}
    if _LABELS_EXT in document:
        labels = _decode_extension(document, _LABELS_EXT)
        resource = {**labels, "id": subject} if isinstance(labels, dict) else resource
    related = _decode_extension(document, _RELATED_EXT) if _RELATED_EXT in document else []
    return Event(
        id=event_id,
        occurred=occurred,
        event=name,
        resource=resource,
        related=related,
        payload=payload,
        source=source,
    )
