"""Firings: what the engine produces, and the keys and windows they are about.

A :class:`Firing` says which rule fired (or resolved), for which key, over which window,
because of which events, and whether it was judged on time. Its ``id`` is a UUID5 of
its identity (rule, key, window, status, and for event-driven firings the events), so
a replayed stream produces the same ids and the service stores each firing once.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import msgspec

from interlock.rules.predicates import MISSING, resolve
from interlock.sdk.event import Event
from interlock.sdk.vocabulary import FiringStatus

__all__ = ["Firing", "WindowIds", "firing_id", "key_of"]

_NAMESPACE = uuid.UUID("0d9a4b8e-2a8c-4f3e-8f61-6b7b1f2b9c11")
_NAMESPACE_BYTES = _NAMESPACE.bytes
_VERSION_5 = (5 << 76) | (0x8000 << 48)  # RFC 4122: version 5, the variant's two bits
_NOT_VERSION = ~((0xF000 << 64) | (0xC000 << 48))


class Firing(msgspec.Struct, frozen=True, kw_only=True):
    """A rule fired, or a fired absence resolved."""

    id: uuid.UUID
    rule: str
    key: str
    """The ``for_each`` key (values joined by ``|``); empty without ``for_each``."""
    status: FiringStatus
    at: datetime
    """Event time it happened: the deadline of a missed window, or the time of the last
    event that completed a match."""
    window_start: datetime | None = None
    window_end: datetime | None = None
    """The window (deadline, for absences) the firing is about, if any."""
    event_ids: list[uuid.UUID] = msgspec.field(default_factory=list)
    expected: int | None = None
    """For absences: how many events were expected in the window."""
    arrived: int | None = None
    """For absences: how many arrived."""
    late: bool = False
    """Judged later than ``lateness_tolerance`` after it was due (a backlog, a restart)."""
    summary: str = ""


def firing_id(rule: str, key: str, status: str, *parts: object) -> uuid.UUID:
    """The deterministic id of a firing with this identity.

    ``uuid.uuid5`` of the text, computed the same way without building the namespace's
    bytes and checking arguments on every call: a burst of due windows makes thousands
    at once (test_firing_ids_are_uuid5 holds them equal).
    """
    text = "\x1f".join([rule, key, status, *map(str, parts)])
    digest = hashlib.sha1(_NAMESPACE_BYTES + text.encode(), usedforsecurity=False).digest()
    return _uuid(int.from_bytes(digest[:16]) & _NOT_VERSION | _VERSION_5)


_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def _uuid(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` without its argument checks (``value`` is a valid UUID5)."""
    made: uuid.UUID = _new(uuid.UUID)
    _set(made, "int", value)
    _set(made, "is_safe", _UNKNOWN)
    return made


class WindowIds:
    """:func:`firing_id` of one window for many keys: ``ids(key)``.

    The hashing of what the keys have in common is shared (a deadline judged for 10,000
    keys at once).
    """

    __slots__ = ("_prefix", "_suffix")

    def __init__(self, rule: str, status: str, *parts: object) -> None:
        self._prefix = hashlib.sha1(
            _NAMESPACE_BYTES + rule.encode() + b"\x1f", usedforsecurity=False
        )
        self._suffix = ("\x1f" + "\x1f".join([status, *map(str, parts)])).encode()

    def __call__(self, key: str) -> uuid.UUID:
        """The id of the firing of ``key``."""
        digest = self._prefix.copy()
        digest.update(key.encode())
        digest.update(self._suffix)
        return _uuid(int.from_bytes(digest.digest()[:16]) & _NOT_VERSION | _VERSION_5)

    def many(self, keys: list[str]) -> list[uuid.UUID]:
        """The ids of the firings of ``keys``, in order (the same as one call each)."""
        copy, suffix = self._prefix.copy, self._suffix
        from_bytes, new, set_attr = int.from_bytes, _new, _set
        mask, version, unknown, uuid_type = _NOT_VERSION, _VERSION_5, _UNKNOWN, uuid.UUID
        made: list[uuid.UUID] = []
        for key in keys:
            digest = copy()
            digest.update(key.encode() + suffix)
            value = new(uuid_type)
            set_attr(value, "int", from_bytes(digest.digest()[:16]) & mask | version)
            set_attr(value, "is_safe", unknown)
            made.append(value)
        return made


def key_of(event: Event, paths: list[str]) -> str | None:
    """The key of ``event`` under ``for_each`` paths; ``None`` if a path is missing."""
    if not paths:
        return ""
    values = []
    for path in paths:
        value = resolve(event, path)
        if value is MISSING or isinstance(value, dict | list):
            return None
        values.append(str(value) if not isinstance(value, str) else value)
    return "|".join(values)
