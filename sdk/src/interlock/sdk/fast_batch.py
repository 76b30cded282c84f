"""JetStream fast batches: a hundred publishes answered by two replies (nats-server 2.14+).

Acknowledging every publish costs a Python publisher more than the publish itself: each
PubAck is parsed, wrapped in a ``Msg``, queued, handed to a task and decoded. A stream
with ``allow_batched`` takes *fast batches* instead (ADR-50, nats-server 2.14): each
message is stored as it arrives, exactly as a lone publish would be, and the server
answers once when the batch starts, every ``flow`` messages, and at the end with a
PubAck counting the messages stored. ``Nats-Msg-Id`` still de-duplicates each message:
a repeated one is skipped and counted as stored.

The protocol lives in the reply subject, ``<prefix>.<batch id>.<flow>.fail.<seq>.<op>.$FI``:
``op`` is 0 for the first message, 1 for the next ones and 2 for the last (which ends
the batch); ``fail`` makes a gap end the batch. The server reads the subject from its end,
so the batch id is the token before ``<flow>``, whatever the prefix. Each
:class:`FastBatches` subscribes once to an inbox of its own (``<inbox>.>``, within the
``_INBOX.>`` permission clients usually have) and gives each batch the id ``<inbox
token>-<n>``, unique on the server; replies are routed to their batch by that id. (A
subscription per batch cost a SUB and an UNSUB, with nats-py's task and queue for each,
on every batch.)

Flow control follows ADR-50's recommendation: at most twice ``flow`` messages beyond the
last one the server acknowledged, then wait for its next acknowledgement.

Whatever goes wrong, :meth:`FastBatches.publish` answers how many messages, from the
first, are known to be stored; the caller sends the rest again, and de-duplication makes
a message that was sent twice one stored message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import APIError

from interlock.sdk.acked_publish import api_error, decode_reply
from interlock.sdk.hpub import can_write_directly, hpub_frame, write_frames

__all__ = [
    "FLOW",
    "MIN_SERVER_VERSION",
    "BatchOutcome",
    "FastBatches",
    "server_takes_fast_batches",
]

logger = logging.getLogger(__name__)

MIN_SERVER_VERSION = (2, 14)
FLOW = 100
"""Messages per flow acknowledgement asked of the server (it may choose fewer)."""
OUTSTANDING_ACKS = 2
"""Flow acknowledgements the publisher may run ahead of (ADR-50's default)."""
RETRY_AFTER = 300.0
"""Seconds before batches are tried again after a stream or server refused them: the
stream may have been given ``allow_batched`` meanwhile."""

_START, _APPEND, _COMMIT = 0, 1, 2
_PLAIN_PUBACK = -1  # not a JetStream code: a server that ignored the batch protocol
_REFUSES_BATCHES = {  # answers meaning "not here, not now": retried after RETRY_AFTER
    _PLAIN_PUBACK: "the server answered a batch with plain PubAcks (no fast batches)",
    10205: "the stream does not allow batched publishing (allow_batched)",
    10206: "the server refused the batch reply subject",
    10207: "the server refused the batch id",
}


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one batch."""

    stored: int
    """Messages, from the first, known to be stored (duplicates of stored ones included)."""
    refusal: Exception | None = None
    """JetStream's answer when it refused a message or the batch. ``None`` with
    ``stored`` short of the batch: no answer came in time."""


class _Reply(msgspec.Struct):
    stream: str = ""
    type: str = ""
    seq: int = 0
    msgs: int = 0
    last_seq: int = 0
    batch: str = ""
    count: int = 0
    error: dict[str, Any] | None = None


_reply_decoder = msgspec.json.Decoder(_Reply)


class _Batch:
    """One batch's state, advanced by the server's replies."""

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.size = size
        self.acknowledged = 0
        self.flow = FLOW
        self.outcome: asyncio.Future[BatchOutcome] = loop.create_future()
        self._loop = loop
        self._change: asyncio.Future[None] | None = None

    def next_reply(self) -> asyncio.Future[None]:
        """A future resolved when the next reply of this batch arrives."""
        if self._change is None or self._change.done():
            self._change = self._loop.create_future()
        return self._change

    async def on_reply(self, msg: Msg) -> None:
        if not self.outcome.done():
            self._read(msg)
        if self._change is not None and not self._change.done():
            self._change.set_result(None)

    def _read(self, msg: Msg) -> None:
        reply = decode_reply(msg, _reply_decoder)
        if isinstance(reply, Exception):
            self._end(reply)
        elif reply.error is not None:
            self._end(api_error(reply.error))
        elif reply.type == "ack":
            self.acknowledged = max(self.acknowledged, reply.seq)
            self.flow = reply.msgs if reply.msgs > 0 else self.flow
        elif reply.type == "gap":
            lost = f"{reply.last_seq + 1}..{reply.seq - 1}"
            self._end(APIError(description=f"messages {lost} of the batch did not arrive"))
        elif reply.stream and not reply.batch:  # a lone publish's PubAck
            description = _REFUSES_BATCHES[_PLAIN_PUBACK]
            self._end(APIError(err_code=_PLAIN_PUBACK, description=description))
        elif reply.batch:
            if reply.count >= self.size:
                self.outcome.set_result(BatchOutcome(self.size))
            else:
                ended = f"the batch ended after {reply.count} of {self.size} messages"
                self.outcome.set_result(BatchOutcome(reply.count, APIError(description=ended)))

    def _end(self, refusal: Exception) -> None:
        self.outcome.set_result(BatchOutcome(self.acknowledged, refusal))


class FastBatches:
    """Publishes runs of messages as JetStream fast batches on ``nc``.

    :attr:`usable` says whether to try: the client is connected to nats-server 2.14 or
    later, writes its own protocol lines (see :mod:`.hpub`), and no stream refused
    batches in the last :data:`RETRY_AFTER` seconds (a stream without ``allow_batched``
    refuses them; the publisher then goes on message by message and says so in the log).

    Args:
        nc: The connection.
        clock: Monotonic seconds (tests pass a fake one).
    """

    def __init__(self, nc: NATS, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._nc = nc
        self._clock = clock
        self._refused_until: float | None = None
        self._unusable: str | None = None  # for good: this client cannot send them
        if not can_write_directly(nc):
            self._unusable = "this nats-py cannot write protocol lines directly"
        elif nc.new_inbox().count(".") != 1:
            self._unusable = "the inbox prefix has more than one token"
        self._checked_server: str | None = None
        self._server_ok = False
        self._inbox = nc.new_inbox()
        self._batch_id_prefix = self._inbox.rsplit(".", 1)[-1] + "-"
        self._count = 0
        self._batches: dict[str, _Batch] = {}
        self._subscribed = False

    @property
    def usable(self) -> bool:
        """Whether a batch may be tried now."""
        if self._unusable is not None or not self._nc.is_connected:
            return False
        if self._refused_until is not None:
            if self._clock() < self._refused_until:
                return False
            self._refused_until = None
        version = str(self._nc.connected_server_version)
        if version != self._checked_server:
            self._checked_server = version
            self._server_ok = server_takes_fast_batches(self._nc)
        return self._server_ok

    async def publish(
        self, items: Sequence[tuple[str, bytes, str]], timeout: float
    ) -> BatchOutcome:
        """Publish ``(subject, data, msg id)`` items in order as one batch.

        Waits at most ``timeout`` for each reply it needs (a flow acknowledgement when
        the window is full, the final PubAck).

        Raises:
            BadSubjectError: a subject or id would break the protocol line (before
                anything is sent).
            MaxPayloadError: a message is larger than the server accepts (likewise).
        """
        nc = self._nc
        self._count += 1
        batch_id = f"{self._batch_id_prefix}{self._count}"
        frames = _frames(items, f"{self._inbox}.{batch_id}.{FLOW}.fail.", nc.max_payload)
        await self._subscribe()
        batch = _Batch(len(frames), asyncio.get_running_loop())
        self._batches[batch_id] = batch
        try:
            outcome = await self._send(batch, frames, timeout)
        finally:
            del self._batches[batch_id]  # a late reply finds no batch and is dropped
        if outcome.refusal is not None:
            self._note_refusal(outcome.refusal)
        return outcome

    async def _subscribe(self) -> None:
        """Subscribe to this instance's inbox, once (nats-py renews it on reconnecting).

        nats-py queues the SUB before it first yields, so a batch sent meanwhile by
        another task goes out after it.
        """
        if self._subscribed:
            return
        self._subscribed = True
        try:
            await self._nc.subscribe(f"{self._inbox}.>", cb=self._on_reply)
        except BaseException:
            self._subscribed = False
            raise

    async def _on_reply(self, msg: Msg) -> None:
        """Hand a reply to its batch, named by the token after the inbox."""
        batch_id = msg.subject[len(self._inbox) + 1 :].split(".", 1)[0]
        batch = self._batches.get(batch_id)
        if batch is not None:
            await batch.on_reply(msg)

    async def _send(self, batch: _Batch, frames: list[bytes], timeout: float) -> BatchOutcome:
        sent = 0
        while sent < len(frames):
            if batch.outcome.done():
                return batch.outcome.result()
            window_end = batch.acknowledged + batch.flow * OUTSTANDING_ACKS - 1
            if window_end <= sent:
                reply = batch.next_reply()
                await asyncio.wait((reply,), timeout=timeout)
                if not reply.done():
                    return BatchOutcome(batch.acknowledged)
                continue
            end = min(len(frames), window_end)
            await write_frames(self._nc, b"".join(frames[sent:end]))
            sent = end
        await asyncio.wait((batch.outcome,), timeout=timeout)
        if batch.outcome.done():
            return batch.outcome.result()
        batch.outcome.cancel()
        return BatchOutcome(batch.acknowledged)

    def _note_refusal(self, refusal: Exception) -> None:
        reason = _REFUSES_BATCHES.get(getattr(refusal, "err_code", None) or 0)
        if reason is not None:
            self._refused_until = self._clock() + RETRY_AFTER
            logger.info("publishing message by message for %g s: %s", RETRY_AFTER, reason)


def server_takes_fast_batches(nc: NATS) -> bool:
    """Whether the server ``nc`` is connected to has fast batches (2.14 or later)."""
    version = nc.connected_server_version
    try:
        return (version.major, version.minor) >= MIN_SERVER_VERSION
    except ValueError:  # not a semantic version: assume an old server
        return False


def _frames(items: Sequence[tuple[str, bytes, str]], reply: str, max_payload: int) -> list[bytes]:
    last = len(items)
    frames = []
    for seq, (subject, data, msg_id) in enumerate(items, 1):
        op = _COMMIT if seq == last else _START if seq == 1 else _APPEND
        frames.append(hpub_frame(subject, f"{reply}{seq}.{op}.$FI", msg_id, data, max_payload))
    return frames
