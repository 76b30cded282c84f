r"""The size limits of the wire contract, enforced alike by every reader and writer.

An event that breaks one of these is not a valid event: the SDK refuses to publish it
(:class:`~interlock.sdk.errors.EventValidationError`), ``POST /api/events`` answers
4xx, and the service's pipeline moves it to ``INTERLOCK_DEAD`` with the reason.

=========================  ==========  ==============================================
limit                      value       what it bounds
=========================  ==========  ==============================================
``MAX_EVENT_BYTES``        1,000,000   the encoded event (NATS refuses 1 MiB anyway)
``MAX_NAME_LENGTH``        255         the event name (and at most 16 tokens)
``MAX_SOURCE_LENGTH``      255         ``source``
``MAX_LABELS``             64          entries of ``resource`` (``id`` included), and of
                                       each related resource
``MAX_LABEL_KEY_LENGTH``   256         a key of ``resource`` / a related resource
``MAX_LABEL_VALUE_LENGTH`` 4,096       a value there (``resource.id`` included)
``MAX_RELATED``            64          entries of ``related``
``MAX_PAYLOAD_DEPTH``      32          nesting of objects and arrays in ``payload``
                                       (``{"a": 1}`` is depth 1)
``MAX_STRING_LENGTH``      262,144     any string (or key) inside ``payload``
=========================  ==========  ==============================================

JSON itself: the text must be UTF-8 (invalid bytes inside a string, or an escaped lone
surrogate, make the message invalid); no string may hold the NUL character
(``\u0000``: PostgreSQL cannot store it, so a firing keyed or rendered from it could not
be kept); floats must be finite (``NaN`` is not JSON, and ``1e400`` is refused);
integers are exact up to 4,300 digits (Python's limit: keep them within 64 bits if
consumers in other languages read the events); a key given twice in one object counts
once, with its **last** value (as JavaScript and most parsers read it; do not rely on
it).

Checking the payload's depth and strings walks it only when the encoded event could
break a limit at all: a document with fewer ``{``/``[`` bytes than the depth limit
cannot nest deeper, and one shorter than the string limit holds no longer string.
"""

from __future__ import annotations

from typing import Any, Final

from interlock.sdk.errors import EventValidationError

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_LABELS",
    "MAX_LABEL_KEY_LENGTH",
    "MAX_LABEL_VALUE_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_PAYLOAD_DEPTH",
    "MAX_RELATED",
    "MAX_SOURCE_LENGTH",
    "MAX_STRING_LENGTH",
    "check_encoded_size",
    "check_no_nul",
    "check_payload",
    "is_flat",
    "payload_needs_walk",
]

MAX_EVENT_BYTES: Final = 1_000_000
MAX_NAME_LENGTH: Final = 255
MAX_SOURCE_LENGTH: Final = 255
MAX_LABELS: Final = 64
MAX_LABEL_KEY_LENGTH: Final = 256
MAX_LABEL_VALUE_LENGTH: Final = 4096
MAX_RELATED: Final = 64
MAX_PAYLOAD_DEPTH: Final = 32
MAX_STRING_LENGTH: Final = 262_144

# An event document opens at least these objects besides its payload's (the event and its
# resource): a document with no more brackets than the depth limit plus these cannot hold
# a payload nested deeper than the limit.
_ENVELOPE_BRACKETS: Final = 2


def check_encoded_size(size: int, field: str = "") -> None:
    """Refuse an encoded event larger than :data:`MAX_EVENT_BYTES`.

    ``field`` names what made it so large when the caller knows (the SDK: ``payload``).
    """
    if size > MAX_EVENT_BYTES:
        what = "makes the event" if field else "the event is"
        raise EventValidationError(
            field,
            f"{what} {size:,} bytes; at most {MAX_EVENT_BYTES:,} are allowed "
            "(store large data elsewhere and send a reference)",
        )


def payload_needs_walk(document: bytes | str, payload: Any = None) -> bool:
    """Whether the encoded ``document`` could hold a payload breaking a limit.

    ``False`` is certain (no walk needed); ``True`` means :func:`check_payload` must
    look. It counts brackets (two byte counts, no parsing) and, only when there are
    many, looks whether ``payload`` (when given) is flat: no object or array among its
    values, so it cannot nest too deep.
    """
    if len(document) > MAX_STRING_LENGTH:
        return True
    if isinstance(document, str):
        brackets = document.count("{") + document.count("[")
    else:
        brackets = document.count(b"{") + document.count(b"[")
    if brackets <= MAX_PAYLOAD_DEPTH + _ENVELOPE_BRACKETS:
        return False
    return not is_flat(payload)


def is_flat(payload: Any) -> bool:
    """Whether ``payload`` is an object holding no object or array: it cannot nest deep."""
    return isinstance(payload, dict) and not any(
        type(value) in _CONTAINERS for value in payload.values()
    )


_CONTAINERS = (dict, list)


def check_payload(payload: Any, field: str = "payload") -> None:
    """Refuse a payload breaking the depth or string limit; the error names the path.

    Nested deeper than :data:`MAX_PAYLOAD_DEPTH`, or holding a string (or key) longer
    than :data:`MAX_STRING_LENGTH`. Iterative, so a payload nested far past Python's
    recursion limit is refused rather than crashing the checker.
    """
    stack: list[tuple[Any, str, int]] = [(payload, field, 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > MAX_STRING_LENGTH:
                raise EventValidationError(
                    path,
                    f"is a string of {len(value):,} characters; at most "
                    f"{MAX_STRING_LENGTH:,} are allowed",
                )
            continue
        if isinstance(value, dict):
            items: Any = value.items()
        elif isinstance(value, (list, tuple)):
            items = enumerate(value)
        else:
            continue
        depth += 1
        if depth > MAX_PAYLOAD_DEPTH:
            raise EventValidationError(
                path, f"nests deeper than {MAX_PAYLOAD_DEPTH} levels of objects and arrays"
            )
        for key, item in items:
            if isinstance(key, str):
                if len(key) > MAX_STRING_LENGTH:
                    raise EventValidationError(
                        path,
                        f"has a key of {len(key):,} characters; at most "
                        f"{MAX_STRING_LENGTH:,} are allowed",
                    )
                child = f"{path}.{key}" if len(key) <= 64 else f"{path}.{key[:61]}..."
            else:
                child = f"{path}[{key}]"
            if isinstance(item, (str, dict, list, tuple)):
                stack.append((item, child, depth))


_NUL_ESCAPE = b"\\u0000"


def check_no_nul(document: bytes | str, event: Any) -> None:
    r"""Refuse an event holding the NUL character in any string (or key).

    Looks only when the encoded ``document`` holds a backslash, then the escape
    ``\u0000`` (C searches); the error names the field.
    """
    if isinstance(document, str):
        if "\\" not in document or "\\u0000" not in document:
            return
    elif b"\\" not in document or _NUL_ESCAPE not in document:
        return
    stack: list[tuple[Any, str]] = [
        (event.resource, "resource"),
        (event.related, "related"),
        (event.payload, "payload"),
        (event.source, "source"),
    ]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise EventValidationError(path, "holds the NUL character (\\u0000)")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    raise EventValidationError(path, "has a key holding the NUL character")
                stack.append((item, f"{path}.{key}"))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(value))
