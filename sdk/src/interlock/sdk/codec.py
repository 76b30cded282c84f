"""Encoding events to wire JSON and decoding wire JSON (native or CloudEvents) to events.

Decoding is strict: unknown fields, wrong types, a timestamp without an offset, a bad
event name, a document breaking a limit of :mod:`interlock.sdk.limits` (its size, the
payload's nesting, a string's length), invalid UTF-8 inside a string, are all
:class:`~interlock.sdk.errors.EventValidationError` naming the field. A document
carrying ``specversion`` is read as a CloudEvents 1.0 structured event. Encoding checks
the same limits, so the SDK never publishes what a reader would refuse.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from interlock.sdk.cloudevents import from_cloudevent
from interlock.sdk.errors import EventValidationError
from interlock.sdk.event import Event
from interlock.sdk.limits import (
    MAX_PAYLOAD_DEPTH,
    check_encoded_size,
    check_no_nul,
    check_payload,
    payload_needs_walk,
)

__all__ = ["decode_event", "decode_events", "encode_event"]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)
_list_decoder = msgspec.json.Decoder(list[Event])
_any_decoder = msgspec.json.Decoder()

_AT_PATH = re.compile(r"^(?P<reason>.*) - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`")
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_INVALID = re.compile(r"^Invalid (?P<what>.+)$")


def encode_event(event: Event) -> bytes:
    """Return the wire JSON of ``event``.

    Raises:
        EventValidationError: the payload holds a value JSON cannot represent.
    """
    try:
        data = _encoder.encode(event)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EventValidationError("payload", f"is not JSON-serializable: {exc}") from exc
    except RecursionError as exc:
        raise _too_deep("payload") from exc
    check_encoded_size(len(data), "payload")
    if payload_needs_walk(data, event.payload):
        check_payload(event.payload)
    check_no_nul(data, event)
    return data


def _too_deep(field: str) -> EventValidationError:
    return EventValidationError(
        field, f"nests deeper than {MAX_PAYLOAD_DEPTH} levels of objects and arrays"
    )


def _not_utf8(exc: UnicodeDecodeError) -> EventValidationError:
    return EventValidationError(
        "",
        f"not valid JSON: a string holds bytes that are not UTF-8 ({exc.reason} at byte "
        f"{exc.start})",
    )


def _translate(exc: msgspec.ValidationError) -> EventValidationError:
    """Turn msgspec's message into a field path and a reason."""
    if isinstance(exc.__cause__, EventValidationError):
        # Raised by Event.__post_init__, which already names the field.
        return exc.__cause__
    message = str(exc)
    field = ""
    values = ""
    if match := _AT_PATH.match(message):
        message = match["reason"]
        field = match["path"].lstrip(".")
        if field.endswith("[...]"):
            values = "values "
        field = field.replace("[...]", "")
    if match := _EXPECTED.match(message):
        message = f"{values}must be {match['want']}, not {match['got']}"
    elif match := _INVALID.match(message):
        message = f"is not a valid {match['what']}"
    elif message.startswith("Expected `datetime` with a timezone"):
        message = "must carry a UTC offset (e.g. 2026-01-31T09:00:00Z)"
    if match := _MISSING.match(message):
        field = f"{field}.{match['field']}" if field else match["field"]
        message = "is required"
    elif match := _UNKNOWN.match(message):
        field = f"{field}.{match['field']}" if field else match["field"]
        message = "is not a field of an Interlock event (id, occurred, event, resource, "
        message += "related, payload, source)"
    return EventValidationError(field, message[:1].lower() + message[1:])


def decode_event(data: bytes | str) -> Event:
    """Decode one event from wire JSON or CloudEvents 1.0 structured JSON.

    Raises:
        EventValidationError: the document is not JSON, or not a valid event; the error
            names the field (``resource.id is required``).
    """
    check_encoded_size(len(data))
    cloudevent = False
    try:
        event = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        document = _decode_any(data)
        if not (isinstance(document, dict) and "specversion" in document):
            raise _translate(exc) from exc
        event = _from_cloudevent(document)
        cloudevent = True  # its payload is built, not read: the bytes tell nothing of it
    except msgspec.DecodeError as exc:
        raise EventValidationError("", f"not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from exc
    except RecursionError as exc:
        raise _too_deep("") from exc
    if not event.source:
        raise EventValidationError("source", "is required (who published the event)")
    if cloudevent or payload_needs_walk(data, event.payload):
        check_payload(event.payload)
    check_no_nul(data, event)
    return event


def _from_cloudevent(document: dict[str, Any]) -> Event:
    try:
        return from_cloudevent(document)
    except RecursionError as exc:
        raise _too_deep("") from exc


def decode_events(data: bytes | str) -> list[Event]:
    """Decode a JSON array of events (native or CloudEvents, mixed), or a single event.

    Errors name the position in the batch: ``[3].resource.id is required``.
    """
    try:
        events = _list_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass  # not a plain batch of native events: decode item by item for exact errors
    else:
        if all(event.source for event in events):
            for index, event in enumerate(events):
                try:
                    if payload_needs_walk(data):
                        check_payload(event.payload)
                    check_no_nul(data, event)
                except EventValidationError as exc:
                    raise EventValidationError(f"[{index}].{exc.field}", exc.reason) from exc
            return events
    document = _decode_any(data)
    items = document if isinstance(document, list) else [document]
    events = []
    for index, item in enumerate(items):
        try:
            events.append(decode_event(_encoder.encode(item)))
        except EventValidationError as exc:
            prefix = f"[{index}]" if isinstance(document, list) else ""
            field = f"{prefix}.{exc.field}" if prefix and exc.field else (prefix or exc.field)
            raise EventValidationError(field, exc.reason) from exc
    return events


def _decode_any(data: bytes | str) -> Any:
    try:
        return _any_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise EventValidationError("", f"not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from exc
    except RecursionError as exc:
        raise _too_deep("") from exc
