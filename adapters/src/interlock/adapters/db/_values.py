"""Database values as JSON: in event payloads, and as watermarks in checkpoints.

Drivers return dates, decimals, UUIDs, bytes, intervals; SQLite returns timestamps as
text. :func:`json_safe` turns any of them into something JSON holds, bounding long
strings. A *mark* (a high-water mark or the last key read) must also come back from the
checkpoint as the value it was, to be compared and bound in the next query:
:func:`encode_mark` tags it with its type and :func:`decode_mark` restores it.
Timestamps stored as ISO text (SQLite) are read as datetimes, so a mark looks the same
on every database.
"""

from __future__ import annotations

import base64
import math
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from interlock.sdk.compat import fromisoformat

__all__ = ["MAX_TEXT", "decode_mark", "encode_mark", "is_after", "json_safe", "mark_text"]

MAX_TEXT = 500
"""Characters of one text value kept in a payload; longer values end with an ellipsis."""


def json_safe(value: Any, max_text: int = MAX_TEXT) -> Any:
    """``value`` as JSON: ISO dates, exact numbers, base64 bytes, bounded text."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        return value if len(value) <= max_text else value[: max_text - 1] + "…"
    return _composite(value, max_text)


def _composite(value: Any, max_text: int) -> Any:
    """Bytes (base64), arrays and JSON documents; anything else as its text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)[:max_text]).decode("ascii")
    if isinstance(value, dict):
        return {str(key): json_safe(item, max_text) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(item, max_text) for item in value]
    return json_safe(str(value), max_text)  # UUID, IP addresses, ranges, enums


def _decimal(value: Decimal) -> int | float | str:
    """An integral decimal as an int, else a float when that is exact, else its text."""
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)


def normalize(value: Any) -> Any:
    """A mark as compared: ISO text parsed to a datetime, aware datetimes in UTC."""
    if isinstance(value, str):
        try:
            value = fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc)
    return value


def encode_mark(value: Any) -> dict[str, Any] | None:
    """A mark for a checkpoint: ``{"type": ..., "value": ...}`` (``None`` stays ``None``).

    The value is kept as the driver returned it (text stays text), so that bound in the
    next query it compares the way the database compares it.
    """
    if value is None:
        return None
    if isinstance(value, (bool, int, float, str)):
        return {"type": type(value).__name__, "value": value}
    if isinstance(value, datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, Decimal):
        return {"type": "decimal", "value": str(value)}
    return {"type": "str", "value": str(value)}


def decode_mark(data: Any) -> Any:
    """The value :func:`encode_mark` encoded; raises ``ValueError`` if it is not one."""
    if data is None:
        return None
    if not isinstance(data, dict) or "type" not in data or "value" not in data:
        raise ValueError(f"{data!r} is not an encoded mark")
    kind, value = data["type"], data["value"]
    decoders: dict[str, Any] = {
        "int": int,
        "float": float,
        "bool": bool,
        "str": str,
        "decimal": Decimal,
        "datetime": fromisoformat,
        "date": date.fromisoformat,
    }
    if kind not in decoders:
        raise ValueError(f"unknown mark type {kind!r}")
    return decoders[kind](value)


def mark_text(value: Any) -> str:
    """A mark's canonical text: part of deterministic ids, shown in payloads."""
    value = normalize(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def is_after(new: Any, old: Any) -> bool:
    """Whether mark ``new`` is later than ``old``; marks that do not compare differ."""
    new, old = normalize(new), normalize(old)
    try:
        return bool(new > old)
    except TypeError:  # e.g. the column became timezone-aware, or changed type
        return bool(new != old)
