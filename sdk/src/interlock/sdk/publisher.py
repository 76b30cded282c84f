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

A publisher's life is one state value: ``new`` → open (its spool and, while NATS
answers, a connection; made by :meth:`Publisher.connect`) → ``closed``. Its background
tasks, reconnecting and sending the spool, follow the policy of long-running loops
(:mod:`interlock.sdk.retry`).
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
from typing import Any, Literal, NamedTuple, Union

import msgspec
from nats.aio.client import Client as NATS

from interlock.sdk.acked_publish import AckedPublishing
from interlock.sdk.config import PublisherConfig
from interlock.sdk.connection import connect
from interlock.sdk.encoded import EncodedEvent, encode_batch
from interlock.sdk.errors import BusError
from interlock.sdk.event import Event, utc_now
from interlock.sdk.retry import Backoff, Retry
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


class _Link(NamedTuple):
    """A NATS connection and the sender publishing through it."""

    nc: NATS
    sender: Sender


class _Open:
    """A publisher between :meth:`Publisher.connect` and :meth:`Publisher.close`.

    Made inside the event loop that runs the publisher (on Python 3.9 an asyncio
    primitive binds to a loop when it is made, and a publisher may be built outside).

    Attributes:
        spool: Where events wait while NATS does not take them.
        link: The NATS connection once NATS answered (``None`` until then).
        tasks: Reconnecting (while there is no link) and sending the spool.
        wake: Set when the spool has work or NATS came back.
        drained: Set when the spool is empty.
    """

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.link: _Link | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.wake = asyncio.Event()
        self.drained = asyncio.Event()


_State = Union[Literal["new", "closed"], _Open]
"""A publisher's life: ``new`` (not connected yet), open, ``closed``."""


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
        self._state: _State = "new"

    # -- life cycle --------------------------------------------------------------------

    async def connect(self) -> Publisher:
        """Open the spool (adopting ended producers' segments) and connect to NATS.

        Raises:
            RuntimeError: it was connected before (a publisher is connected once).
        """
        if self._state != "new":
            raise RuntimeError("a publisher is connected once: make another one")
        spool = Spool(
            self.config.spool_dir,
            max_bytes=self.config.spool_max_bytes,
            fsync=self.config.spool_fsync,
        )
        state = self._state = _Open(spool)
        try:
            await self._open_connection(state)
        except BusError as exc:
            logger.warning("NATS unreachable, events will be spooled until it is back: %s", exc)
            reconnect = asyncio.create_task(self._reconnect(state), name="interlock-reconnect")
            state.tasks.append(reconnect)
        except BaseException:
            spool.close()  # a configuration error: release the spool's locks
            self._state = "closed"
            raise
        state.tasks.append(asyncio.create_task(self._drain(state), name="interlock-spool-drain"))
        return self

    async def _open_connection(self, state: _Open) -> None:
        nc = await connect(
            self.config.nats,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            timeout=self.config.timeout,
        )
        acks = AckedPublishing(nc)
        await acks.start()
        sender = Sender(
            nc,
            acks,
            timeout=self.config.timeout,
            max_in_flight=self.config.max_in_flight,
        )
        state.link = _Link(nc, sender)
        state.wake.set()

    async def _reconnect(self, state: _Open) -> None:
        """Connect until NATS answers (the first attempt at start found it away)."""
        first = self.config.nats.reconnect_wait
        backoff = Backoff(first, max(first, 5.0), jitter=False)
        retry = Retry(logger, "publisher: connecting to NATS", backoff=backoff)
        await asyncio.sleep(first)
        while self._state is state:
            try:
                await self._open_connection(state)
            except BusError as exc:  # still away: expected, and said at start already
                logger.debug("still cannot reach NATS: %s", exc)
                await asyncio.sleep(retry.backoff.next())
            except Exception as exc:  # noqa: BLE001 - the loop's boundary: Retry logs it
                await retry.pause(exc)
            else:
                logger.info("connected to NATS")
                return

    async def _on_disconnected(self) -> None:
        if self._link is None:
            return  # closing, or a failed first attempt (already reported)
        logger.warning("disconnected from NATS; spooling until it is back")

    async def _on_reconnected(self) -> None:
        logger.info("reconnected to NATS")
        if isinstance(self._state, _Open):
            self._state.wake.set()

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
        state = self._state
        if not isinstance(state, _Open):
            self._state = "closed"
            return
        await self.flush(self.config.timeout if timeout is None else timeout)
        self._state = "closed"
        for task in state.tasks:
            task.cancel()
        for task in state.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if state.link is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(state.link.nc.close(), self.config.timeout)
        state.spool.close()
        if state.spool.used_bytes:
            logger.warning("%s left for the next producer", self._describe_spool(state.spool))

    @property
    def _link(self) -> _Link | None:
        """The NATS connection, while the publisher is open and NATS answered."""
        return self._state.link if isinstance(self._state, _Open) else None

    @property
    def connected(self) -> bool:
        """Whether a NATS connection is up right now."""
        link = self._link
        return link is not None and link.nc.is_connected

    @property
    def spool_directory(self) -> Path:
        """Where events wait while NATS is unreachable."""
        return self.config.spool_dir

    @property
    def spool_pending(self) -> bool:
        """Whether events are waiting in the spool."""
        return isinstance(self._state, _Open) and self._state.spool.has_pending

    def _describe_spool(self, spool: Spool) -> str:
        return f"{spool.used_bytes:,} bytes of spooled events in {self.config.spool_dir}"

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
                accepts (its ``index`` says which); no event of the call was published
                or spooled.
            SpoolFullError: the spool is full; the events it could not take were
                neither published nor stored.
        """
        state = self._state
        if not isinstance(state, _Open):
            raise RuntimeError("the publisher is not connected: use `async with Publisher()`")
        link = state.link
        limit = link.nc.max_payload if link is not None and link.nc.is_connected else 0
        batch = encode_batch(
            events if isinstance(events, Sequence) else list(events),
            source=self.config.source,
            max_payload=limit,
        )
        return await self._publish(state, batch)

    async def _publish(self, state: _Open, items: list[EncodedEvent]) -> PublishResult:
        """Send encoded events, spooling what NATS does not acknowledge."""
        spool = state.spool
        position, stored, refused = 0, 0, []
        while (
            position < len(items)
            and (link := state.link) is not None
            and link.nc.is_connected
            and not spool.has_pending
        ):
            sent = await link.sender.send(items[position:])
            position += sent.acknowledged
            stored += sent.acknowledged
            if position == len(items) or not isinstance(sent.refusal, REFUSED_FOR_GOOD):
                break
            _, data, event_id = items[position]
            self._set_aside(data, event_id, sent.refusal, spool.directory)
            refused.append(Refusal(index=position, id=event_id, reason=_reason(sent.refusal)))
            position += 1
        self.stats.stored += stored
        rest = items[position:]
        if rest:
            spool.append([item[1] for item in rest])
            self.stats.spooled += len(rest)
            state.drained.clear()
            state.wake.set()
        return PublishResult(stored=stored, spooled=len(rest), refused=tuple(refused))

    # -- the spool ---------------------------------------------------------------------

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until the spool is empty (or ``timeout`` passes); return whether it is."""
        state = self._state
        if not isinstance(state, _Open):
            return True
        deadline = time.monotonic() + (self.config.timeout if timeout is None else timeout)
        while state.spool.has_pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            state.wake.set()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(state.drained.wait(), timeout=min(remaining, 0.25))
        link = state.link
        if link is not None and link.nc.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(link.nc.flush(), max(deadline - time.monotonic(), 0.01))
        return True

    async def _drain(self, state: _Open) -> None:
        """Send the spool, oldest first, whenever NATS takes it."""
        retry = Retry(logger, "publisher: sending the spool", expected=(OSError,))
        last_adopt = time.monotonic()
        while self._state is state:
            try:
                if time.monotonic() - last_adopt > 5 and not state.spool.has_pending:
                    last_adopt = time.monotonic()
                    state.spool.adopt_orphans()
                step = await self._send_spooled(state)
            except Exception as exc:  # noqa: BLE001 - the loop's boundary: Retry logs it
                await retry.pause(exc)
                continue
            if step == "sent":
                retry.succeeded()
            elif step == "partly":  # NATS took part of a batch: back off, then the rest
                await asyncio.sleep(retry.backoff.next())
            else:  # empty, or NATS away: until woken (new events, NATS back)
                state.wake.clear()
                wait = 5.0 if step == "empty" else retry.backoff.next()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(state.wake.wait(), timeout=wait)

    async def _send_spooled(self, state: _Open) -> Literal["sent", "partly", "empty", "away"]:
        """Send one batch of the spool; say how it went."""
        spool = state.spool
        if not spool.has_pending:
            state.drained.set()
            return "empty"
        link = state.link
        if link is None or not link.nc.is_connected:
            return "away"
        batch = spool.read_batch(self.config.max_in_flight)
        if batch is None:
            return "sent"
        items = [self._spooled_item(record, spool.directory) for record in batch.records]
        sent = await link.sender.send(items)
        self.stats.resent += sent.acknowledged
        done = sent.acknowledged
        refused = isinstance(sent.refusal, REFUSED_FOR_GOOD) and done < len(batch)
        if refused:
            event_id = item[2] if (item := items[done]) is not None else "?"
            self._set_aside(batch.records[done], event_id, sent.refusal, spool.directory)
            done += 1
        spool.commit(batch, done)
        return "partly" if done < len(batch) and not refused else "sent"

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
