"""Reading recorded events back from JetStream: by time, by position, and live.

Events are not copied into the database: ``INTERLOCK_EVENTS`` is the record, kept as
long as the stream's limits say (``max_age``, 7 days by default). :class:`EventLog`
reads it through short-lived consumers of its own on a NATS connection it opens when
first used:

- :meth:`EventLog.read`: oldest first, from a time (``since``) or after a stream
  sequence (``after``, the cursor), until a time, at most ``limit`` events;
- :meth:`EventLog.latest`: the newest ``limit`` events (the feed's first rows), read
  backwards in growing chunks;
- :meth:`EventLog.follow`: batches of events as they are stored, after a sequence
  (the live feed; a reconnecting browser says where it was);
- :meth:`EventLog.get`: one event by its stream sequence.

**What a query costs.** Each :meth:`~EventLog.read` creates one ephemeral consumer
(memory storage, one replica, no acks, deleted when done and after 30 s of inactivity
at the latest): one request to create it, one per 256 messages read, one to delete it.
The server finds the first message at or after ``since`` by the timestamps of its
message blocks (a search, not a scan), or starts right after ``after``. The name
pattern is the consumer's subject filter (``interlock.events.<pattern>``), so the
server skips other names, using its per-block subject index. Resource, label and
source are tested here, after decoding: every message of the matching names in the
range travels to the service. So a query reads at most ``max_scan`` messages (10,000
by default, about 5 MB of 500-byte events, a few tens of milliseconds here) and, when
it stops there, returns a cursor to continue: a narrow name pattern is what makes a
query over a long, busy range cheap. :meth:`~EventLog.latest` reads chunks of 256, then
4 times more each, backwards from the end, each a consumer of its own, until it has
``limit`` events, reaches ``since``, or has read ``max_scan`` messages.
:meth:`~EventLog.follow` holds one consumer per open feed, delivering every message of
its names as it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Final

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from nats.js.manager import JetStreamManager

from interlock.rules.names import check_pattern, pattern_matches
from interlock.sdk import NatsOptions
from interlock.sdk.codec import decode_event
from interlock.sdk.connection import connect
from interlock.sdk.errors import BusError
from interlock.sdk.event import Event
from interlock.sdk.subjects import EVENTS_STREAM, EVENTS_SUBJECT_PREFIX, subject_filter

__all__ = ["MAX_SCAN", "MAX_SEQUENCE", "EventFilter", "EventLog", "EventPage", "LoggedEvent"]

logger = logging.getLogger(__name__)

MAX_SEQUENCE: Final = 2**63 - 1
"""The largest stream sequence asked for (JetStream's are unsigned 64-bit)."""
MAX_SCAN: Final = 10_000
"""Messages one query reads at most (it returns a cursor to go on)."""
_BATCH = 256
_FIRST_CHUNK = 256
_INACTIVE = 30.0
"""Seconds after which the server deletes a consumer nobody reads (a crash's leftover)."""
_REQUEST_TIMEOUT = 5.0
_FOLLOW_EXPIRES = 5.0
_STATUS = "Status"
_HEARTBEAT = "100"
_MAX_RAW = 2000


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which events a query or a feed shows.

    ``name`` is an event-name pattern (NATS wildcards: ``s3.object.*``, ``airflow.>``);
    ``resource`` a glob on ``resource.id`` (``warehouse.*``); ``label`` ``key=value``,
    the value a glob; ``source`` a glob. Empty means any.
    """

    name: str = ">"
    resource: str = ""
    label: str = ""
    source: str = ""

    def problem(self) -> str | None:
        """Why this filter cannot be used (a bad pattern or label), or ``None``."""
        if self.name != ">" and (issue := check_pattern(self.name)) is not None:
            return issue
        if self.label and "=" not in self.label:
            return f"label {self.label!r} must read key=value (the value may be a glob)"
        return None

    @property
    def subject(self) -> str:
        """The subject filter the server applies."""
        return subject_filter(self.name or ">")

    def accepts(self, event: Event) -> bool:
        """Whether ``event`` passes the tests the server cannot do."""
        if self.resource and not fnmatch.fnmatchcase(event.resource.get("id", ""), self.resource):
            return False
        if self.source and not fnmatch.fnmatchcase(event.source, self.source):
            return False
        if self.label:
            key, _, value = self.label.partition("=")
            found = event.resource.get(key.strip())
            if found is None or not fnmatch.fnmatchcase(found, value.strip() or "*"):
                return False
        return True

    @property
    def narrowed(self) -> bool:
        """Whether it tests anything beyond the name (so some messages are read, not shown)."""
        return bool(self.resource or self.label or self.source)


class LoggedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A message of ``INTERLOCK_EVENTS`` and the event it holds."""

    sequence: int
    """Its stream sequence: its position, the cursor of queries and feeds."""
    stored_at: datetime
    """When JetStream stored it (UTC)."""
    subject: str
    event: Event | None
    """``None`` when the message is not a valid event (the pipeline dead-letters those)."""
    problem: str | None = None
    """Why it is not a valid event."""
    raw: str | None = None
    """The start of such a message's text."""

    @property
    def name(self) -> str:
        """The event's name (from the subject when it did not decode)."""
        if self.event is not None:
            return self.event.event
        return self.subject.removeprefix(EVENTS_SUBJECT_PREFIX)


class EventPage(msgspec.Struct, frozen=True, kw_only=True):
    """What a query found."""

    events: list[LoggedEvent]
    next_after: int | None
    """Continue after this sequence for more (``None``: the range is read to its end)."""
    scanned: int
    """Messages read to find them (those of other resources, labels, sources included)."""
    last_sequence: int
    """The stream's last sequence when the query started (0: empty)."""


class EventLog:
    """Reads ``INTERLOCK_EVENTS``; connects on first use, :meth:`close` when done.

    Args:
        options: How to reach NATS (the service's own options).
        stream: The stream (the wire contract's by default).
    """

    def __init__(self, options: NatsOptions, *, stream: str = EVENTS_STREAM) -> None:
        self._options = options
        self._stream = stream
        self._nc: NATS | None = None
        self._jsm: JetStreamManager | None = None
        self._lock = asyncio.Lock()

    @property
    def servers(self) -> tuple[str, ...]:
        """The NATS servers it reads from."""
        return tuple(self._options.servers)

    async def close(self) -> None:
        """Close the connection (open feeds end)."""
        async with self._lock:
            if self._nc is not None:
                nc, self._nc, self._jsm = self._nc, None, None
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _connection(self) -> tuple[NATS, JetStreamManager]:
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                options = msgspec.structs.replace(self._options, name="interlock-event-log")
                self._nc = await connect(options)
                self._jsm = self._nc.jsm()
            assert self._jsm is not None
            return self._nc, self._jsm

    async def last_sequence(self) -> int:
        """The stream's last sequence (0 while it is empty)."""
        _, jsm = await self._connection()
        info = await jsm.stream_info(self._stream)
        return int(info.state.last_seq or 0)

    async def consumer_lag(self, consumer: str) -> int | None:
        """Messages a durable consumer has not been delivered yet; ``None`` if it is gone."""
        _, jsm = await self._connection()
        try:
            info = await jsm.consumer_info(self._stream, consumer)
        except NotFoundError:
            return None
        return int(info.num_pending or 0)

    async def get(self, sequence: int) -> LoggedEvent | None:
        """The message at ``sequence``; ``None`` if there is none (expired or deleted)."""
        if not 0 < sequence <= MAX_SEQUENCE:
            return None
        _, jsm = await self._connection()
        try:
            message = await jsm.get_msg(self._stream, sequence)
        except NotFoundError:
            return None
        stored = message.time or datetime.fromtimestamp(0, UTC)
        return _logged(sequence, stored, message.subject or "", message.data or b"")

    async def read(
        self,
        events: EventFilter,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after: int | None = None,
        limit: int = 100,
        max_scan: int = MAX_SCAN,
    ) -> EventPage:
        """Events oldest first: after sequence ``after``, else from ``since``, else all.

        Stops at ``until`` (stored time), after ``limit`` events, or after reading
        ``max_scan`` messages; ``next_after`` then says where to go on.
        """
        last = await self.last_sequence()
        if after is not None:
            begin = _Start(DeliverPolicy.BY_START_SEQUENCE, sequence=after + 1)
        elif since is not None:
            begin = _Start(DeliverPolicy.BY_START_TIME, time=since)
        else:
            begin = _Start(DeliverPolicy.ALL)
        found: list[LoggedEvent] = []
        scanned, position, more = 0, after or 0, False
        if last > (after or 0):
            async with _Consumer(self, events.subject, begin) as consumer:
                while consumer.pending > 0 and not more:
                    if len(found) >= limit or scanned >= max_scan:
                        more = True
                        break
                    messages = await consumer.pull(
                        min(_BATCH, consumer.pending, max_scan - scanned)
                    )
                    for n, message in enumerate(messages):
                        logged = _from_message(message)
                        if until is not None and logged.stored_at >= until:
                            return EventPage(
                                events=found, next_after=None, scanned=scanned, last_sequence=last
                            )
                        scanned += 1
                        position = logged.sequence
                        if _shown(logged, events):
                            found.append(logged)
                        if len(found) >= limit:
                            more = n + 1 < len(messages) or consumer.pending > 0
                            break
                    if not messages:
                        break
        return EventPage(
            events=found, next_after=position if more else None, scanned=scanned, last_sequence=last
        )

    async def latest(
        self,
        events: EventFilter,
        *,
        since: datetime | None = None,
        before: int | None = None,
        limit: int = 100,
        max_scan: int = MAX_SCAN,
    ) -> EventPage:
        """The newest ``limit`` events (before sequence ``before``), newest first.

        ``next_after`` is ``None``; the page's first event is the newest.
        """
        last = await self.last_sequence()
        _, jsm = await self._connection()
        first = int((await jsm.stream_info(self._stream)).state.first_seq or 1)
        high = min(last, before - 1) if before is not None else last
        found: list[LoggedEvent] = []
        scanned, chunk, reached_since = 0, _FIRST_CHUNK, False
        while high >= first and len(found) < limit and scanned < max_scan and not reached_since:
            low = max(first, high - chunk + 1)
            begin = _Start(DeliverPolicy.BY_START_SEQUENCE, sequence=low)
            part: list[LoggedEvent] = []
            async with _Consumer(self, events.subject, begin) as consumer:
                position = low - 1
                while consumer.pending > 0 and position < high:
                    budget = min(_BATCH, consumer.pending, high - position, max_scan - scanned)
                    if budget <= 0:
                        break
                    messages = await consumer.pull(budget)
                    if not messages:
                        break
                    for message in messages:
                        logged = _from_message(message)
                        position = logged.sequence
                        if position > high:
                            break
                        scanned += 1
                        if since is not None and logged.stored_at < since:
                            reached_since = True
                            continue
                        if _shown(logged, events):
                            part.append(logged)
            found = part + found
            high, chunk = low - 1, chunk * 4
        newest = found[-limit:]
        newest.reverse()
        return EventPage(events=newest, next_after=None, scanned=scanned, last_sequence=last)

    async def follow(
        self, events: EventFilter, *, after: int, wake_every: float = 15.0
    ) -> AsyncIterator[tuple[int, list[LoggedEvent]]]:
        """``(position, events)`` as messages are stored after sequence ``after``.

        ``position`` is the last sequence read (events of other resources, labels or
        sources advance it too). An empty batch comes every ``wake_every`` seconds
        when nothing was stored, so the caller may send a keep-alive.
        """
        begin = _Start(DeliverPolicy.BY_START_SEQUENCE, sequence=after + 1)
        async with _Consumer(self, events.subject, begin) as consumer:
            position = after
            while True:
                messages = await consumer.wait(_BATCH, wake_every)
                batch: list[LoggedEvent] = []
                for message in messages:
                    logged = _from_message(message)
                    position = logged.sequence
                    if _shown(logged, events):
                        batch.append(logged)
                yield position, batch


def _shown(logged: LoggedEvent, events: EventFilter) -> bool:
    if logged.event is None:
        return not events.narrowed and pattern_matches(events.name or ">", logged.name or "?")
    return events.accepts(logged.event)


def _from_message(message: Msg) -> LoggedEvent:
    meta = message.metadata
    return _logged(meta.sequence.stream, meta.timestamp, message.subject, message.data)


def _logged(sequence: int, stored_at: datetime, subject: str, data: bytes) -> LoggedEvent:
    try:
        event = decode_event(data)
    except Exception as exc:  # noqa: BLE001 - an invalid message is shown as such
        raw = data[:_MAX_RAW].decode("utf-8", errors="replace")
        return LoggedEvent(
            sequence=sequence,
            stored_at=stored_at,
            subject=subject,
            event=None,
            problem=f"{type(exc).__name__}: {exc}",
            raw=raw,
        )
    return LoggedEvent(sequence=sequence, stored_at=stored_at, subject=subject, event=event)


class _Start(msgspec.Struct, frozen=True):
    """Where a consumer starts."""

    policy: DeliverPolicy
    sequence: int | None = None
    time: datetime | None = None


class _Consumer:
    """An ephemeral pull consumer and the inbox its messages come to."""

    def __init__(self, log: EventLog, subject: str, start: _Start) -> None:
        self._log = log
        self._subject = subject
        self._start = start
        self._inbox = ""
        self._name = ""
        self._api = ""
        self._subscription: Subscription | None = None
        self._buffer: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        self._open = 0
        """Messages the open request may still bring (0: no request open)."""
        self._lost_at = 0.0
        """When the open request is taken for lost (a reconnect dropped its answer)."""
        self.pending = 0
        """Messages of its subjects the server holds after the last one delivered."""
        self._nc: NATS | None = None
        self._jsm: JetStreamManager | None = None

    async def __aenter__(self) -> _Consumer:
        nc, jsm = await self._log._connection()
        self._nc, self._jsm = nc, jsm
        self._name = f"interlock-read-{uuid.uuid4().hex}"
        config = ConsumerConfig(
            name=self._name,
            deliver_policy=self._start.policy,
            opt_start_seq=self._start.sequence,
            opt_start_time=self._start.time,
            ack_policy=AckPolicy.NONE,
            filter_subject=self._subject,
            inactive_threshold=_INACTIVE,
            mem_storage=True,
            num_replicas=1,
        )
        stream = self._log._stream
        try:
            info = await jsm.add_consumer(stream, config=config)
        except NotFoundError as exc:
            raise BusError(
                list(self._log.servers), f"the stream {stream} does not exist (no event was stored)"
            ) from exc
        self.pending = int(info.num_pending or 0)
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{self._name}"
        self._inbox = nc.new_inbox()
        self._subscription = await nc.subscribe(
            self._inbox, cb=self._deliver, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        if self._jsm is not None and self._nc is not None and self._nc.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._jsm.delete_consumer(self._log._stream, self._name))

    async def _deliver(self, message: Msg) -> None:
        status = message.headers.get(_STATUS) if message.headers else None
        if status is None:
            self._buffer.append(message)
            self._open = max(0, self._open - 1)
            self.pending = message.metadata.num_pending
        elif status != _HEARTBEAT:
            self._open = 0  # 404, 408, 409: the request ended
        self._arrived.set()

    async def _request(self, batch: int, expires: float | None) -> None:
        assert self._nc is not None
        body: dict[str, object] = {"batch": batch}
        if expires is None:
            body["no_wait"] = True
        else:
            body["expires"] = int(expires * 1e9)
        self._open = batch
        self._lost_at = time.monotonic() + (expires or _REQUEST_TIMEOUT) + 1.0
        await self._nc.publish(self._api, json.dumps(body).encode(), reply=self._inbox)

    def _closed(self) -> bool:
        """Whether no request is open (or the open one is lost): time to send one."""
        return self._open <= 0 or time.monotonic() > self._lost_at

    async def pull(self, batch: int) -> list[Msg]:
        """Up to ``batch`` messages that are stored already (``pending`` says how many)."""
        await self._request(batch, None)
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                while self._open > 0 and len(self._buffer) < batch:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            if not self._buffer:
                raise BusError(
                    list(self._log.servers),
                    f"JetStream did not deliver stored events within {_REQUEST_TIMEOUT:g} s",
                ) from None
        return self._take(batch)

    async def wait(self, batch: int, timeout: float) -> list[Msg]:
        """The messages that arrive next (at most ``batch``); empty after ``timeout``."""
        if not self._buffer:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    while not self._buffer:
                        if self._closed():
                            await self._request(batch, _FOLLOW_EXPIRES)
                        self._arrived.clear()
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(_FOLLOW_EXPIRES + 1.5):
                                await self._arrived.wait()
            await asyncio.sleep(0)  # what arrived with it
        return self._take(batch)

    def _take(self, batch: int) -> list[Msg]:
        count = min(batch, len(self._buffer))
        return [self._buffer.popleft() for _ in range(count)]
