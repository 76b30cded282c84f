"""What the S3 poller remembers between polls: a checkpoint in one of two shapes.

S3 lists keys in lexicographic order, never by time, so every poll lists the whole
prefix (one request per 1,000 keys) and compares each object with the checkpoint. What
the checkpoint holds decides what can be detected and how large it grows:

``track = "watermark"`` (:class:`WatermarkCheckpoint`, the default)
    ``horizon``: every matching object modified at or after it is in ``recent``
    (key → ETag, LastModified); older objects count as already seen. An object is new
    when it is modified at or after the horizon and ``recent`` does not hold its key
    with that ETag. At the end of each full listing the horizon moves up to *the time
    that listing began, by S3's clock* (the ``Date`` of its first response) *minus
    lookback*, and ``recent`` is pruned to it: an object written while a listing runs,
    in the key range it has already passed, is modified after the listing began and so
    is still ahead of the horizon when the next listing finds it; one visible late
    (large and multipart uploads: LastModified is when the upload began) is caught if
    the delay is under ``lookback``. Objects written in the same second as anything
    seen are compared by key and ETag, never by time alone. Size: the objects modified
    within ``lookback`` (plus one listing's duration) of the last listing. Deletions
    cannot be seen.

``track = "keys"`` (:class:`KeysCheckpoint`)
    Every matching key with its ETag. Exact (no lookback), and the only shape that can
    report deletions; size grows with the bucket (~60 bytes a key).

A listing may span several polls (``max_keys_per_poll``): ``cursor`` is the last key
listed, and the next poll resumes after it with ``StartAfter``. The ``scope`` (bucket,
prefix, pattern) is recorded so a checkpoint is never applied to another listing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Set
from datetime import datetime, timedelta
from typing import Union

import msgspec

__all__ = ["Checkpoint", "KeysCheckpoint", "Listed", "Scope", "Seen", "WatermarkCheckpoint"]

VERSION = 1


class Listed(msgspec.Struct, frozen=True, kw_only=True):
    """One object of a listing page."""

    key: str
    etag: str
    size: int
    last_modified: datetime


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """What a checkpoint is a checkpoint of."""

    bucket: str
    prefix: str
    pattern: str | None


class Seen(msgspec.Struct, frozen=True, array_like=True):
    """A recent key's ETag and LastModified, kept as ``[etag, time]``.

    An array-like Struct rather than a tuple: it becomes a JSON list and reads back
    from one, so a checkpoint is plain JSON data that survives a round trip unchanged
    (and reads checkpoints written with tuples, which were lists in JSON too).
    """

    etag: str
    modified: datetime


class _Base(msgspec.Struct, kw_only=True, tag_field="track"):
    version: int = VERSION
    scope: Scope
    primed: bool = False
    """A full listing has completed: objects found from now on are new, not pre-existing."""
    cursor: str | None = None
    """The last key listed by the listing in progress; ``None`` between listings."""

    def start_listing(self, moment: datetime) -> None:
        """Note when (S3's clock) a new listing began."""

    def observe(self, item: Listed) -> bool:
        """Record ``item``; return whether it is new or changed."""
        raise NotImplementedError

    def vanished(self, after: str | None, upto: str | None, listed: Set[str]) -> dict[str, str]:
        """Forget and return (key → last ETag) the keys in ``(after, upto]`` not ``listed``."""
        return {}

    def finish(self, cursor: str | None, lookback: timedelta) -> None:
        """End a poll that listed up to ``cursor`` (``None``: to the end of the listing)."""
        self.cursor = cursor
        if cursor is None:
            self.primed = True


class WatermarkCheckpoint(_Base, tag="watermark"):
    """A horizon on LastModified and the objects modified since."""

    horizon: datetime | None = None
    listing_started: datetime | None = None
    """When (S3's clock) the listing in progress began."""
    recent: dict[str, Seen] = msgspec.field(default_factory=dict)

    def start_listing(self, moment: datetime) -> None:
        self.listing_started = moment

    def observe(self, item: Listed) -> bool:
        modified = item.last_modified
        if self.horizon is not None and modified < self.horizon:
            return False
        seen = self.recent.get(item.key)
        if seen is not None and seen.etag == item.etag:
            # The same content uploaded again: no new version, but remember the later
            # time, or the key would be pruned early and reported again.
            if modified > seen.modified:
                self.recent[item.key] = Seen(item.etag, modified)
            return False
        self.recent[item.key] = Seen(item.etag, modified)
        return True

    def finish(self, cursor: str | None, lookback: timedelta) -> None:
        super().finish(cursor, lookback)
        if self.listing_started is None:
            return
        # An object written while this listing ran, behind its cursor, is listed only by
        # the next one: its LastModified is after this listing began, so the horizon
        # goes no further than that (less the lookback, for uploads visible late).
        horizon = self.listing_started - lookback
        if self.horizon is not None:
            horizon = max(self.horizon, horizon)
        if cursor is None:
            self.horizon = horizon
            self.listing_started = None
            self.recent = {k: v for k, v in self.recent.items() if v.modified >= horizon}
        else:
            # Keys after the cursor are still to be listed by this listing: keep them all.
            self.recent = {
                k: v for k, v in self.recent.items() if k > cursor or v.modified >= horizon
            }


class KeysCheckpoint(_Base, tag="keys"):
    """Every key with its ETag."""

    keys: dict[str, str] = msgspec.field(default_factory=dict)

    def observe(self, item: Listed) -> bool:
        if self.keys.get(item.key) == item.etag:
            return False
        self.keys[item.key] = item.etag
        return True

    def vanished(self, after: str | None, upto: str | None, listed: Set[str]) -> dict[str, str]:
        ordered = sorted(self.keys)
        low = 0 if after is None else bisect_right(ordered, after)
        high = len(ordered) if upto is None else bisect_right(ordered, upto)
        return {key: self.keys.pop(key) for key in ordered[low:high] if key not in listed}


Checkpoint = Union[WatermarkCheckpoint, KeysCheckpoint]
