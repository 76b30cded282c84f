"""Reading ``INTERLOCK_EVENTS`` from a time, in stream order, fast and bounded.

:class:`StreamReader` creates one ephemeral pull consumer (no acks, memory storage,
deleted when done and after 30 s of inactivity at the latest) that starts at the first
message stored at or after ``start`` (the server finds it by its blocks' timestamps)
and is filtered to the given subjects. It asks for :data:`BATCH` messages at a time and
sends the next request as soon as one is answered, so the server delivers the next
batch while the caller feeds the last one to the engine; at most two batches are held.

It stops at ``stop_sequence`` (the stream's last sequence when the backtest started:
events stored during the backtest are not read), at the first message stored at or
after ``until``, or when nothing more matches. A message's stream sequence, stored time
and pending count are read straight from its reply subject, as
:func:`interlock.service.pipeline.pull.stream_sequence` does, with the stored time
computed as nats-py's ``metadata.timestamp`` computes it (the live pipeline's watermark).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from interlock.sdk.errors import BusError
from interlock.sdk.subjects import EVENTS_STREAM
from interlock.service.backtest.errors import BacktestError

__all__ = ["BATCH", "StoredMessage", "StreamFacts", "StreamReader", "stream_facts"]

BATCH: Final = 1024
_STATUS = "Status"
_HEARTBEAT = "100"
_INACTIVE = 30.0
_TIMEOUT = 10.0
_V1_TOKENS = 9


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message of the stream: where and when it was stored, and its bytes."""

    sequence: int
    stored_at: datetime
    subject: str
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamFacts:
    """What the stream holds when a backtest starts."""

    first_sequence: int
    last_sequence: int
    first_stored_at: datetime | None
    """When its oldest message was stored (``None``: the stream is empty)."""
    max_age: timedelta | None
    """How long it keeps messages (``None``: no age limit)."""


async def stream_facts(nc: NATS, stream: str = EVENTS_STREAM) -> StreamFacts:
    """The stream's first and last sequence, oldest message time and age limit.

    Raises:
        BacktestError: the stream does not exist (no event was ever stored).
    """
    jsm = nc.jsm()
    try:
        info = await jsm.stream_info(stream)
    except NotFoundError:
        raise BacktestError(
            f"the stream {stream} does not exist on this NATS: no event was ever recorded "
            "(is this the NATS of your Interlock server?)"
        ) from None
    first = int(info.state.first_seq or 0)
    last = int(info.state.last_seq or 0)
    first_at = None
    if info.state.messages:
        with contextlib.suppress(NotFoundError):
            first_at = (await jsm.get_msg(stream, first)).time
    age = info.config.max_age
    return StreamFacts(
        first_sequence=first,
        last_sequence=last,
        first_stored_at=first_at,
        max_age=timedelta(seconds=age) if age else None,
    )


def _parsed(message: Msg) -> tuple[int, datetime, int]:
    """(stream sequence, stored time, pending) from a message's reply subject."""
    tokens = (message.reply or "").split(".")
    if len(tokens) == _V1_TOKENS:
        stored = datetime.fromtimestamp(int(tokens[7]) / 1_000_000_000.0, UTC)
        return int(tokens[5]), stored, int(tokens[8])
    meta = message.metadata
    return meta.sequence.stream, meta.timestamp, meta.num_pending


class StreamReader:
    """Batches of stored messages from ``start`` to the stop (see the module).

    Args:
        nc: A connected NATS client.
        subjects: The consumer's (non-overlapping) subject filters.
        start: Read from the first message stored at or after it.
        until: Stop before the first message stored at or after it.
        stop_sequence: Read no message after this stream sequence.
        stream: The stream's name.
        batch: Messages per request.
        accepts: When the subjects are wider than what is wanted: whether to hand over a
            message of this subject (the others are skipped).
    """

    def __init__(
        self,
        nc: NATS,
        subjects: Sequence[str],
        *,
        start: datetime,
        until: datetime,
        stop_sequence: int,
        stream: str = EVENTS_STREAM,
        batch: int = BATCH,
        accepts: Callable[[str], bool] | None = None,
    ) -> None:
        self._accepts = accepts
        self._nc = nc
        self._subjects = list(subjects)
        self._start = start
        self._until = until
        self._stop = stop_sequence
        self._stream = stream
        self._batch = batch
        self._name = f"interlock-backtest-{uuid.uuid4().hex}"
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{self._name}"
        self._inbox = nc.new_inbox()
        self._subscription: Subscription | None = None
        self._buffer: deque[Msg] = deque()
        self._open = 0
        self._ended = 0
        self._arrived = asyncio.Event()
        self.pending = 0
        """Messages of its subjects after the last one delivered (the server's count)."""

    async def __aenter__(self) -> StreamReader:
        config = ConsumerConfig(
            name=self._name,
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=self._start,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=_INACTIVE,
            mem_storage=True,
            num_replicas=1,
        )
        if len(self._subjects) == 1:
            config.filter_subject = self._subjects[0]
        else:
            config.filter_subjects = self._subjects
        try:
            info = await self._nc.jsm().add_consumer(self._stream, config=config)
        except NotFoundError:
            raise BacktestError(f"the stream {self._stream} does not exist") from None
        self.pending = int(info.num_pending or 0)
        self._subscription = await self._nc.subscribe(
            self._inbox, cb=self._deliver, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        if self._nc.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._nc.jsm().delete_consumer(self._stream, self._name))

    async def _deliver(self, message: Msg) -> None:
        status = message.headers.get(_STATUS) if message.headers else None
        if status is None:
            self._buffer.append(message)
            self._open = max(0, self._open - 1)
            if self._open == 0:
                self._ended += 1
        elif status != _HEARTBEAT:  # 404 no messages, 408, 409: the request ended
            self._open = 0
            self._ended += 1
        self._arrived.set()

    async def _request(self) -> None:
        self._open = self._batch
        body = json.dumps({"batch": self._batch, "no_wait": True}).encode()
        await self._nc.publish(self._api, body, reply=self._inbox)

    async def _answered(self, ended: int) -> None:
        """Wait until the request counted by ``ended`` has ended."""
        try:
            async with asyncio.timeout(_TIMEOUT):
                while self._ended < ended:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise BusError(
                [], f"JetStream did not deliver stored events within {_TIMEOUT:g} s"
            ) from None

    async def batches(self) -> AsyncIterator[list[StoredMessage]]:
        """Stored messages in stream order, a batch at a time, until the stop."""
        if self.pending == 0:
            return
        accepts = self._accepts
        requested = self._ended + 1
        await self._request()
        while True:
            await self._answered(requested)
            taken = list(self._buffer)
            self._buffer.clear()
            done = not taken
            batch: list[StoredMessage] = []
            for message in taken:
                sequence, stored_at, pending = _parsed(message)
                if sequence > self._stop or stored_at >= self._until:
                    done = True
                    break
                if accepts is None or accepts(message.subject):
                    batch.append(StoredMessage(sequence, stored_at, message.subject, message.data))
                self.pending = pending
                if pending == 0 or sequence >= self._stop:
                    done = True
                    break
            if not done:
                requested = self._ended + 1
                await self._request()  # the server fills it while the caller feeds
            if batch:
                yield batch
            if done:
                return
