"""Decoding the body of ``POST /api/events`` into events, all or nothing.

The body is one event (a JSON object) or a batch (a JSON array); each may be a native
Interlock event or a CloudEvents 1.0 structured event (detected by ``specversion``).
The content types ``application/cloudevents+json`` (one) and
``application/cloudevents-batch+json`` (a batch) require CloudEvents. An event without
``source`` gets ``source="api"``.

A batch is decoded whole before anything is published: one invalid event rejects the
batch, and :class:`IngestError` names its position and field.

The common case (well-formed native events) is one typed msgspec decode of the raw
bytes; only a body that fails it is decoded again, item by item, for a precise error.
Either way the wire contract's limits (:mod:`interlock.sdk.limits`: payload depth,
string sizes) are checked, and anything the decoders raise — invalid UTF-8, nesting too
deep for the decoder itself — is an :class:`IngestError`, never an exception of its own.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from interlock.sdk.codec import decode_event
from interlock.sdk.errors import EventValidationError, InterlockError
from interlock.sdk.event import Event
from interlock.sdk.limits import MAX_STRING_LENGTH, check_payload, is_flat, payload_needs_walk

__all__ = [
    "API_SOURCE",
    "CLOUDEVENTS",
    "CLOUDEVENTS_BATCH",
    "IngestError",
    "decode_body",
]

API_SOURCE: Final = "api"
"""The ``source`` of events posted without one."""
CLOUDEVENTS: Final = "application/cloudevents+json"
CLOUDEVENTS_BATCH: Final = "application/cloudevents-batch+json"


class _ApiEvent(Event, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An :class:`Event` whose ``source`` defaults to ``"api"``.

    Decoded in one pass and validated once (replacing the source afterwards would
    validate every event a second time).
    """

    source: str = API_SOURCE


_batch_decoder = msgspec.json.Decoder(list[_ApiEvent])
_one_decoder = msgspec.json.Decoder(_ApiEvent)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_UNDECODABLE = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)


class IngestError(InterlockError, ValueError):
    """The body, or one event of it, is not acceptable; nothing was published.

    Attributes:
        index: The position of the bad event in the batch (``None``: the body as a whole,
            or its only event).
        field: The offending field inside that event (``""``: the event as a whole).
        reason: What is wrong.
    """

    def __init__(self, index: int | None, field: str, reason: str) -> None:
        self.index = index
        self.field = field
        self.reason = reason
        problem = f"{field} {reason}" if field else reason
        super().__init__(f"event [{index}]: {problem}" if index is not None else problem)


def _with_source(event: Event) -> Event:
    return event if event.source else msgspec.structs.replace(event, source=API_SOURCE)


def decode_body(body: bytes, content_type: str = "application/json") -> list[Event]:
    """The events of a request body.

    Raises:
        IngestError: the body is empty, not JSON, not an object or array of objects, an
            empty array, or holds an invalid event (its index and field are named).
    """
    if not body.strip():
        raise IngestError(None, "", "the body is empty: send an event object or an array")
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in (CLOUDEVENTS, CLOUDEVENTS_BATCH):
        fast = _fast(body)
        if fast is not None:
            return fast
    try:
        document = _any_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise IngestError(None, "", f"the body is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise IngestError(
            None,
            "",
            f"the body is not valid JSON: a string holds bytes that are not UTF-8 "
            f"({exc.reason} at byte {exc.start})",
        ) from None
    except RecursionError:
        raise IngestError(None, "", "the body nests objects and arrays too deeply") from None
    if media == CLOUDEVENTS and not isinstance(document, dict):
        raise IngestError(None, "", f"{CLOUDEVENTS} takes one CloudEvent (a JSON object)")
    if media == CLOUDEVENTS_BATCH and not isinstance(document, list):
        raise IngestError(None, "", f"{CLOUDEVENTS_BATCH} takes a JSON array of CloudEvents")
    batch = isinstance(document, list)
    items: list[Any] = document if batch else [document]
    if not isinstance(document, dict | list):
        raise IngestError(
            None, "", f"the body must be a JSON object or array, not {_kind(document)}"
        )
    if not items:
        raise IngestError(None, "", "the batch is empty: send at least one event")
    cloudevents_only = media in (CLOUDEVENTS, CLOUDEVENTS_BATCH)
    events = []
    for index, item in enumerate(items):
        position = index if batch else None
        try:
            events.append(_decode_item(item, cloudevents_only=cloudevents_only))
        except EventValidationError as exc:
            raise IngestError(position, exc.field, exc.reason) from None
        except RecursionError:
            raise IngestError(position, "", "nests objects and arrays too deeply") from None
    return events


def _fast(body: bytes) -> list[Event] | None:
    """Native events decoded in one pass, or ``None`` to take the careful path.

    Raises:
        IngestError: an event breaks a limit of the wire contract (payload depth, sizes).
    """
    batch = body.lstrip()[:1] == b"["
    try:
        events = _batch_decoder.decode(body) if batch else [_one_decoder.decode(body)]
    except _UNDECODABLE:
        return None
    if not events:
        return None
    if payload_needs_walk(body):  # the body as a whole might: look at each payload
        long_strings = len(body) > MAX_STRING_LENGTH
        for index, event in enumerate(events):
            if not long_strings and is_flat(event.payload):
                continue
            try:
                check_payload(event.payload)
            except EventValidationError as exc:
                raise IngestError(index if batch else None, exc.field, exc.reason) from None
    if all(event.source for event in events):
        return list(events)
    return [_with_source(event) for event in events]


def _decode_item(item: Any, *, cloudevents_only: bool) -> Event:
    if not isinstance(item, dict):
        raise EventValidationError("", f"must be a JSON object, not {_kind(item)}")
    if "specversion" not in item:
        if cloudevents_only:
            raise EventValidationError("specversion", "is required in a CloudEvent")
        if "source" not in item:
            item = {**item, "source": API_SOURCE}
    # The SDK's decoder reads both forms and checks the wire contract's limits.
    return _with_source(decode_event(_encoder.encode(item)))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
    }.get(type(value), type(value).__name__)
