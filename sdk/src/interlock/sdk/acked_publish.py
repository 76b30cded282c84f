"""JetStream publishes with pipelined acknowledgements, at a few microseconds each.

JetStream acknowledges a message by replying to the publish's reply subject with a
``PubAck``. :class:`AckedPublishing` gives every publish a reply subject under one
wildcard inbox subscription of its own and resolves a future when the reply comes.

nats-py's ``publish_async`` does the same, but spends most of each call on extras: a
task per message (``asyncio.wait_for`` around a semaphore), two random tokens (one an
``os.urandom`` system call) and ``json`` plus a dataclass to read each reply. Here the
token is a counter (the inbox is unique per instance), the caller bounds what is in
flight (the :class:`~interlock.sdk.Publisher` does), and replies are decoded by msgspec.

While connected, the ``HPUB`` command is written in one piece (see :mod:`.hpub`); a
client without the members that needs, or one that is reconnecting, takes
``Client.publish``.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import APIError, NoStreamResponseError

from interlock.sdk.hpub import can_write_directly, hpub_frame, write_frames
from interlock.sdk.subjects import MSG_ID_HEADER

__all__ = ["AckedPublishing", "PubAck", "api_error", "decode_reply"]

T = TypeVar("T")

_NO_RESPONDERS = "503"


class PubAck(msgspec.Struct, frozen=True):
    """JetStream's acknowledgement of one stored message."""

    stream: str
    seq: int
    duplicate: bool = False


class _Reply(msgspec.Struct, frozen=True):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: dict[str, Any] | None = None


_reply_decoder = msgspec.json.Decoder(_Reply)


class AckedPublishing:
    """Publishes to JetStream on ``nc`` and hands back a future of each acknowledgement.

    A future fails with nats-py's ``NoStreamResponseError`` when no stream takes the
    subject, and with its ``APIError`` when JetStream refuses the message. A future
    that is never answered (NATS dropped the connection) stays pending: the caller
    decides how long to wait. Call :meth:`start` once, after connecting.
    """

    def __init__(self, nc: NATS, *, direct: bool = True) -> None:
        self._nc = nc
        self._direct = direct and can_write_directly(nc)
        self._prefix = ""
        self._futures: dict[str, asyncio.Future[PubAck]] = {}
        self._sequence = 0
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to this instance's reply inbox (idempotent)."""
        if self._subscription is None:
            self._prefix = f"{self._nc.new_inbox()}."
            self._subscription = await self._nc.subscribe(f"{self._prefix}*", cb=self._on_reply)

    @property
    def pending(self) -> int:
        """Publishes sent and not answered yet (including abandoned ones)."""
        return len(self._futures)

    async def publish(self, subject: str, data: bytes, msg_id: str) -> asyncio.Future[PubAck]:
        """Send one message with ``Nats-Msg-Id``; return the future of its PubAck."""
        if self._subscription is None:
            raise RuntimeError("AckedPublishing.start() was not called")
        self._sequence += 1
        token = str(self._sequence)
        future: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        self._futures[token] = future
        try:
            if self._direct and self._nc.is_connected:
                await self._send_hpub(subject, data, self._prefix + token, msg_id)
            else:
                await self._nc.publish(
                    subject, data, reply=self._prefix + token, headers={MSG_ID_HEADER: msg_id}
                )
        except BaseException:
            del self._futures[token]
            raise
        return future

    async def _send_hpub(self, subject: str, data: bytes, reply: str, msg_id: str) -> None:
        await write_frames(self._nc, hpub_frame(subject, reply, msg_id, data, self._nc.max_payload))

    def forget(self, futures: list[asyncio.Future[Any]]) -> None:
        """Stop tracking futures the caller gave up on (cancelled or timed out)."""
        if not futures:
            return
        abandoned = {id(future) for future in futures}
        self._futures = {
            token: future for token, future in self._futures.items() if id(future) not in abandoned
        }

    async def _on_reply(self, msg: Msg) -> None:
        future = self._futures.pop(msg.subject[len(self._prefix) :], None)
        if future is None or future.done():
            return
        reply = decode_reply(msg, _reply_decoder)
        if isinstance(reply, Exception):
            future.set_exception(reply)
        elif reply.error is not None:
            future.set_exception(api_error(reply.error))
        else:
            future.set_result(PubAck(stream=reply.stream, seq=reply.seq, duplicate=reply.duplicate))

    async def close(self) -> None:
        """Unsubscribe; pending futures are cancelled."""
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            if not self._nc.is_closed:
                await subscription.unsubscribe()


def decode_reply(msg: Msg, decoder: msgspec.json.Decoder[T]) -> T | Exception:
    """JetStream's reply to a publish, decoded; or what a bodiless answer means.

    A ``503`` status is "no stream takes this subject" (``NoStreamResponseError``); any
    other status, or a body that does not decode, is an ``APIError`` saying so.
    """
    status = msg.headers.get("Status") if msg.headers else None
    if status == _NO_RESPONDERS:
        return NoStreamResponseError()
    if status:
        return APIError(description=f"status {status} answered the publish")
    try:
        return decoder.decode(msg.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return APIError(description=f"unreadable reply: {exc}")


def api_error(error: dict[str, Any]) -> APIError:
    """nats-py's error for a JetStream error reply (its ``from_error`` raises some)."""
    try:
        return APIError.from_error(error)  # type: ignore[no-any-return]
    except APIError as raised:
        return raised
    except (KeyError, TypeError):
        return APIError(description=str(error))
