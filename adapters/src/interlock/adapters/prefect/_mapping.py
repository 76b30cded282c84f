"""A Prefect event → an Interlock event: names, labels, related resources, ids.

Prefect's events already have Interlock's shape (``event``, ``resource``, ``related``,
``payload``, ``occurred``, ``id``); what differs is spelling:

- **Name**: Prefect's name is kept (``prefect.flow-run.Completed`` stays
  ``prefect.flow-run.Completed``: hyphens and capitals are valid Interlock tokens). A
  character outside ``[A-Za-z0-9_-]`` becomes ``_``, empty tokens are dropped, and
  tokens past the 16th are joined to it with ``_``.
- **Labels**: rules address labels as dotted paths (``resource.state_name``), so a
  label key may not hold a dot. ``prefect.resource.id`` becomes ``id``,
  ``prefect.resource.role`` (of a related resource) ``role``; other keys lose a leading
  ``prefect.resource.`` or ``prefect.``, and every character outside ``[A-Za-z0-9_]``
  becomes ``_``: ``prefect.resource.name`` → ``name``, ``prefect.state-name`` →
  ``state_name``, ``prefect.work-pool.type`` → ``work_pool_type``, ``team`` → ``team``.
  Two keys that map to the same label (``a.b`` and ``a_b``) are told apart
  deterministically: a key that is already a valid label keeps it, the others are taken
  in sorted order, and one whose label is taken gets ``_`` plus 8 hex digits of a hash
  of its original key (``a.b`` → ``a_b_<hash>``).
- **Id**: Prefect's event id (a UUID) is the Interlock event id, so the same Prefect
  event, replayed after a reconnect, is the same Interlock event (JetStream drops it).
- ``occurred`` and ``payload`` are kept as they are.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from interlock.sdk.compat import fromisoformat
from interlock.sdk.event import MAX_EVENT_NAME_TOKENS, Event

__all__ = ["event_name", "label_key", "resource_labels", "to_interlock"]

_NOT_TOKEN = re.compile(r"[^A-Za-z0-9_-]")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_]")
_RESERVED = {"prefect.resource.id": "id", "prefect.resource.role": "role"}
_PREFIXES = ("prefect.resource.", "prefect.")


def event_name(name: str) -> str:
    """The Interlock event name for Prefect's event ``name`` (see the module docstring)."""
    tokens = [_NOT_TOKEN.sub("_", token) for token in name.split(".") if token]
    if not tokens:
        return "prefect.unnamed"
    if len(tokens) > MAX_EVENT_NAME_TOKENS:
        head = tokens[: MAX_EVENT_NAME_TOKENS - 1]
        tokens = [*head, "_".join(tokens[MAX_EVENT_NAME_TOKENS - 1 :])]
    return ".".join(tokens)


def label_key(key: str) -> str:
    """The Interlock label key for the Prefect label ``key`` (before collisions)."""
    if key in _RESERVED:
        return _RESERVED[key]
    for prefix in _PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            key = key[len(prefix) :]
            break
    return _NOT_LABEL.sub("_", key) or "_"


def resource_labels(resource: dict[str, Any], *, where: str) -> dict[str, str]:
    """A Prefect resource (``prefect.resource.id`` plus labels) as an Interlock one.

    Raises:
        ValueError: the resource has no ``prefect.resource.id`` (``where`` says which).
    """
    if not resource.get("prefect.resource.id"):
        raise ValueError(f"{where} has no 'prefect.resource.id'")
    mapped: dict[str, str] = {}
    # Reserved keys first, so "id" and "role" always come from Prefect's own keys; then
    # keys that need no change, so a valid label is never renamed.
    ordered = sorted(resource, key=lambda key: (key not in _RESERVED, label_key(key) != key, key))
    for key in ordered:
        target = label_key(key)
        if target in mapped:
            digest = hashlib.sha256(key.encode()).hexdigest()[:8]
            target = f"{target}_{digest}"
        value = resource[key]
        mapped[target] = value if isinstance(value, str) else str(value)
    return mapped


def to_interlock(prefect_event: dict[str, Any]) -> Event:
    """The Interlock event for one Prefect event (a ``model_dump(mode="json")`` dict).

    Raises:
        ValueError: the Prefect event lacks a field Interlock needs, or a field has the
            wrong type (an :class:`~interlock.sdk.EventValidationError` is a ValueError).
    """
    name = prefect_event.get("event")
    if not isinstance(name, str):
        raise ValueError("the Prefect event has no 'event' name")
    resource = prefect_event.get("resource")
    if not isinstance(resource, dict):
        raise ValueError(f"Prefect event {name!r} has no 'resource' object")
    related: list[dict[str, str]] = []
    for index, item in enumerate(prefect_event.get("related") or []):
        if not isinstance(item, dict):
            raise ValueError(f"Prefect event {name!r}: related[{index}] is not an object")
        labels = resource_labels(item, where=f"Prefect event {name!r} related[{index}]")
        labels.setdefault("role", "related")
        related.append(labels)
    payload = prefect_event.get("payload") or {}
    if not isinstance(payload, dict):
        raise ValueError(f"Prefect event {name!r}: payload is not an object")
    try:
        event_id = uuid.UUID(str(prefect_event["id"]))
        occurred = fromisoformat(str(prefect_event["occurred"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"Prefect event {name!r}: bad or missing id/occurred ({exc})") from exc
    return Event(
        id=event_id,
        occurred=occurred,
        event=event_name(name),
        resource=resource_labels(resource, where=f"Prefect event {name!r} resource"),
        related=related,
        payload=payload,
    )
