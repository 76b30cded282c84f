"""Events encoded once for publishing: each one's wire JSON, subject and message id.

:func:`encode_batch` turns valid events into what the
:class:`~interlock.sdk.Publisher` sends, checking what only the encoded form shows: the
limits of :mod:`interlock.sdk.limits` (the event's size, the payload's depth and
strings, no NUL character) and NATS' ``max_payload``. It does per batch what
:func:`~interlock.sdk.codec.encode_event` does per event, with the work per event in C
where it can be: msgspec encodes each event, and the ids become their canonical text
(the ``Nats-Msg-Id``) in one call. An error names the event's position in the batch
(:attr:`~interlock.sdk.errors.EventValidationError.index`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from interlock.sdk.codec import encode_event
from interlock.sdk.errors import EventValidationError
from interlock.sdk.event import Event
from interlock.sdk.limits import (
    MAX_EVENT_BYTES,
    MAX_PAYLOAD_DEPTH,
    MAX_STRING_LENGTH,
    check_encoded_size,
    check_no_nul,
    check_payload,
    payload_needs_walk,
)
from interlock.sdk.subjects import EVENTS_SUBJECT_PREFIX

__all__ = ["EncodedEvent", "encode_batch"]

EncodedEvent = tuple[str, bytes, str]
"""One event as it is published: ``(subject, wire JSON, message id)``. The subject is
``interlock.events.<event name>``; the message id the event id's canonical text, which
JetStream de-duplicates by (``Nats-Msg-Id``)."""

_encode = msgspec.json.Encoder().encode
_FEW_BRACKETS: Final = MAX_PAYLOAD_DEPTH + 2
"""Brackets an encoded event holds at most when its payload cannot nest too deep (the
event's object and its resource besides the payload's)."""


def encode_batch(
    events: Sequence[Event], *, source: str = "", max_payload: int = 0
) -> list[EncodedEvent]:
    """Encode ``events`` for publishing, in order.

    Args:
        events: Valid events (constructed or decoded, so checked by :class:`Event`).
        source: Given to the events that have none (empty: left as they are).
        max_payload: The largest message the NATS server takes (0: not known).

    Raises:
        EventValidationError: an event cannot be encoded, breaks a limit of the wire
            contract or is larger than ``max_payload``; its ``index`` says which.
    """
    if source and not all(event.source for event in events):
        events = [
            event if event.source else msgspec.structs.replace(event, source=source)
            for event in events
        ]
    try:
        datas = [_encode(event) for event in events]
    except (TypeError, ValueError, OverflowError, RecursionError):
        datas = [_encoded_one(index, event) for index, event in enumerate(events)]
    # Most events plainly keep every limit: small, no escape, few brackets (C searches).
    # The others are checked as encode_event checks one.
    short = min(MAX_EVENT_BYTES, MAX_STRING_LENGTH, max_payload or MAX_EVENT_BYTES)
    for index, data in enumerate(datas):
        if (
            len(data) > short
            or b"\\" in data
            or data.count(b"{") + data.count(b"[") > _FEW_BRACKETS
        ):
            _check(index, events[index], data, max_payload)
    ids: list[str] = msgspec.to_builtins([event.id for event in events])
    subjects = [EVENTS_SUBJECT_PREFIX + event.event for event in events]
    return list(zip(subjects, datas, ids))


def _encoded_one(index: int, event: Event) -> bytes:
    """One event's wire JSON, or the error naming it (the batch's encoding failed)."""
    try:
        return encode_event(event)
    except EventValidationError as exc:
        raise exc.at(index) from None


def _check(index: int, event: Event, data: bytes, max_payload: int) -> None:
    """Check one encoded event against the limits; an error names its ``index``."""
    try:
        check_encoded_size(len(data), "payload")
        if max_payload and len(data) > max_payload:
            raise EventValidationError(
                "payload",
                f"makes the event {len(data):,} bytes; the NATS server accepts at most "
                f"{max_payload:,} (max_payload): store large data elsewhere and send a "
                "reference",
            )
        if payload_needs_walk(data, event.payload):
            check_payload(event.payload)
        check_no_nul(data, event)
    except EventValidationError as exc:
        raise exc.at(index) from None
