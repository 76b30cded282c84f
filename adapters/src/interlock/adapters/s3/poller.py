"""``s3.poll``: list a bucket; publish the objects created, changed or deleted since the last poll.

Each poll lists the prefix with ``ListObjectsV2`` (1,000 keys a request, at most
``max_keys_per_poll`` keys a poll, resuming after the last key on the next poll),
keeps the keys matching ``pattern``, and compares them with the checkpoint (see
:mod:`interlock.adapters.s3._state` for its two shapes and their cost)::

    [adapters.landing]
    kind = "s3.poll"
    bucket = "landing"
    prefix = "exports/"
    pattern = "exports/*/*.csv"
"""

from __future__ import annotations

import fnmatch
import logging
import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec

from interlock.adapters.base import AdapterConfigError, PollingAdapter, PollResult
from interlock.adapters.option_reader import OptionReader
from interlock.adapters.s3._client import Connection, make_client, source_errors
from interlock.adapters.s3._events import (
    normalize_etag,
    object_created,
    object_deleted,
)
from interlock.adapters.s3._state import (
    VERSION,
    Checkpoint,
    KeysCheckpoint,
    Listed,
    Scope,
    WatermarkCheckpoint,
)
from interlock.sdk.event import Event, utc_now

__all__ = ["S3PollingAdapter"]

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000
"""The most keys ``ListObjectsV2`` returns in one response."""

_WILDCARD = re.compile(r"[*?\[]")


def _as_utc(moment: datetime) -> datetime:
    return (
        moment.replace(tzinfo=timezone.utc)
        if moment.tzinfo is None
        else moment.astimezone(timezone.utc)
    )


def _server_time(response: dict[str, Any]) -> datetime:
    """The ``Date`` of a response (S3's clock, to the second), or this machine's clock."""
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if header:
        try:
            return _as_utc(parsedate_to_datetime(header))
        except (TypeError, ValueError):
            pass
    logger.debug("no usable Date header in the listing response; using the local clock")
    return utc_now().replace(microsecond=0)


def _list_prefix(prefix: str, pattern: str | None) -> str | None:
    """The narrowest prefix to list: ``prefix``, or the pattern's literal head if longer.

    ``None`` when nothing under ``prefix`` can match ``pattern``.
    """
    if pattern is None:
        return prefix
    match = _WILDCARD.search(pattern)
    head = pattern if match is None else pattern[: match.start()]
    if head.startswith(prefix):
        return head
    if prefix.startswith(head):
        return prefix
    return None


class S3PollingAdapter(PollingAdapter):
    """Publishes ``s3.object.created`` (and ``s3.object.deleted``) by listing a bucket."""

    kind = "s3.poll"

    def __init__(
        self,
        name: str,
        client: Any,
        *,
        bucket: str,
        prefix: str = "",
        pattern: str | None = None,
        track: str = "watermark",
        emit_deleted: bool = False,
        emit_existing: bool = True,
        lookback: timedelta = timedelta(minutes=15),
        max_keys_per_poll: int = 10_000,
    ) -> None:
        super().__init__(name)
        self.client = client
        """The boto3 S3 client (its ``meta.events`` take hooks, e.g. to count requests)."""
        self.scope = Scope(bucket=bucket, prefix=prefix, pattern=pattern)
        self.track = track
        self.emit_deleted = emit_deleted
        self.emit_existing = emit_existing
        self.lookback = lookback
        self.max_keys_per_poll = max_keys_per_poll
        self._list_prefix = _list_prefix(prefix, pattern) or prefix

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> S3PollingAdapter:
        """Build from ``[adapters.NAME]``; see ``docs/adapters/s3.md`` for every option."""
        reader = OptionReader(name, options)
        bucket = reader.required_string("bucket", "landing")
        prefix = reader.string("prefix", "") or ""
        pattern = reader.string("pattern")
        if _list_prefix(prefix, pattern) is None:
            raise reader.error("pattern", f"{pattern!r} can never match a key under {prefix!r}")
        emit_deleted = reader.boolean("emit_deleted", default=False)
        track = reader.string("track", "keys" if emit_deleted else "watermark")
        if track not in {"watermark", "keys"}:
            raise reader.error("track", f"must be 'watermark' or 'keys', not {track!r}")
        if emit_deleted and track != "keys":
            raise reader.error(
                "emit_deleted", "needs track = 'keys' (a watermark cannot see deletions)"
            )
        emit_existing = reader.boolean("emit_existing", default=True)
        lookback = reader.duration("lookback", timedelta(minutes=15))
        max_keys_per_poll = reader.integer("max_keys_per_poll", 10_000, minimum=1)
        connection = Connection.read(reader, s3=True)
        reader.finish(cls.kind)
        return cls(
            name,
            make_client("s3", connection, reader),
            bucket=bucket,
            prefix=prefix,
            pattern=pattern,
            track=track,
            emit_deleted=emit_deleted,
            emit_existing=emit_existing,
            lookback=lookback,
            max_keys_per_poll=max_keys_per_poll,
        )

    # -- checkpoint --------------------------------------------------------------------

    def _load(self, checkpoint: dict[str, Any] | None) -> Checkpoint:
        if checkpoint is None:
            if self.track == "keys":
                return KeysCheckpoint(scope=self.scope)
            return WatermarkCheckpoint(scope=self.scope)
        try:
            state: Checkpoint = msgspec.convert(checkpoint, Checkpoint)
        except msgspec.ValidationError as exc:
            raise self._stale_checkpoint(f"is malformed ({exc})") from exc
        kind = "keys" if isinstance(state, KeysCheckpoint) else "watermark"
        if state.version != VERSION or state.scope != self.scope or kind != self.track:
            raise self._stale_checkpoint(
                f"was written for {msgspec.to_builtins(state.scope)} with track = {kind!r} "
                f"(version {state.version})"
            )
        return state

    def _stale_checkpoint(self, reason: str) -> AdapterConfigError:
        return AdapterConfigError(
            self.name,
            "checkpoint",
            f"{reason}, not for this configuration ({msgspec.to_builtins(self.scope)}, "
            f"track = {self.track!r}); delete this adapter's checkpoint file to start over",
        )

    # -- polling -----------------------------------------------------------------------

    def _list_page(self, max_keys: int, start_after: str | None, token: str | None) -> Any:
        request: dict[str, Any] = {"Bucket": self.scope.bucket, "MaxKeys": max_keys}
        if self._list_prefix:
            request["Prefix"] = self._list_prefix
        if token is not None:
            request["ContinuationToken"] = token
        elif start_after is not None:
            request["StartAfter"] = start_after
        action = f"listing s3://{self.scope.bucket}/{self._list_prefix}"
        with source_errors(self.name, action):
            return self.client.list_objects_v2(**request)

    def _matches(self, key: str) -> bool:
        pattern = self.scope.pattern
        return pattern is None or fnmatch.fnmatchcase(key, pattern)

    def poll(self, checkpoint: dict[str, Any] | None) -> PollResult:
        """List up to ``max_keys_per_poll`` keys from the checkpoint's cursor and compare."""
        state = self._load(checkpoint)
        emit = state.primed or self.emit_existing
        start_after = state.cursor
        found: list[Listed] = []
        listed: set[str] = set()
        count = 0
        last_key: str | None = None
        token: str | None = None
        while True:
            page = self._list_page(
                min(PAGE_SIZE, self.max_keys_per_poll - count), start_after, token
            )
            if start_after is None and token is None:
                state.start_listing(_server_time(page))
            for item in page.get("Contents", ()):
                count += 1
                last_key = item["Key"]
                if not self._matches(last_key):
                    continue
                listed.add(last_key)
                entry = Listed(
                    key=last_key,
                    etag=normalize_etag(item.get("ETag", "")),
                    size=int(item.get("Size", 0)),
                    last_modified=_as_utc(item["LastModified"]),
                )
                if state.observe(entry) and emit:
                    found.append(entry)
            truncated = bool(page.get("IsTruncated"))
            if not truncated or count >= self.max_keys_per_poll:
                break
            token = page["NextContinuationToken"]
        cursor = last_key if truncated else None
        events = [self._created(entry) for entry in sorted(found, key=_by_time)]
        gone = state.vanished(start_after, cursor, listed)
        if self.emit_deleted:
            now = utc_now()
            events.extend(self._deleted(key, etag, now) for key, etag in sorted(gone.items()))
        state.finish(cursor, self.lookback)
        if cursor is not None:
            logger.debug("adapter %s: listed %d keys, resuming after %r", self.name, count, cursor)
        return PollResult(
            events=events,
            checkpoint=msgspec.to_builtins(state),
            more=cursor is not None,
        )

    def _created(self, entry: Listed) -> Event:
        return object_created(
            self.scope.bucket,
            entry.key,
            version=entry.etag,
            occurred=entry.last_modified,
            payload={
                "size": entry.size,
                "etag": entry.etag,
                "last_modified": entry.last_modified.isoformat(),
            },
        )

    def _deleted(self, key: str, etag: str, now: datetime) -> Event:
        return object_deleted(
            self.scope.bucket, key, version=etag, occurred=now, payload={"etag": etag}
        )

    def close(self) -> None:
        """Close the client's connection pool."""
        self.client.close()


def _by_time(entry: Listed) -> tuple[datetime, str]:
    return entry.last_modified, entry.key
