"""The asynchronous publisher: events into JetStream, or onto the spool, never lost.

:class:`Publisher` sends a run of events as JetStream fast batches (nats-server 2.14+, a
stream with ``allow_batched``: two acknowledgements per hundred events, see
:mod:`.fast_batch`), and otherwise message by message with pipelined acknowledgements
(at most ``max_in_flight`` awaiting at once): :mod:`.sender` does both. When NATS is
unreachable, or a publish is not acknowledged within ``timeout``, the events that were
not acknowledged go to the on-disk :class:`~interlock.sdk.spool.Spool`, and every later
event follows them there until a background task has sent the spool, in order, once
NATS is back. So a producer is never held longer than ``timeout``, and the order it
handed events over is the order they are stored in. Each message carries
``Nats-Msg-Id`` = the event id, so an event sent twice (acknowledgement lost, spool
re-sent after a crash) is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from interlock.sdk.acked_publish import AckedPublishing
from interlock.sdk.codec import encode_event
from interlock.sdk.config import PublisherConfig
from interlock.sdk.connection import connect
from interlock.sdk.errors import BusError, EventValidationError
from interlock.sdk.event import Event, utc_now
from interlock.sdk.sender import REFUSED_FOR_GOOD, Item, Sender
from interlock.sdk.spool import Spool
from interlock.sdk.subjects import EVENTS_SUBJECT_PREFIX

__all__ = ["PublishResult", "Publisher", "PublisherStats", "Refusal"]

logger = logging.getLogger(__name__)

REFUSED_FILE = "refused.jsonl"
"""Where, in the spool directory, events JetStream refused for good are kept."""


class _Head(msgspec.Struct):
    id: str
    event: str


_head_decoder = msgspec.json.Decoder(_Head)


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """An event JetStream refused for good (a 400: sending it again cannot help)."""

    index: int
    """Its position in the publish call."""
    id: str
    reason: str
    """JetStream's answer, e.g. ``message size exceeds maximum allowed``."""


class PublishResult(msgspec.Struct, frozen=True, kw_only=True):
    """What became of the events of one publish call."""

    stored: int
    """Acknowledged by JetStream during the call."""
    spooled: int
    """Written to the spool; sent by a background task once NATS takes them."""
    refused: tuple[Refusal, ...] = ()
    """Refused for good by JetStream (the stream's limits, say): kept in the spool
    directory's ``refused.jsonl``, neither stored nor spooled. The others went on."""


class PublisherStats(msgspec.Struct, kw_only=True):
    """Counters since the publisher was created."""

    stored: int = 0
    spooled: int = 0
    resent: int = 0
    """Events sent from the spool."""
    refused: int = 0
    """Spooled events JetStream refused for good, moved to ``refused.jsonl``."""


class Publisher:
    """Publish events to JetStream with a bounded wait and an on-disk spool behind it.

    Use it as an async context manager::

        config = PublisherConfig(nats=NatsOptions(servers=("nats://host:4222",)))
        async with Publisher(config) as pub:
            await pub.publish(pub.event("db.table.updated", "warehouse.sales"))

    Connecting never fails because NATS is down: events are spooled and sent when it
    is back. It fails only for a spool that cannot be opened.
    """

    def __init__(self, config: PublisherConfig | None = None) -> None:
        self.config = config or PublisherConfig()
        self.stats = PublisherStats()
        self._nc: NATS | None = None
        self._sender: Sender | None = None
        self._spool: Spool | None = None
        # Made by connect(), in the loop that runs the publisher: on Python 3.9 an asyncio
        # primitive binds to a loop when it is made, and a publisher may be built outside.
        self._wake: asyncio.Event
        self._drained: asyncio.Event
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # -- life cycle --------------------------------------------------------------------

    async def connect(self) -> Publisher:
        """Open the spool (adopting ended producers' segments) and connect to NATS."""
        self._wake, self._drained = asyncio.Event(), asyncio.Event()
        self._spool = Spool(
            self.config.spool_dir,
            max_bytes=self.config.spool_max_bytes,
            fsync=self.config.spool_fsync,
        )
        try:
            await self._open_connection()
        except BusError as exc:
            logger.warning("NATS unreachable, events will be spooled until it is back: %s", exc)
            self._tasks.append(asyncio.create_task(self._reconnect(), name="interlock-reconnect"))
        except BaseException:
            self._spool.close()  # a configuration error: release the spool's locks
            raise
        self._tasks.append(asyncio.create_task(self._drain(), name="interlock-spool-drain"))
        return self

    async def _open_connection(self) -> None:
        self._nc = await connect(
            self.config.nats,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            timeout=self.config.timeout,
        )
        acks = AckedPublishing(self._nc)
        await acks.start()
        self._sender = Sender(
            self._nc,
            acks,
            timeout=self.config.timeout,
            max_in_flight=self.config.max_in_flight,
        )
        self._wake.set()

    async def _reconnect(self) -> None:
        delay = self.config.nats.reconnect_wait
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self._open_connection()
            except BusError as exc:
                logger.debug("still cannot reach NATS: %s", exc)
                delay = min(delay * 2, 5.0)
            else:
                logger.info("connected to NATS")
                return

    async def _on_disconnected(self) -> None:
        if self._closed or self._nc is None:
            return  # closing, or a failed first attempt (already reported)
        logger.warning("disconnected from NATS; spooling until it is back")

    async def _on_reconnected(self) -> None:
        logger.info("reconnected to NATS")
        self._wake.set()

    async def __aenter__(self) -> Publisher:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, timeout: float | None = None) -> None:
        """Send what the spool holds (for up to ``timeout``), then disconnect.

        Whatever is still spooled stays on disk; the next producer using the same spool
        directory sends it.
        """
        if self._closed:
            return
        await self.flush(self.config.timeout if timeout is None else timeout)
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), self.config.timeout)
        if self._spool is not None:
            self._spool.close()
            if self._spool.used_bytes:
                logger.warning("%s left for the next producer", self._describe_spool())

    @property
    def connected(self) -> bool:
        """Whether a NATS connection is up right now."""
        return self._nc is not None and self._nc.is_connected

    @property
    def spool_directory(self) -> Path:
        """Where events wait while NATS is unreachable."""
        return self.config.spool_dir

    @property
    def spool_pending(self) -> bool:
        """Whether events are waiting in the spool."""
        return self._spool is not None and self._spool.has_pending

    def _describe_spool(self) -> str:
        used = self._spool.used_bytes if self._spool else 0
        return f"{used:,} bytes of spooled events in {self.config.spool_dir}"

    # -- publishing --------------------------------------------------------------------

    def event(
        self,
        name: str,
        resource_id: str,
        *,
        labels: Mapping[str, str] | None = None,
        related: Sequence[Mapping[str, str]] = (),
        payload: Mapping[str, Any] | None = None,
        occurred: datetime | None = None,
        id: uuid.UUID | None = None,
    ) -> Event:
        """Build an event stamped with this publisher's ``source``."""
        return Event(
            id=id or uuid.uuid4(),
            occurred=occurred or utc_now(),
            event=name,
            resource={**(labels or {}), "id": resource_id},
            related=[dict(item) for item in related],
            payload=dict(payload or {}),
            source=self.config.source,
        )

    async def publish(self, event: Event) -> PublishResult:
        """Publish one event; see :meth:`publish_many`."""
        return await self.publish_many((event,))

    async def publish_many(self, events: Iterable[Event]) -> PublishResult:
        """Publish events in order, pipelining acknowledgements.

        Returns once every event is either acknowledged by JetStream, written to the
        spool, or refused by JetStream for good (:attr:`PublishResult.refused`: set aside
        in ``refused.jsonl``, logged); it waits at most ``timeout`` for any
        acknowledgement.

        Raises:
            EventValidationError: an event cannot be encoded or is larger than NATS
                accepts; no event of the call was published or spooled.
            SpoolFullError: the spool is full; the events it could not take were
                neither published nor stored.
        """
        if self._spool is None or self._closed:
            raise RuntimeError("the publisher is not connected: use `async with Publisher()`")
        items = [self._encode(event) for event in events]
        position, stored, refused = 0, 0, []
        while (
            position < len(items)
            and self._sender is not None
            and self.connected
            and not self._spool.has_pending
        ):
            sent = await self._sender.send(items[position:])
            position += sent.acknowledged
            stored += sent.acknowledged
            if position == len(items) or not isinstance(sent.refusal, REFUSED_FOR_GOOD):
                break
            _, data, event_id = items[position]
            self._set_aside(data, event_id, sent.refusal, self._spool.directory)
            refused.append(Refusal(index=position, id=event_id, reason=_reason(sent.refusal)))
            position += 1
        self.stats.stored += stored
        rest = items[position:]
        if rest:
            self._spool.append([item[1] for item in rest])
            self.stats.spooled += len(rest)
            self._drained.clear()
            self._wake.set()
        return PublishResult(stored=stored, spooled=len(rest), refused=tuple(refused))

    def _encode(self, event: Event) -> tuple[str, bytes, str]:
        if not event.source:
            event = msgspec.structs.replace(event, source=self.config.source)
        data = encode_event(event)
        limit = self._nc.max_payload if self._nc is not None and self._nc.is_connected else 0
        if limit and len(data) > limit:
            raise EventValidationError(
                "payload",
                f"makes the event {len(data):,} bytes; the NATS server accepts at most "
                f"{limit:,} (max_payload): store large data elsewhere and send a reference",
            )
        return EVENTS_SUBJECT_PREFIX + event.event, data, str(event.id)

    # -- the spool ---------------------------------------------------------------------

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until the spool is empty (or ``timeout`` passes); return whether it is."""
        if self._spool is None:
            return True
        deadline = time.monotonic() + (self.config.timeout if timeout is None else timeout)
        while self._spool.has_pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._wake.set()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout=min(remaining, 0.25))
        if self.connected and self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.flush(), max(deadline - time.monotonic(), 0.01))
        return True

    async def _drain(self) -> None:
        """Send the spool, oldest first, whenever NATS takes it."""
        spool = self._spool
        assert spool is not None
        delay = 0.05
        last_adopt = time.monotonic()
        while not self._closed:
            if not spool.has_pending:
                if time.monotonic() - last_adopt > 5:
                    last_adopt = time.monotonic()
                    spool.adopt_orphans()
                    continue
                self._drained.set()
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=5)
                continue
            if self._sender is None or not self.connected:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                delay = min(delay * 2, 2.0)
                continue
            batch = spool.read_batch(self.config.max_in_flight)
            if batch is None:
                continue
            items = [self._spooled_item(record, spool.directory) for record in batch.records]
            sent = await self._sender.send(items)
            self.stats.resent += sent.acknowledged
            done = sent.acknowledged
            refused = isinstance(sent.refusal, REFUSED_FOR_GOOD) and done < len(batch)
            if refused:
                event_id = item[2] if (item := items[done]) is not None else "?"
                self._set_aside(batch.records[done], event_id, sent.refusal, spool.directory)
                done += 1
            spool.commit(batch, done)
            if done < len(batch) and not refused:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                delay = 0.05

    def _set_aside(
        self, record: bytes, event_id: str, refusal: BaseException | None, directory: Path
    ) -> None:
        """Keep an event JetStream will never take out of the way of the others."""
        kept = directory / REFUSED_FILE
        with kept.open("ab") as handle:
            handle.write(record + b"\n")
        self.stats.refused += 1
        logger.error(
            "JetStream refused event %s for good (%s); kept it in %s", event_id, refusal, kept
        )

    @staticmethod
    def _spooled_item(record: bytes, directory: Path) -> Item:
        try:
            head = _head_decoder.decode(record)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            quarantine = directory / "unreadable.jsonl"
            with quarantine.open("ab") as handle:
                handle.write(record + b"\n")
            logger.error("spooled line is not an event (%s); kept in %s", exc, quarantine)
            return None
        return EVENTS_SUBJECT_PREFIX + head.event, record, head.id


def _reason(refusal: BaseException | None) -> str:
    """JetStream's words for a refusal (its ``description``), else the error itself."""
    description = getattr(refusal, "description", None)
    return str(description or refusal or "refused")
